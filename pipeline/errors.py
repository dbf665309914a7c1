"""The error tree every port and stage speaks; vendor errors are translated at the adapter boundary.

PipelineError            (code: stable, machine-readable)
├── TransientError       retried with backoff (timeouts, 429, 5xx, a storage blip)
│   ├── DatabaseUnavailable  an outage: retried without end, outside the job's retry budget
│   └── NotReady         a provider is still working: check again after `retry_after_s`
└── PermanentError       fails the job at once with its code
    ├── InvalidAudio     the input is not decodable audio (invalid_audio)
    ├── InvalidInput     the input is not usable (invalid_input)
    │   └── TooLong      the input exceeds a capacity limit (too_long; names limit and measure)
    ├── ProviderRejected a provider refused the work (provider_rejected, transcription_failed, …)
    └── BlobNotFound     an input or artifact is missing (blob_not_found)
"""

from __future__ import annotations


class PipelineError(Exception):
    code = "pipeline_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class TransientError(PipelineError):
    code = "transient_error"


class DatabaseUnavailable(TransientError):
    """The database is unreachable, locked or deadlocked: an outage, not the job's fault."""

    code = "database_unavailable"


class NotReady(TransientError):
    """Not a fault: the provider accepted the work and is still on it. The task re-checks later."""

    code = "not_ready"

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentError(PipelineError):
    code = "permanent_error"


class InvalidAudio(PermanentError):
    code = "invalid_audio"


class InvalidInput(PermanentError):
    code = "invalid_input"


class TooLong(InvalidInput):
    """An input longer than a stage can finish within its time limit (pipeline/limits.py)."""

    code = "too_long"

    def __init__(self, message: str, *, setting: str, limit: int, measured: int, unit: str) -> None:
        super().__init__(message)
        self.setting, self.limit, self.measured, self.unit = setting, limit, measured, unit


class ProviderRejected(PermanentError):
    code = "provider_rejected"


class BlobNotFound(PermanentError):
    code = "blob_not_found"

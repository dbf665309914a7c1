"""Every exception the AssemblyAI SDK (and httpx under it) can raise maps to a pipeline error.

The expected tables are reviewed by hand: an SDK upgrade that adds an exception class fails
`test_every_sdk_exception_class_is_in_the_table` until someone decides how to treat it.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil

import assemblyai as aai
import httpx
import pydantic
import pytest

from pipeline.adapters.assemblyai import translate_error
from pipeline.errors import PermanentError, PipelineError, ProviderRejected, TransientError

KEY = "aai-secret-key-0c4b"

# Exceptions defined by the assemblyai package, by qualified name; every one carries no HTTP
# status of its own unless it derives from AssemblyAIError (mapped by status below).
SDK_EXCEPTIONS = {
    "assemblyai._multipart._Aborted",
    "assemblyai.dictation.v1.models.DictationError",
    "assemblyai.streaming.v3.models.RealTimeError",
    "assemblyai.tts.v1.models.TTSError",
    "assemblyai.types.AssemblyAIError",
    "assemblyai.types.LLMGatewayError",
    "assemblyai.types.RedactedAudioExpiredError",
    "assemblyai.types.RedactedAudioIncompleteError",
    "assemblyai.types.RedactedAudioUnavailableError",
    "assemblyai.types.SyncTranscriptError",
    "assemblyai.types.TranscriptError",
}

# HTTP status of an AssemblyAIError → (error type, code).
BY_STATUS: dict[int | None, tuple[type[PipelineError], str]] = {
    None: (PermanentError, "provider_error"),
    302: (PermanentError, "provider_error"),
    400: (ProviderRejected, "provider_rejected"),
    401: (ProviderRejected, "provider_auth"),
    403: (ProviderRejected, "provider_auth"),
    404: (ProviderRejected, "provider_rejected"),
    408: (TransientError, "provider_unavailable"),
    422: (ProviderRejected, "provider_rejected"),
    429: (TransientError, "provider_rate_limited"),
    500: (TransientError, "provider_unavailable"),
    502: (TransientError, "provider_unavailable"),
    503: (TransientError, "provider_unavailable"),
}

TIMEOUT = (TransientError, "provider_timeout")
UNAVAILABLE = (TransientError, "provider_unavailable")
PERMANENT = (PermanentError, "provider_error")
HTTPX_EXCEPTIONS: dict[str, tuple[type[PipelineError], str]] = {
    "HTTPError": PERMANENT,
    "RequestError": PERMANENT,
    "TransportError": PERMANENT,
    "TimeoutException": TIMEOUT,
    "ConnectTimeout": TIMEOUT,
    "ReadTimeout": TIMEOUT,
    "WriteTimeout": TIMEOUT,
    "PoolTimeout": TIMEOUT,
    "NetworkError": UNAVAILABLE,
    "ConnectError": UNAVAILABLE,
    "ReadError": UNAVAILABLE,
    "WriteError": UNAVAILABLE,
    "CloseError": UNAVAILABLE,
    "ProtocolError": PERMANENT,
    "LocalProtocolError": PERMANENT,  # our request was malformed: retrying cannot help
    "RemoteProtocolError": UNAVAILABLE,
    "ProxyError": UNAVAILABLE,
    "UnsupportedProtocol": PERMANENT,  # a misconfigured base URL
    "DecodingError": UNAVAILABLE,
    "TooManyRedirects": PERMANENT,
    "HTTPStatusError": PERMANENT,
    "InvalidURL": PERMANENT,
    "CookieConflict": PERMANENT,
    "StreamError": PERMANENT,
    "StreamConsumed": PERMANENT,
    "StreamClosed": PERMANENT,
    "ResponseNotRead": PERMANENT,
    "RequestNotRead": PERMANENT,
}


def sdk_exception_classes() -> dict[str, type[BaseException]]:
    """Walk every module of the installed assemblyai package for the exception classes it defines."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(aai.__path__, prefix="assemblyai."):
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__.startswith("assemblyai"):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


def httpx_exception_classes() -> dict[str, type[BaseException]]:
    return {
        name: obj
        for name in httpx.__all__
        if inspect.isclass(obj := getattr(httpx, name)) and issubclass(obj, BaseException)
    }


def instance(cls: type[BaseException], message: str) -> BaseException:
    """Build an exception the way its raiser would (each class has its own constructor)."""
    if issubclass(cls, aai.types.AssemblyAIError):
        return cls(message, None)
    if cls is httpx.HTTPStatusError:
        request = httpx.Request("GET", "https://api.assemblyai.com/v2/transcript/x")
        return cls(message, request=request, response=httpx.Response(418, request=request))
    try:
        return cls(message)
    except TypeError:
        return cls()  # httpx's stream errors take no message


def test_every_sdk_exception_class_is_in_the_table() -> None:
    assert set(sdk_exception_classes()) == SDK_EXCEPTIONS


def test_every_httpx_exception_class_is_in_the_table() -> None:
    assert set(httpx_exception_classes()) == set(HTTPX_EXCEPTIONS)


@pytest.mark.parametrize("name", sorted(SDK_EXCEPTIONS))
@pytest.mark.parametrize("status", list(BY_STATUS))
def test_sdk_exceptions_map_by_status(name: str, status: int | None) -> None:
    cls = sdk_exception_classes()[name]
    if issubclass(cls, aai.types.AssemblyAIError):
        exc: BaseException = cls(f"failed: bad request for key {KEY}", status)
        expected = BY_STATUS[status]
    else:
        exc = instance(cls, f"failed for key {KEY}")
        expected = PERMANENT

    error = translate_error(exc, secrets=[KEY])

    assert isinstance(error, PipelineError)
    assert (type(error), error.code) == expected
    assert KEY not in str(error)


@pytest.mark.parametrize("name", sorted(HTTPX_EXCEPTIONS))
def test_httpx_exceptions_map_by_kind(name: str) -> None:
    exc = instance(httpx_exception_classes()[name], f"boom {KEY}")

    error = translate_error(exc, secrets=[KEY])

    assert (type(error), error.code) == HTTPX_EXCEPTIONS[name]
    assert KEY not in str(error)


@pytest.mark.parametrize(
    "exc",
    [
        json.JSONDecodeError("Expecting value", "<html>", 0),  # a 200 that is not JSON
        KeyError("upload_url"),  # a 200 without the expected field
        OSError("disk read failed"),  # the local file during an upload
        RuntimeError("anything else"),
    ],
    ids=["json", "keyerror", "oserror", "runtime"],
)
def test_other_failures_under_the_sdk_are_permanent(exc: BaseException) -> None:
    error = translate_error(exc)

    assert (type(error), error.code) == PERMANENT


def test_an_unexpected_response_shape_is_permanent() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        aai.types.TranscriptResponse.model_validate({"status": "not-a-status"})

    error = translate_error(caught.value)

    assert (type(error), error.code) == PERMANENT


def test_pipeline_errors_pass_through_unchanged() -> None:
    original = TransientError("already translated", code="provider_timeout")

    assert translate_error(original) is original


def test_messages_are_clipped_and_drop_url_query_strings() -> None:
    exc = aai.types.TranscriptError(
        "failed to transcribe url https://bucket.example.com/a.wav?X-Amz-Signature=abc123: "
        + "y" * 2000,
        400,
    )

    error = translate_error(exc)

    assert "abc123" not in error.message
    assert "https://bucket.example.com/a.wav" in error.message
    assert len(error.message) < 400

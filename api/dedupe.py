"""The tenant option `dedupe`: a resubmitted input returns the existing job instead of a new one.

Tenant config `{"dedupe": "sha256"}` matches the input's content hash (audio or transcript),
`{"dedupe": "external_id"}` the submitted `external_id`; anything else (the default) is off.
The hash of an upload is known only once it is stored, so a duplicate's blob is deleted afterwards.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from api.auth import Caller
from pipeline.db.dedupe import find_duplicate

log = logging.getLogger(__name__)

DUPLICATE_OF = "Callintel-Duplicate-Of"
MODES = frozenset({"sha256", "external_id", "off"})


class DuplicateJob(Exception):
    """Raised inside the creating transaction: the job already exists as `job_id`."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id


def check_duplicate(
    session: Session, caller: Caller, *, input_sha256: str, external_id: str | None
) -> None:
    """Raise DuplicateJob when the tenant dedupes and an earlier job matches."""
    mode = caller.config.get("dedupe", "off")
    if mode not in MODES:
        log.warning("unknown dedupe mode in tenant config; dedupe is off", extra={"mode": mode})
    existing = None
    if mode == "sha256":
        existing = find_duplicate(session, caller.tenant_id, input_sha256=input_sha256)
    elif mode == "external_id" and external_id:
        existing = find_duplicate(session, caller.tenant_id, external_id=external_id)
    if existing is not None:
        raise DuplicateJob(existing.id)

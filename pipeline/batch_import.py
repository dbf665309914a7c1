"""Server-side import: a batch's `s3://bucket/prefix/` becomes one item per audio object.

One page of ListObjectsV2 at a time: objects are sniffed and copied into our store, their items
created and the continuation token saved in one transaction per page. Each object's item key is
its key and ETag, so a page redone after a crash creates nothing twice; a lease on the batch keeps
two importers from working on it at once, and an expired lease lets the beat sweep resume it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pipeline import artifacts, submission
from pipeline.db import batches
from pipeline.db.batch_models import CANCELLED, OPEN, Batch
from pipeline.db.models import Tenant, utcnow
from pipeline.db.session import transaction
from pipeline.ids import new_id
from pipeline.media import sniff
from pipeline.ports import BlobSource, BlobStat, BlobStore
from pipeline.settings import Settings
from pipeline.submission import Item, Submitter
from schemas.api import JobOptionsIn
from schemas.common import InputKind
from schemas.envelope import JobInput

log = logging.getLogger(__name__)
PAGE = 500
LEASE_S = 120.0
REFUSED = "the object is empty, too large, or not WAV, MP3, FLAC, OGG, M4A or WebM audio"


@dataclass(frozen=True)
class Page:
    objects: list[BlobStat]
    token: str | None  # None: this was the last page


def claim(sessions: sessionmaker[Session], batch_id: str) -> dict[str, Any] | None:
    """Take the batch's import lease; None when it is done, cancelled or held by another."""
    now = utcnow()
    with transaction(sessions) as session:
        batch = session.get(Batch, batch_id, with_for_update=True)
        if batch is None or batch.import_state is None or batch.status == CANCELLED:
            return None
        state = dict(batch.import_state)
        lease = state.get("lease_until")
        if state.get("done") or (lease and lease > now.isoformat()):
            return None
        state["lease_until"] = (now + timedelta(seconds=LEASE_S)).isoformat()
        batch.import_state = state
        return state


def run(
    sessions: sessionmaker[Session],
    settings: Settings,
    blobs: BlobStore,
    batch_id: str,
    *,
    budget_s: float = 60.0,
) -> bool:
    """Import pages under the lease for about `budget_s`; True when more pages remain."""
    state = claim(sessions, batch_id)
    if state is None:
        return False
    source = source_of(sessions, settings, batch_id)
    token, deadline = state.get("token"), time.monotonic() + budget_s
    try:
        while True:
            token = import_page(sessions, settings, blobs, source, batch_id=batch_id, token=token)
            if token is None:
                return False
            if time.monotonic() >= deadline:
                break
    except BaseException:
        release(sessions, batch_id)  # let a retry (or the sweep) take it again at once
        raise
    release(sessions, batch_id)
    return True


def source_of(sessions: sessionmaker[Session], settings: Settings, batch_id: str) -> BlobSource:
    from pipeline.adapters.storage import source_for

    with sessions() as session:
        batch = session.get(Batch, batch_id)
        assert batch is not None
        assert batch.source is not None
        return source_for(batch.source["storage_prefix"], settings)


def release(sessions: sessionmaker[Session], batch_id: str) -> None:
    with transaction(sessions) as session:
        batch = session.get(Batch, batch_id, with_for_update=True)
        if batch is not None and batch.import_state is not None:
            batch.import_state = {**batch.import_state, "lease_until": None}


def stalled(sessions: sessionmaker[Session]) -> list[str]:
    """Batches whose import is unfinished and unleased (its task was lost): the sweep resends."""
    now = utcnow().isoformat()
    with sessions() as session:
        rows = session.scalars(
            select(Batch).where(
                Batch.import_state.is_not(None), Batch.finished_at.is_(None), Batch.status == OPEN
            )
        )
        return [
            b.id
            for b in rows
            if b.import_state
            and not b.import_state.get("done")
            and (b.import_state.get("lease_until") or "") < now
        ]


def import_page(
    sessions: sessionmaker[Session],
    settings: Settings,
    blobs: BlobStore,
    source: BlobSource,
    *,
    batch_id: str,
    token: str | None,
    page_size: int = PAGE,
) -> str | None:
    """Import one page (after `token`); returns the next token, or None once the listing ended."""
    with sessions() as session:
        batch = session.get(Batch, batch_id)
        assert batch is not None
        assert batch.source is not None
        tenant_id, prefix = batch.tenant_id, _prefix(batch.source["storage_prefix"])
    objects, next_token = source.list_page(prefix, token=token, limit=page_size)
    with sessions() as session:
        known = submission.known_keys(session, batch_id, [item_key(o) for o in objects])
    items: list[Item] = []
    refused: list[tuple[str, str, str]] = []  # (item key, external id, code)
    for obj in objects:
        key = item_key(obj)
        if obj.key.endswith("/") or key in known:
            continue
        external_id = obj.key[len(prefix) :][:200] or obj.key[-200:]
        job_id = new_id("job")
        stored = _copy(source, blobs, tenant_id, job_id, obj, settings=settings)
        if stored is None:
            refused.append((key, external_id, "unsupported_media_type"))
            continue
        options = JobOptionsIn(external_id=external_id)
        items.append(Item(job_id=job_id, stored=stored, options=options, item_key=key))
    _record(
        sessions, settings, batch_id, items, refused, next_token=next_token, listed=len(objects)
    )
    return next_token


def item_key(obj: BlobStat) -> str:
    """An object's identity in a batch: the same key with the same content is one item."""
    return "s3:" + hashlib.sha256(f"{obj.key}\x00{obj.etag}".encode()).hexdigest()[:48]


def _copy(
    source: BlobSource,
    blobs: BlobStore,
    tenant_id: str,
    job_id: str,
    obj: BlobStat,
    *,
    settings: Settings,
) -> JobInput | None:
    """Sniff the object and copy it into our store as a new job's input; None if not audio."""
    if obj.size == 0 or obj.size > settings.max_upload_bytes:
        return None
    fmt = sniff(source.head(obj.key, 64))
    if fmt is None:
        return None
    dest = artifacts.input_key(tenant_id, job_id, fmt.ext)
    source.copy_into(obj.key, blobs, dest, content_type=fmt.content_type)
    return JobInput(
        kind=InputKind.AUDIO,
        blob_key=dest,
        sha256=f"etag:{obj.etag}",
        content_type=fmt.content_type,
        bytes=obj.size,
        format=fmt.ext,
    )


def _record(
    sessions: sessionmaker[Session],
    settings: Settings,
    batch_id: str,
    items: list[Item],
    refused: list[tuple[str, str, str]],
    *,
    next_token: str | None,
    listed: int,
) -> None:
    with transaction(sessions) as session:
        batch = session.get(Batch, batch_id, with_for_update=True)
        assert batch is not None
        tenant = session.get(Tenant, batch.tenant_id)
        assert tenant is not None
        submitter = Submitter.of(tenant.id, tenant.config, tenant.config_version)
        if items:
            submission.submit_items(session, settings, submitter, batch, items)
        for key, external_id, code in refused:
            batches.refuse_item(
                session, batch, key=key, external_id=external_id, code=code, message=REFUSED
            )
        state = dict(batch.import_state or {})
        state.update(
            token=next_token, done=next_token is None, listed=int(state.get("listed", 0)) + listed
        )
        lease = utcnow() + timedelta(seconds=LEASE_S)
        state["lease_until"] = None if next_token is None else lease.isoformat()
        batch.import_state = state
        if next_token is None and batch.status == OPEN:
            batches.close(session, batch, settings=settings)  # the night's prefix is all in


def _prefix(uri: str) -> str:
    return uri.removeprefix("s3://").partition("/")[2]

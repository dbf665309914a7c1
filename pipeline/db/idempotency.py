"""Idempotency keys: claim a key, then store the response it produced or release it.

A claim is an INSERT committed in its own transaction; the unique (tenant_id, key) constraint makes
exactly one of any number of concurrent requests win it. Losers read the row they lost to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.db.idempotency_models import COMPLETED, IN_FLIGHT, IdempotencyKey
from pipeline.db.models import utcnow
from pipeline.db.session import transaction
from pipeline.ids import new_id

CLAIM_ROUNDS = 3  # insert, lose, find the winner gone (released or expired), try again


@dataclass(frozen=True)
class KeyRequest:
    """Who presents which key for which request; `fingerprint` is None until the body is read."""

    tenant_id: str
    key: str
    method: str
    path: str
    fingerprint: str | None


@dataclass(frozen=True)
class Claimed:
    """This request won the key and must `complete` or `release` it."""

    claim_id: str


@dataclass(frozen=True)
class InFlight:
    """Another request holds the key and has not answered yet."""


@dataclass(frozen=True)
class Stored:
    """The key's first request finished: its response, to be replayed."""

    method: str
    path: str
    fingerprint: str | None
    status_code: int
    headers: dict[str, str]
    body: bytes


Claim = Claimed | InFlight | Stored


def claim(
    sessions: sessionmaker[Session], request: KeyRequest, *, ttl_s: int, stale_after_s: int
) -> Claim:
    """Claim `request.key` for its tenant, or say who holds it.

    Expired rows and in-flight rows older than `stale_after_s` (their process died before it could
    release them) count as absent. Never raises on contention: after a few lost rounds the key is
    reported in flight, and the client retries.
    """
    for _ in range(CLAIM_ROUNDS):
        now = utcnow()
        try:
            return _insert(sessions, request, now=now, ttl_s=ttl_s)
        except IntegrityError:
            pass  # somebody holds it: look at what they hold
        with transaction(sessions) as session:
            row = _find(session, request.tenant_id, request.key)
            if row is None:
                continue  # released between our insert and this read
            if _is_dead(row, now=now, stale_after_s=stale_after_s):
                session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == row.id))
                continue
            return _held(row)
    return InFlight()


def _insert(
    sessions: sessionmaker[Session], request: KeyRequest, *, now: datetime, ttl_s: int
) -> Claimed:
    claim_id = new_id("idk")
    with transaction(sessions) as session:
        session.add(
            IdempotencyKey(
                id=claim_id,
                tenant_id=request.tenant_id,
                key=request.key,
                method=request.method,
                path=request.path,
                state=IN_FLIGHT,
                fingerprint=request.fingerprint,
                created_at=now,
                expires_at=now + timedelta(seconds=ttl_s),
            )
        )
    return Claimed(claim_id)


def _find(session: Session, tenant_id: str, key: str) -> IdempotencyKey | None:
    query = select(IdempotencyKey).where(
        IdempotencyKey.tenant_id == tenant_id, IdempotencyKey.key == key
    )
    return session.scalars(query).one_or_none()


def _is_dead(row: IdempotencyKey, *, now: datetime, stale_after_s: int) -> bool:
    if row.expires_at <= now:
        return True
    stale = row.created_at + timedelta(seconds=stale_after_s) <= now
    return row.state == IN_FLIGHT and stale


def _held(row: IdempotencyKey) -> Claim:
    if row.state != COMPLETED or row.status_code is None:
        return InFlight()
    return Stored(
        method=row.method,
        path=row.path,
        fingerprint=row.fingerprint,
        status_code=row.status_code,
        headers={str(k): str(v) for k, v in row.response_headers.items()},
        body=row.response_body or b"",
    )


def complete(
    sessions: sessionmaker[Session],
    claim_id: str,
    *,
    fingerprint: str | None,
    status_code: int,
    headers: dict[str, str],
    body: bytes,
) -> None:
    """Store the response of a claimed key for replay. A no-op if the claim was taken over."""
    values: dict[str, Any] = {
        "state": COMPLETED,
        "fingerprint": fingerprint,
        "status_code": status_code,
        "response_headers": headers,
        "response_body": body,
        "completed_at": utcnow(),
    }
    with transaction(sessions) as session:
        session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == claim_id, IdempotencyKey.state == IN_FLIGHT)
            .values(**values)
        )


def release(sessions: sessionmaker[Session], claim_id: str) -> None:
    """Forget an in-flight claim (the request failed in a way the client should retry)."""
    with transaction(sessions) as session:
        session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.id == claim_id, IdempotencyKey.state == IN_FLIGHT
            )
        )


def purge_expired(session: Session, *, now: datetime, limit: int = 1000) -> int:
    """Delete up to `limit` expired keys (they are already ignored by `claim`); returns how many."""
    expired = (
        select(IdempotencyKey.id)
        .where(IdempotencyKey.expires_at <= now)
        .order_by(IdempotencyKey.expires_at)
        .limit(limit)
    )
    ids = list(session.scalars(expired))
    if ids:
        session.execute(delete(IdempotencyKey).where(IdempotencyKey.id.in_(ids)))
    return len(ids)

"""Tenants and their API keys. Keys are shown once; only a SHA-256 and a display prefix are stored.

A key's life: created (active) → rotated (still active until `expires_at`, so clients can switch
over) → expired; or revoked, which stops it at once. `tenant_for_key` honours both.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from pipeline.db.models import ApiKey, Tenant, utcnow
from pipeline.ids import new_id

KEY_PREFIX = "ci_live_"
ROTATION_OVERLAP = timedelta(hours=24)


def hash_key(key: str) -> str:
    # Keys carry 192 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class NewKey:
    id: str
    tenant_id: str
    secret: str  # shown once
    prefix: str


@dataclass(frozen=True)
class RotatedKey:
    new: NewKey
    previous: ApiKey  # its `expires_at` says until when it still works


def create_tenant(session: Session, *, name: str, config: dict[str, Any] | None = None) -> Tenant:
    """A tenant at configuration version 0 (`config` is stored as given; see tenant_config.put_config)."""
    tenant = Tenant(id=new_id("ten"), name=name, config=config or {}, config_version=0)
    session.add(tenant)
    session.flush()
    return tenant


def list_tenants(session: Session) -> list[Tenant]:
    return list(session.scalars(select(Tenant).order_by(Tenant.created_at, Tenant.id)))


def find_tenant(session: Session, ref: str) -> Tenant | None:
    """A tenant by id or by exact name (CLI convenience)."""
    tenant = session.get(Tenant, ref)
    if tenant is not None:
        return tenant
    return session.scalars(select(Tenant).where(Tenant.name == ref)).first()


def create_key(session: Session, *, tenant_id: str, name: str = "") -> NewKey:
    secret = KEY_PREFIX + secrets.token_urlsafe(24)
    key = ApiKey(
        id=new_id("key"),
        tenant_id=tenant_id,
        name=name,
        prefix=secret[: len(KEY_PREFIX) + 4],
        key_hash=hash_key(secret),
    )
    session.add(key)
    return NewKey(id=key.id, tenant_id=tenant_id, secret=secret, prefix=key.prefix)


def list_keys(session: Session, tenant_id: str) -> list[ApiKey]:
    """Every key of the tenant, revoked and expired ones included, oldest first."""
    query = select(ApiKey).where(ApiKey.tenant_id == tenant_id)
    return list(session.scalars(query.order_by(ApiKey.created_at, ApiKey.id)))


def rotate_key(
    session: Session,
    *,
    tenant_id: str,
    key_id: str,
    overlap: timedelta = ROTATION_OVERLAP,
    now: datetime | None = None,
) -> RotatedKey | None:
    """A new key (same name) replacing `key_id`, which keeps working for `overlap` after `now`.

    None when the tenant has no usable key `key_id` (unknown, revoked or already expired). An old
    key that already expires sooner keeps its earlier end: rotating twice never extends a key.
    """
    now = now or utcnow()
    old = _usable_key(session, tenant_id=tenant_id, key_id=key_id, now=now)
    if old is None:
        return None
    new = create_key(session, tenant_id=tenant_id, name=old.name)
    ends = now + overlap
    old.expires_at = ends if old.expires_at is None else min(old.expires_at, ends)
    session.flush()
    return RotatedKey(new=new, previous=old)


def revoke_key(
    session: Session, *, tenant_id: str, key_id: str, now: datetime | None = None
) -> ApiKey | None:
    """Stop `key_id` at once; idempotent (a revoked key keeps its first revocation time).

    None when the tenant has no key `key_id`.
    """
    key = session.scalars(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.tenant_id == tenant_id)
    ).one_or_none()
    if key is not None and key.revoked_at is None:
        key.revoked_at = now or utcnow()
        session.flush()
    return key


def tenant_for_key(session: Session, secret: str, *, now: datetime | None = None) -> Tenant | None:
    """The tenant owning an active key, or None (see `key_and_tenant`)."""
    found = key_and_tenant(session, secret, now=now)
    return found[1] if found is not None else None


def key_and_tenant(
    session: Session, secret: str, *, now: datetime | None = None
) -> tuple[ApiKey, Tenant] | None:
    """An active key and its tenant, or None: one query, by hash (an indexed equality)."""
    now = now or utcnow()
    found = session.execute(
        select(ApiKey, Tenant)
        .join(Tenant, Tenant.id == ApiKey.tenant_id)
        .where(ApiKey.key_hash == hash_key(secret), *_active(now))
    ).one_or_none()
    if found is None:
        return None
    key, tenant = found
    # Throttled so that reads stay reads: one write per key per minute at most.
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        key.last_used_at = now
    return key, tenant


def _active(now: datetime) -> tuple[Any, ...]:
    return (
        ApiKey.revoked_at.is_(None),
        or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
    )


def _usable_key(session: Session, *, tenant_id: str, key_id: str, now: datetime) -> ApiKey | None:
    query = select(ApiKey).where(ApiKey.id == key_id, ApiKey.tenant_id == tenant_id, *_active(now))
    return session.scalars(query.with_for_update()).one_or_none()

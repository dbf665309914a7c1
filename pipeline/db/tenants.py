"""Tenants and their API keys. Keys are shown once; only a SHA-256 and a display prefix are stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.db.models import ApiKey, Tenant, utcnow
from pipeline.ids import new_id

KEY_PREFIX = "ci_live_"


def hash_key(key: str) -> str:
    # Keys carry 192 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class NewKey:
    id: str
    tenant_id: str
    secret: str  # shown once
    prefix: str


def create_tenant(session: Session, *, name: str, config: dict[str, Any] | None = None) -> Tenant:
    tenant = Tenant(id=new_id("ten"), name=name, config=config or {})
    session.add(tenant)
    session.flush()
    return tenant


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


def tenant_for_key(session: Session, secret: str) -> Tenant | None:
    """The tenant owning an active key, or None. The lookup is by hash, an indexed equality."""
    key = session.scalars(
        select(ApiKey).where(ApiKey.key_hash == hash_key(secret), ApiKey.revoked_at.is_(None))
    ).one_or_none()
    if key is None:
        return None
    now = utcnow()
    # Throttled so that reads stay reads: one write per key per minute at most.
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        key.last_used_at = now
    return session.get(Tenant, key.tenant_id)


def find_tenant(session: Session, ref: str) -> Tenant | None:
    """A tenant by id or by exact name (CLI convenience)."""
    tenant = session.get(Tenant, ref)
    if tenant is not None:
        return tenant
    return session.scalars(select(Tenant).where(Tenant.name == ref)).first()

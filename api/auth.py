"""API-key authentication: `Authorization: Bearer <key>` or `X-API-Key: <key>` → the caller's tenant."""

from __future__ import annotations

from dataclasses import dataclass

from flask import g, request

from api.problems import ApiProblem
from api.state import state
from pipeline.db.session import transaction
from pipeline.db.tenants import key_and_tenant
from pipeline.submission import Submitter


@dataclass(frozen=True)
class Caller:
    tenant_id: str
    tenant_name: str
    config: dict[str, object]
    config_version: int = 0
    api_key_id: str | None = None  # who acts, for the audit trail

    @property
    def submitter(self) -> Submitter:
        """The tenant with its typed configuration, as the submission service takes it."""
        return Submitter.of(self.tenant_id, self.config, self.config_version)


def presented_key() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("X-API-Key") or None


def require_caller() -> Caller:
    """The authenticated tenant for this request (cached on `g`), or a 401 problem."""
    cached: Caller | None = g.get("caller")
    if cached is not None:
        return cached
    key = presented_key()
    if not key:
        raise _unauthenticated("an API key is required (Authorization: Bearer <key>)")
    with transaction(state().sessions) as session:
        found = key_and_tenant(session, key)
        if found is None:
            raise _unauthenticated("the API key is not valid")
        api_key, tenant = found
        caller = Caller(
            tenant_id=tenant.id,
            tenant_name=tenant.name,
            config=dict(tenant.config),
            config_version=tenant.config_version,
            api_key_id=api_key.id,
        )
    g.caller = caller
    return caller


def _unauthenticated(detail: str) -> ApiProblem:
    return ApiProblem(401, "unauthenticated", detail, headers={"WWW-Authenticate": "Bearer"})

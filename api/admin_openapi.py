"""The `/v1/admin/…` and `/v1/tenant…` parts of the OpenAPI document (api/openapi.py merges them in)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from api.webhook_openapi import Helpers, Mode, Ok, ProblemOf, Ref
from schemas.admin import (
    ConfigVersionList,
    ConfigView,
    KeyCreated,
    KeyIn,
    KeyList,
    KeyRotated,
    RotateIn,
    TenantIn,
    TenantList,
    TenantPatch,
    TenantSelfView,
    TenantView,
)
from schemas.tenant import TenantConfig

SCHEMAS: list[tuple[type[BaseModel], Mode]] = [
    (TenantIn, "validation"),
    (TenantPatch, "validation"),
    (TenantConfig, "validation"),
    (KeyIn, "validation"),
    (RotateIn, "validation"),
    (TenantView, "serialization"),
    (TenantList, "serialization"),
    (ConfigView, "serialization"),
    (ConfigVersionList, "serialization"),
    (KeyCreated, "serialization"),
    (KeyRotated, "serialization"),
    (KeyList, "serialization"),
    (TenantSelfView, "serialization"),
]
ADMIN_SECURITY: list[dict[str, list[str]]] = [{"adminKey": []}]
SECURITY_SCHEME = {
    "adminKey": {"type": "http", "scheme": "bearer", "description": "ADMIN_API_KEY (/v1/admin)"}
}
_TENANT = {"name": "tenant_id", "in": "path", "required": True, "schema": {"type": "string"}}
_KEY = {"name": "key_id", "in": "path", "required": True, "schema": {"type": "string"}}
_VERSION = {"name": "version", "in": "path", "required": True, "schema": {"type": "integer"}}
_COMMENT = {"name": "comment", "in": "query", "required": False, "schema": {"type": "string"}}
_YAML = "application/yaml"


def admin_paths(ok: Ok, problem: ProblemOf, ref: Ref) -> dict[str, Any]:
    """Paths of the admin API, built with api/openapi.py's helpers (listed only when enabled)."""
    h = Helpers(ok, problem, ref)
    paths = {**_tenant_paths(h), **_config_paths(h), **_key_paths(h)}
    for operations in paths.values():
        for operation in operations.values():
            operation["security"] = ADMIN_SECURITY
            operation["responses"]["401"] = problem("Missing or wrong admin key")
    return paths


def self_paths(ok: Ok, problem: ProblemOf, ref: Ref) -> dict[str, Any]:
    """Paths of the tenant self-service API (`/v1/tenant…`, the tenant's own API key)."""
    return _self_paths(Helpers(ok, problem, ref))


def _op(summary: str, responses: dict[str, Any], *params: dict[str, Any]) -> dict[str, Any]:
    return {"summary": summary, "parameters": list(params), "responses": responses}


def _missing(h: Helpers, what: str = "tenant") -> dict[str, Any]:
    return {"404": h.problem(f"No such {what}; every admin route is 404 without ADMIN_API_KEY")}


def _tenant_paths(h: Helpers) -> dict[str, Any]:
    invalid = {"422": h.problem("validation_error, or invalid_config with the error locations")}
    create = _op(
        "Create a tenant (with a configuration: version 1)",
        {"201": h.ok(TenantView, "Created"), **invalid, **_missing(h)},
    )
    create["requestBody"] = h.body(TenantIn)
    patch = _op("Rename a tenant", {"200": h.ok(TenantView, "Updated"), **_missing(h)}, _TENANT)
    patch["requestBody"] = h.body(TenantPatch)
    return {
        "/v1/admin/tenants": {
            "post": create,
            "get": _op("List tenants", {"200": h.ok(TenantList, "Tenants"), **_missing(h)}),
        },
        "/v1/admin/tenants/{tenant_id}": {
            "get": _op("A tenant", {"200": h.ok(TenantView, "The tenant"), **_missing(h)}, _TENANT),
            "patch": patch,
        },
    }


def _config_schema(mode: str) -> dict[str, str]:
    # TenantConfig is documented in both modes (a request body and part of responses) and its
    # scorecards differ between them, so pydantic names the two schemas with a suffix.
    return {"$ref": f"#/components/schemas/{TenantConfig.__name__}-{mode}"}


def _config_read(h: Helpers, description: str) -> dict[str, Any]:
    found = h.ok(ConfigView, description)
    found["content"][_YAML] = {"schema": _config_schema("Output")}  # Accept: application/yaml
    found["headers"] = {"Callintel-Config-Version": {"schema": {"type": "integer"}}}
    return {"200": found, "409": h.problem("tenant_config_invalid: stored before validation")}


def _config_paths(h: Helpers) -> dict[str, Any]:
    put = _op(
        "Replace the configuration (JSON, or YAML with Content-Type: application/yaml)",
        {
            "200": h.ok(ConfigView, "Stored as a new version"),
            "415": h.problem("Neither JSON nor YAML"),
            "422": h.problem("invalid_config: errors[].loc says where"),
            **_missing(h),
        },
        _TENANT,
        _COMMENT,
    )
    schema = _config_schema("Input")
    put["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": schema}, _YAML: {"schema": schema}},
    }
    current = _config_read(h, "The current configuration (YAML with Accept: application/yaml)")
    history = {"200": h.ok(ConfigVersionList, "Versions, oldest first"), **_missing(h)}
    old = _config_read(h, "That version of the configuration")
    return {
        "/v1/admin/tenants/{tenant_id}/config": {
            "get": _op("The current configuration", {**current, **_missing(h)}, _TENANT),
            "put": put,
        },
        "/v1/admin/tenants/{tenant_id}/config/versions": {
            "get": _op("The configuration history", history, _TENANT)
        },
        "/v1/admin/tenants/{tenant_id}/config/versions/{version}": {
            "get": _op("One version", {**old, **_missing(h, "version")}, _TENANT, _VERSION)
        },
    }


def _key_paths(h: Helpers) -> dict[str, Any]:
    create = _op(
        "Create an API key; the answer shows it once",
        {"201": h.ok(KeyCreated, "Created"), **_missing(h)},
        _TENANT,
    )
    create["requestBody"] = {**h.body(KeyIn), "required": False}
    rotate = _op(
        "Replace a key; the old one keeps working for overlap_s (default 24 h)",
        {"201": h.ok(KeyRotated, "The new key, shown once"), **_missing(h, "active key")},
        _TENANT,
        _KEY,
    )
    rotate["requestBody"] = {**h.body(RotateIn), "required": False}
    revoke = _op(
        "Revoke a key at once",
        {"204": {"description": "Revoked"}, **_missing(h, "key")},
        _TENANT,
        _KEY,
    )
    listing = _op(
        "The tenant's keys (never their secrets)",
        {"200": h.ok(KeyList, "Keys"), **_missing(h)},
        _TENANT,
    )
    return {
        "/v1/admin/tenants/{tenant_id}/keys": {"post": create, "get": listing},
        "/v1/admin/tenants/{tenant_id}/keys/{key_id}/rotate": {"post": rotate},
        "/v1/admin/tenants/{tenant_id}/keys/{key_id}": {"delete": revoke},
    }


def _self_paths(h: Helpers) -> dict[str, Any]:
    return {
        "/v1/tenant": {
            "get": _op(
                "Your tenant and its current configuration",
                {"200": h.ok(TenantSelfView, "Your tenant"), **h.auth()},
            )
        },
        "/v1/tenant/config/versions": {
            "get": _op(
                "Your configuration history",
                {"200": h.ok(ConfigVersionList, "Versions, oldest first"), **h.auth()},
            )
        },
    }

"""Tenant, key and configuration rows → public documents (a key's hash never leaves the database)."""

from __future__ import annotations

from flask import Response, request

from api.config_text import YAML_TYPES, config_yaml
from pipeline.db.models import ApiKey, Tenant
from pipeline.db.tenant_config import ConfigVersionInfo, VersionedConfig
from schemas.admin import ConfigVersionList, ConfigVersionView, ConfigView, KeyView, TenantView

VERSION_HEADER = "Callintel-Config-Version"


def tenant_view(tenant: Tenant) -> TenantView:
    return TenantView(
        id=tenant.id,
        name=tenant.name,
        config_version=tenant.config_version,
        created_at=tenant.created_at,
    )


def key_view(key: ApiKey) -> KeyView:
    return KeyView(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
    )


def config_view(loaded: VersionedConfig) -> ConfigView:
    return ConfigView(tenant_id=loaded.tenant_id, version=loaded.version, config=loaded.config)


def versions_view(history: list[ConfigVersionInfo]) -> ConfigVersionList:
    return ConfigVersionList(
        data=[
            ConfigVersionView(
                version=h.version, created_at=h.created_at, author=h.author, comment=h.comment
            )
            for h in history
        ]
    )


def config_response(loaded: VersionedConfig) -> Response:
    """JSON (a ConfigView), or the bare configuration as YAML when the client prefers YAML."""
    offered = ["application/json", *sorted(YAML_TYPES)]
    if request.accept_mimetypes.best_match(offered, default="application/json") in YAML_TYPES:
        body, mimetype = config_yaml(loaded.config), "application/yaml"
    else:
        body, mimetype = config_view(loaded).model_dump_json(), "application/json"
    response = Response(body, mimetype=mimetype)
    response.headers[VERSION_HEADER] = str(loaded.version)
    response.vary.add("Accept")
    return response

"""`/v1/admin`: the operator's API for tenants, their versioned configuration and their API keys.

Every route needs `Authorization: Bearer <ADMIN_API_KEY>`. Without an admin key configured the whole
prefix answers 404, byte-identical to a route that does not exist.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import TypeVar

from flask import Blueprint, Response, request
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound

from api.admin_views import config_response, config_view, key_view, tenant_view, versions_view
from api.config_text import YAML_TYPES, Format, InvalidConfig, parse_config, validate_config
from api.intake import strict_json
from api.problems import ApiProblem, validation_problem
from api.responses import json_response
from api.state import state
from pipeline.db import tenants
from pipeline.db.models import ApiKey, Tenant
from pipeline.db.session import transaction
from pipeline.db.tenant_config import VersionedConfig, list_versions, load_config, put_config
from schemas.admin import (
    KeyCreated,
    KeyIn,
    KeyList,
    KeyRotated,
    RotateIn,
    TenantIn,
    TenantList,
    TenantPatch,
)
from schemas.tenant import TenantConfig

bp = Blueprint("admin", __name__, url_prefix="/v1/admin")
AUTHOR = "admin-api"
PREFIX = "/v1/admin"
Body = TypeVar("Body", bound=BaseModel)


@bp.before_app_request
def _require_admin() -> None:
    # App-wide, so that a wrong method or an unknown path under the prefix is hidden as well.
    if request.path != PREFIX and not request.path.startswith(PREFIX + "/"):
        return
    configured = state().settings.admin_api_key
    expected = configured.get_secret_value() if configured is not None else ""
    if not expected:
        raise NotFound()
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Digests of equal length, so the comparison's time says nothing about the key's length either.
    digest = hashlib.sha256(given.strip().encode()).digest()
    valid = scheme.lower() == "bearer" and hmac.compare_digest(
        digest, hashlib.sha256(expected.encode()).digest()
    )
    if not valid:
        raise ApiProblem(
            401,
            "unauthenticated",
            "the admin key is not valid",
            headers={"WWW-Authenticate": "Bearer"},
        )


@bp.post("/tenants")
def create_tenant() -> Response:
    given = _body(TenantIn)
    config = _validated(given.config) if given.config is not None else None
    with transaction(state().sessions) as session:
        tenant = tenants.create_tenant(session, name=given.name)
        if config is not None:
            put_config(session, tenant.id, config, author=AUTHOR, comment="initial configuration")
        view = tenant_view(tenant)
    response = json_response(view, status=201)
    response.headers["Location"] = f"{PREFIX}/tenants/{view.id}"
    return response


@bp.get("/tenants")
def list_tenants() -> Response:
    with state().sessions() as session:
        return json_response(
            TenantList(data=[tenant_view(t) for t in tenants.list_tenants(session)])
        )


@bp.get("/tenants/<tenant_id>")
def get_tenant(tenant_id: str) -> Response:
    with state().sessions() as session:
        return json_response(tenant_view(_tenant(session, tenant_id)))


@bp.patch("/tenants/<tenant_id>")
def update_tenant(tenant_id: str) -> Response:
    given = _body(TenantPatch)
    with transaction(state().sessions) as session:
        tenant = _tenant(session, tenant_id)
        if given.name is not None:
            tenant.name = given.name
        return json_response(tenant_view(tenant))


@bp.get("/tenants/<tenant_id>/config")
def get_config(tenant_id: str) -> Response:
    with state().sessions() as session:
        _tenant(session, tenant_id)
        return config_response(load_config(session, tenant_id))


@bp.put("/tenants/<tenant_id>/config")
def put_tenant_config(tenant_id: str) -> Response:
    """Replace the configuration (JSON, or YAML with a YAML content type): a new version."""
    config = _config_body()
    comment = request.args.get("comment", "")[:500]
    with transaction(state().sessions) as session:
        _tenant(session, tenant_id)
        version = put_config(session, tenant_id, config, author=AUTHOR, comment=comment)
    return json_response(config_view(VersionedConfig(tenant_id, version, config)))


@bp.get("/tenants/<tenant_id>/config/versions")
def get_config_versions(tenant_id: str) -> Response:
    with state().sessions() as session:
        _tenant(session, tenant_id)
        return json_response(versions_view(list_versions(session, tenant_id)))


@bp.get("/tenants/<tenant_id>/config/versions/<version>")
def get_config_version(tenant_id: str, version: str) -> Response:
    if not (version.isascii() and version.isdecimal()) or len(version) > 9:
        raise ApiProblem(404, "not_found", "no such configuration version")
    with state().sessions() as session:
        _tenant(session, tenant_id)
        return config_response(load_config(session, tenant_id, version=int(version)))


@bp.post("/tenants/<tenant_id>/keys")
def create_key(tenant_id: str) -> Response:
    given = _body(KeyIn, optional=True)
    with transaction(state().sessions) as session:
        _tenant(session, tenant_id)
        new = tenants.create_key(session, tenant_id=tenant_id, name=given.name)
        session.flush()
        row = _key_row(session, new.id)
        view = KeyCreated(**key_view(row).model_dump(), secret=new.secret)
    return json_response(view, status=201)


@bp.get("/tenants/<tenant_id>/keys")
def list_keys(tenant_id: str) -> Response:
    with state().sessions() as session:
        _tenant(session, tenant_id)
        rows = tenants.list_keys(session, tenant_id)
        return json_response(KeyList(data=[key_view(k) for k in rows]))


@bp.post("/tenants/<tenant_id>/keys/<key_id>/rotate")
def rotate_key(tenant_id: str, key_id: str) -> Response:
    given = _body(RotateIn, optional=True)
    overlap = timedelta(seconds=given.overlap_s)
    with transaction(state().sessions) as session:
        _tenant(session, tenant_id)
        rotated = tenants.rotate_key(session, tenant_id=tenant_id, key_id=key_id, overlap=overlap)
        if rotated is None:
            raise ApiProblem(404, "not_found", "no such active API key")
        new = key_view(_key_row(session, rotated.new.id)).model_dump()
        view = KeyRotated(**new, secret=rotated.new.secret, previous=key_view(rotated.previous))
    return json_response(view, status=201)


@bp.delete("/tenants/<tenant_id>/keys/<key_id>")
def revoke_key(tenant_id: str, key_id: str) -> Response:
    with transaction(state().sessions) as session:
        _tenant(session, tenant_id)
        if tenants.revoke_key(session, tenant_id=tenant_id, key_id=key_id) is None:
            raise ApiProblem(404, "not_found", "no such API key")
    return Response(status=204)


def _tenant(session: Session, tenant_id: str) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise ApiProblem(404, "not_found", "no such tenant")
    return tenant


def _key_row(session: Session, key_id: str) -> ApiKey:
    row = session.get(ApiKey, key_id)
    assert row is not None  # made in this very transaction
    return row


def _config_body() -> TenantConfig:
    fmt: Format
    if request.mimetype == "application/json":
        fmt = "json"
    elif request.mimetype in YAML_TYPES:
        fmt = "yaml"
        request.max_content_length = state().settings.max_json_bytes  # read whole, like JSON
    else:
        detail = "send the configuration as application/json or application/yaml"
        raise ApiProblem(415, "unsupported_media_type", detail)
    try:
        return parse_config(request.get_data(), fmt=fmt)
    except InvalidConfig as exc:
        raise _invalid(exc) from exc


def _validated(body: dict[str, object]) -> TenantConfig:
    try:
        return validate_config(body)
    except InvalidConfig as exc:
        raise _invalid(exc) from exc


def _invalid(exc: InvalidConfig) -> ApiProblem:
    return ApiProblem(422, "invalid_config", exc.detail, errors=list(exc.errors))


def _body(model: type[Body], *, optional: bool = False) -> Body:
    if optional and not request.get_data():
        return model()
    if request.mimetype != "application/json":
        raise ApiProblem(415, "unsupported_media_type", "send a JSON body (application/json)")
    try:
        return model.model_validate(strict_json(request.get_data()))
    except ValidationError as exc:
        raise validation_problem(exc) from exc

"""`/v1/tenant`: the calling tenant's own record and configuration (read-only, by its API key).

There is no tenant id in these paths: a key reaches its own tenant and nothing else.
"""

from __future__ import annotations

from flask import Blueprint, Response

from api.admin_views import versions_view
from api.auth import require_caller
from api.state import state
from pipeline.db.tenant_config import list_versions, load_config
from schemas.admin import TenantSelfView

bp = Blueprint("tenant_self", __name__, url_prefix="/v1/tenant")


@bp.get("")
def get_own_tenant() -> Response:
    caller = require_caller()
    with state().sessions() as session:
        loaded = load_config(session, caller.tenant_id)
    view = TenantSelfView(
        id=caller.tenant_id,
        name=caller.tenant_name,
        config_version=loaded.version,
        config=loaded.config,
    )
    return Response(view.model_dump_json(), mimetype="application/json")


@bp.get("/config/versions")
def get_own_config_versions() -> Response:
    caller = require_caller()
    with state().sessions() as session:
        history = versions_view(list_versions(session, caller.tenant_id))
    return Response(history.model_dump_json(), mimetype="application/json")

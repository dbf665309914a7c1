"""`/healthz` (the process answers) and `/readyz` (database, broker and storage all reachable)."""

from __future__ import annotations

import redis
from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from api.state import state
from pipeline.errors import TransientError

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Response:
    checks = {"database": _database(), "broker": _broker(), "storage": _storage()}
    ready = all(v == "ok" for v in checks.values())
    response = jsonify(status="ready" if ready else "unavailable", checks=checks)
    if not ready:
        response.status_code = 503
        response.headers["Retry-After"] = "5"
    return response


def _database() -> str:
    try:
        with state().sessions() as session:
            session.execute(text("SELECT 1"))
    except Exception:
        return "unavailable"
    return "ok"


def _broker() -> str:
    client = redis.Redis.from_url(
        state().settings.redis_url, socket_connect_timeout=2, socket_timeout=2
    )
    try:
        client.ping()
    except redis.RedisError:
        return "unavailable"
    finally:
        client.close()
    return "ok"


def _storage() -> str:
    try:
        state().blobs.check()
    except TransientError:
        return "unavailable"
    return "ok"

"""Inbound provider callbacks: AssemblyAI tells us a transcript finished, so we check it now.

The callback only makes the job's re-check due; the transcript is still fetched by us from the
provider. Answers fast (AssemblyAI wants a 2xx within 10 s), never with our data.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request

from api.problems import ApiProblem
from api.state import state
from pipeline import provider_webhooks
from pipeline.db import provider_checks
from pipeline.db.session import transaction
from workers.outbox import publish_after_commit

log = logging.getLogger(__name__)
bp = Blueprint("provider_callbacks", __name__, url_prefix="/v1/providers")


@bp.post("/assemblyai/webhook")
def assemblyai_webhook() -> Response:
    app = state()
    job_id = request.args.get("job", "")
    token = request.headers.get(provider_webhooks.HEADER, "")
    if not job_id or not provider_webhooks.verify(job_id, token, app.settings):
        raise ApiProblem(401, "unauthenticated", "the callback token is missing or not valid")
    body = request.get_json(silent=True)
    ref = body.get("transcript_id") if isinstance(body, dict) else None
    if not isinstance(ref, str) or not ref:
        raise ApiProblem(400, "invalid_request", "transcript_id is required")
    with transaction(app.sessions) as session:
        waiting = provider_checks.check_now(session, job_id=job_id, ref=ref)
    if waiting:
        publish_after_commit(app.sessions, [job_id])
    log.info("provider callback", extra={"job_id": job_id, "accepted": waiting})
    return jsonify({"received": True, "checked": waiting})

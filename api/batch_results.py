"""`GET /v1/batches/{id}/results`: the morning's file, streamed page by page with flat memory.

JSON Lines: one `CallResult` per completed call, and for an item that did not complete a line
`{"object": "batch_item", "job_id", "external_id", "status", "error"}`. CSV: one row per item.
Each page is read in its own short session, so a slow download never holds a connection.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from flask import Response, stream_with_context
from sqlalchemy import select

from api.state import AppState
from pipeline.db.models import Job, JobResult

PAGE = 500
CSV_COLUMNS = (
    "external_id",
    "job_id",
    "status",
    "error_code",
    "duration_s",
    "score",
    "band",
    "compliance_score",
    "auto_failed",
    "needs_review",
    "risk",
    "top_intents",
    "outcome",
)


def stream_results(
    app: AppState, tenant_id: str, batch_id: str, *, fmt: str, name: str
) -> Response:
    rows = _rows(app, tenant_id, batch_id)
    if fmt == "csv":
        body, mimetype, ext = _csv(rows), "text/csv", "csv"
    else:
        body, mimetype, ext = _jsonl(rows), "application/x-ndjson", "jsonl"
    response = Response(stream_with_context(body), mimetype=mimetype)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80] or batch_id
    response.headers["Content-Disposition"] = f'attachment; filename="{safe}.{ext}"'
    return response


def _rows(
    app: AppState, tenant_id: str, batch_id: str
) -> Iterator[tuple[Job, dict[str, Any] | None]]:
    after = ""
    while True:
        with app.sessions() as session:
            page = session.execute(
                select(Job, JobResult.body)
                .outerjoin(JobResult, JobResult.job_id == Job.id)
                .where(Job.batch_id == batch_id, Job.tenant_id == tenant_id, Job.id > after)
                .order_by(Job.id)
                .limit(PAGE)
            ).all()
        if not page:
            return
        yield from page
        after = page[-1][0].id


def _jsonl(rows: Iterator[tuple[Job, dict[str, Any] | None]]) -> Iterator[bytes]:
    for job, result in rows:
        body = result
        if body is None:
            body = {
                "object": "batch_item",
                "job_id": job.id,
                "external_id": job.external_id,
                "status": job.status,
                "error": {"stage": job.error_stage, "code": job.error_code}
                if job.error_code
                else None,
            }
        yield json.dumps(body, separators=(",", ":")).encode() + b"\n"


def _csv(rows: Iterator[tuple[Job, dict[str, Any] | None]]) -> Iterator[bytes]:
    yield _csv_line(CSV_COLUMNS)
    for job, body in rows:
        yield _csv_line(csv_row(job, body))


def csv_row(job: Job, body: dict[str, Any] | None) -> tuple[Any, ...]:
    """One call as a CSV row (columns: CSV_COLUMNS); result columns are empty until it completed."""
    score = (body or {}).get("score") or {}
    analysis = (body or {}).get("analysis") or {}
    intents = sorted(analysis.get("intents") or [], key=lambda i: -float(i.get("confidence", 0)))
    duration = (body or {}).get("duration_ms")
    return (
        job.external_id or "",
        job.id,
        job.status,
        job.error_code or "",
        round(duration / 1000, 1) if duration is not None else "",
        score.get("normalized", ""),
        score.get("band") or "",
        score.get("compliance_score", ""),
        score.get("auto_failed", ""),
        score.get("needs_review", ""),
        (score.get("risk") or {}).get("score", ""),
        ";".join(str(i.get("name", "")) for i in intents[:3]),
        analysis.get("outcome") or "",
    )


def _csv_line(values: tuple[Any, ...]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerow(["" if v is None else v for v in values])
    return out.getvalue().encode()

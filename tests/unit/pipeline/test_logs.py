"""JSON log lines (LOG_FORMAT=json): one object per line with the context fields, from a job run
through every stage in-process; never the transcript's text."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from api.auth import Caller
from api.intake import accept_transcript
from pipeline import runner
from pipeline.context import Context, build_context
from pipeline.db.models import Job
from pipeline.logs import ContextFormatter, JsonFormatter, bound, formatter
from pipeline.settings import Settings
from schemas.common import STAGES
from schemas.envelope import JobEnvelope
from tests.conftest import TenantKey

SECRET_LINE = "my card number is 4111 1111 1111 1111 and my name is Zebulon"
TRANSCRIPT = {"transcript": f"Agent: Thank you for calling.\nCustomer: {SECRET_LINE}."}


@pytest.fixture
def ctx(settings: Settings) -> Iterator[Context]:
    context = build_context(settings)
    yield context
    context.sessions.kw["bind"].dispose()


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Everything logged at INFO and above, as LOG_FORMAT=json writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def record(msg: str, **extra: Any) -> logging.LogRecord:
    entry = logging.LogRecord("callintel.test", logging.WARNING, __file__, 1, msg, None, None)
    entry.__dict__.update(extra)
    return entry


def test_a_job_logs_json_lines_with_its_ids_and_without_its_text(
    app: Flask, ctx: Context, tenant: TenantKey, json_lines: io.StringIO
) -> None:
    caller = Caller(tenant_id=tenant.tenant_id, tenant_name="acme", config={})
    job = accept_transcript(app.extensions["callintel"], caller, TRANSCRIPT)
    with ctx.sessions() as session:
        row = session.get(Job, job.id)
        assert row is not None
        envelope = JobEnvelope.model_validate(row.envelope)
    for stage in STAGES:
        advanced = runner.run_stage(stage, envelope, ctx)
        assert advanced is not None
        envelope = advanced.envelope

    text = json_lines.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one object
    done = [line for line in lines if line["msg"] == "stage done"]
    assert [line["stage"] for line in done] == [s.value for s in STAGES]
    for line in done:
        assert line["job_id"] == job.id
        assert line["tenant_id"] == tenant.tenant_id  # bound by the runner, not passed per line
        assert {"ts", "level", "logger", "ms"} <= set(line)
    assert "Zebulon" not in text and "4111" not in text


def test_json_lines_carry_extra_fields_and_the_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        failing = record("stage crashed", job_id="job_1", code="internal_error", attempt=2)
        failing.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(failing))
    assert line["level"] == "WARNING" and line["logger"] == "callintel.test"
    assert (line["job_id"], line["code"], line["attempt"]) == ("job_1", "internal_error", 2)
    assert "ValueError: boom" in line["exc"]
    assert "\n" not in JsonFormatter().format(failing)


def test_a_line_own_fields_win_over_the_bound_ones() -> None:
    with bound(job_id="job_outer", stage="score"):
        line = json.loads(JsonFormatter().format(record("x", stage="persist")))
        text = ContextFormatter("%(message)s").format(record("x"))
    assert (line["job_id"], line["stage"]) == ("job_outer", "persist")
    assert text == "x job_id=job_outer stage=score"
    assert "job_id" not in json.loads(JsonFormatter().format(record("after the block")))


def test_log_format_names_the_formatter() -> None:
    assert isinstance(formatter("json"), JsonFormatter)
    assert isinstance(formatter("text"), ContextFormatter)

"""`GET /v1/jobs/{id}/events`: Server-Sent Events read from a real threaded server as they are sent.

The job is moved by the test itself through `pipeline.db.jobs` (no worker), one step after each
event received, so every transition is observed. Timeouts are safety nets only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from api import create_app
from pipeline.db import jobs as job_repo
from pipeline.db.models import Job
from pipeline.db.session import transaction
from pipeline.settings import Settings
from schemas.common import Stage
from tests.conftest import TenantKey
from tests.support.live_server import live_server
from tests.unit.api.conftest import PostTranscript

READ_TIMEOUT = 30  # seconds without a byte before a test gives up (a hang, not a measurement)
Change = Callable[[Session, Job], object]


@dataclass
class Event:
    id: str
    name: str
    data: dict[str, Any]


@dataclass
class EventStream:
    """A minimal SSE client: events in order, comments kept, None once the server closed."""

    response: requests.Response
    comments: list[str] = field(default_factory=list)
    retry: str | None = None

    def __post_init__(self) -> None:
        self._lines = self.response.iter_lines(chunk_size=None, decode_unicode=True)

    def next(self) -> Event | None:
        fields: dict[str, str] = {}
        for line in self._lines:
            if line.startswith(":"):
                self.comments.append(line)
            elif line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
            elif "event" in fields:
                return Event(fields["id"], fields["event"], json.loads(fields["data"]))
            else:
                self.retry = fields.get("retry", self.retry)
                fields = {}
        return None

    def next_comment(self) -> str:
        for line in self._lines:
            if line.startswith(":"):
                return line
        raise AssertionError("the stream ended without a comment")


@dataclass
class Live:
    """One app behind a real server, and the streams opened on it (closed before it stops)."""

    url: str
    app: Flask
    opened: list[requests.Response] = field(default_factory=list)

    def stream(self, path: str, headers: dict[str, str]) -> EventStream:
        response = requests.get(
            self.url + path, headers=headers, stream=True, timeout=(5, READ_TIMEOUT)
        )
        self.opened.append(response)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["Cache-Control"] == "no-cache"
        return EventStream(response)

    def close_streams(self) -> None:
        for response in self.opened:
            response.close()


def make_app(settings: Settings, **overrides: float) -> Flask:
    # A short heartbeat also ends a stream soon after its client went away (the write fails).
    fast = {"events_poll_s": 0.05, "events_heartbeat_s": 0.2, "events_max_lifetime_s": 60.0}
    return create_app({"TESTING": True, "SETTINGS": settings.model_copy(update=fast | overrides)})


@pytest.fixture
def serve(settings: Settings) -> Iterator[Callable[..., Live]]:
    """Start the app with event settings overridden; everything is undone in reverse order."""
    with ExitStack() as stack:

        def start(**overrides: float) -> Live:
            app = make_app(settings, **overrides)
            stack.callback(app.extensions["callintel"].engine.dispose)
            live = Live(stack.enter_context(live_server(app)), app)
            stack.callback(live.close_streams)
            return live

        yield start


@pytest.fixture
def live(serve: Callable[..., Live]) -> Live:
    return serve()


def move(sessions: sessionmaker[Session], job_id: str, change: Change) -> None:
    with transaction(sessions) as session:
        job = job_repo.lock_job(session, job_id)
        assert job is not None
        change(session, job)


def begin(stage: Stage) -> Change:
    return lambda session, job: job_repo.begin_stage(session, job, stage, max_attempts=3)


def finish(stage: Stage) -> Change:
    return lambda session, job: job_repo.finish_stage(
        session, job.id, stage, provider="test", model=None
    )


def complete(session: Session, job: Job) -> object:
    return job_repo.complete_job(
        session, job, schema_version="test", body={"ok": True}, settings=Settings()
    )


def fail(session: Session, job: Job) -> object:
    return job_repo.fail_job(
        session, job, Stage.DIARIZE, code="invalid_audio", message="bad", settings=Settings()
    )


def expect(stream: EventStream) -> Event:
    event = stream.next()
    assert event is not None, "the stream ended early"
    return event


def assert_ends_now(stream: EventStream) -> None:
    """The server closed the stream right after the final event: not even a heartbeat followed
    (a stream kept open would send one within `events_heartbeat_s`, long before its lifetime)."""
    heartbeats = len(stream.comments)
    assert stream.next() is None
    assert len(stream.comments) == heartbeats


# --- the stream follows the job ---------------------------------------------------------------


def test_events_follow_the_job_until_it_completes(
    live: Live, tenant: TenantKey, post_transcript: PostTranscript, sessions: sessionmaker[Session]
) -> None:
    job_id = post_transcript(tenant)["id"]
    stream = live.stream(f"/v1/jobs/{job_id}/events", tenant.headers)

    queued = expect(stream)
    assert (queued.name, queued.data["status"], queued.data["progress"]) == ("stage", "queued", 0)
    assert set(queued.data) == {"id", "status", "stage", "progress", "updated_at"}
    assert stream.retry is not None and stream.retry.isdigit()

    move(sessions, job_id, begin(Stage.TRANSCRIBE))
    running = expect(stream)
    assert (running.name, running.data["status"], running.data["stage"]) == (
        "stage",
        "transcribing",
        "transcribe",
    )
    move(sessions, job_id, finish(Stage.TRANSCRIBE))
    assert expect(stream).data["progress"] == 0.2

    move(sessions, job_id, complete)
    done = expect(stream)
    assert (done.name, done.data["id"], done.data["status"]) == ("completed", job_id, "completed")
    assert done.data["links"]["result"] == f"/v1/jobs/{job_id}/result"
    assert_ends_now(stream)
    assert len({queued.id, running.id, done.id}) == 3


def test_a_failed_job_ends_the_stream_with_failed(
    live: Live, tenant: TenantKey, post_transcript: PostTranscript, sessions: sessionmaker[Session]
) -> None:
    job_id = post_transcript(tenant)["id"]
    stream = live.stream(f"/v1/jobs/{job_id}/events", tenant.headers)
    assert expect(stream).name == "stage"
    move(sessions, job_id, fail)
    failed = expect(stream)
    assert failed.name == "failed"
    assert failed.data["error"] == {"stage": "diarize", "code": "invalid_audio", "message": "bad"}
    assert_ends_now(stream)


def test_last_event_id_resumes_after_the_last_event_seen(
    live: Live, tenant: TenantKey, post_transcript: PostTranscript, sessions: sessionmaker[Session]
) -> None:
    job_id = post_transcript(tenant)["id"]
    path = f"/v1/jobs/{job_id}/events"
    first = expect(live.stream(path, tenant.headers))

    move(sessions, job_id, begin(Stage.TRANSCRIBE))
    resumed = live.stream(path, {**tenant.headers, "Last-Event-ID": first.id})
    running = expect(resumed)  # not the queued state it already has
    assert running.data["status"] == "transcribing" and running.id != first.id

    caught_up = live.stream(path, {**tenant.headers, "Last-Event-ID": running.id})
    move(sessions, job_id, finish(Stage.TRANSCRIBE))
    assert expect(caught_up).data["progress"] == 0.2  # nothing re-sent before the next change

    move(sessions, job_id, complete)
    final = expect(live.stream(path, tenant.headers))
    assert final.name == "completed"
    again = requests.get(
        live.url + path, headers={**tenant.headers, "Last-Event-ID": final.id}, timeout=30
    )
    assert (again.status_code, again.content) == (204, b"")  # EventSource stops reconnecting


# --- isolation, heartbeats, lifetime, connections ------------------------------------------------


def test_another_tenants_job_is_the_same_404_as_a_missing_one(
    client: FlaskClient, tenant: TenantKey, other_tenant: TenantKey, post_transcript: PostTranscript
) -> None:
    job_id = post_transcript(tenant)["id"]
    theirs = client.get(f"/v1/jobs/{job_id}/events", headers=other_tenant.headers)
    missing = client.get(f"/v1/jobs/job_{'0' * 26}/events", headers=other_tenant.headers)
    malformed = client.get("/v1/jobs/nope/events", headers=other_tenant.headers)
    assert theirs.status_code == missing.status_code == malformed.status_code == 404
    assert theirs.get_data() == missing.get_data() == malformed.get_data()
    assert theirs.mimetype == "application/problem+json"


def test_events_need_an_api_key(
    client: FlaskClient, tenant: TenantKey, post_transcript: PostTranscript
) -> None:
    job_id = post_transcript(tenant)["id"]
    assert client.get(f"/v1/jobs/{job_id}/events").status_code == 401


def test_heartbeats_keep_an_idle_stream_alive(
    live: Live, tenant: TenantKey, post_transcript: PostTranscript
) -> None:
    job_id = post_transcript(tenant)["id"]
    stream = live.stream(f"/v1/jobs/{job_id}/events", tenant.headers)
    assert expect(stream).data["status"] == "queued"
    assert stream.next_comment() == ": heartbeat"


def test_the_stream_closes_after_its_lifetime(
    serve: Callable[..., Live], tenant: TenantKey, post_transcript: PostTranscript
) -> None:
    live = serve(events_max_lifetime_s=0.3)
    job_id = post_transcript(tenant)["id"]
    stream = live.stream(f"/v1/jobs/{job_id}/events", tenant.headers)
    assert expect(stream).data["status"] == "queued"
    assert stream.next() is None  # closed although the job is still queued: the client reconnects


def test_no_database_connection_is_held_between_polls(
    serve: Callable[..., Live], tenant: TenantKey, post_transcript: PostTranscript
) -> None:
    live = serve(events_poll_s=0.2)
    pool = live.app.extensions["callintel"].engine.pool
    job_id = post_transcript(tenant)["id"]
    stream = live.stream(f"/v1/jobs/{job_id}/events", tenant.headers)
    assert expect(stream).data["status"] == "queued"
    deadline = time.monotonic() + READ_TIMEOUT
    while pool.checkedout() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.checkedout() == 0  # the stream is open and idle, yet holds no connection


def test_streams_per_process_are_capped_and_their_slot_is_freed_on_disconnect(
    serve: Callable[..., Live], tenant: TenantKey, post_transcript: PostTranscript
) -> None:
    """Each stream holds a server thread: past the cap a client gets 503 and polls instead."""
    live = serve(events_max_streams=1)
    path = f"/v1/jobs/{post_transcript(tenant)['id']}/events"
    first = live.stream(path, tenant.headers)
    assert expect(first).data["status"] == "queued"
    refused = requests.get(live.url + path, headers=tenant.headers, timeout=30)
    assert refused.status_code == 503 and refused.headers["Retry-After"].isdigit()
    assert refused.json()["code"] == "service_unavailable"

    first.response.close()  # the server notices at its next heartbeat and frees the slot
    deadline = time.monotonic() + READ_TIMEOUT
    while True:
        again = requests.get(live.url + path, headers=tenant.headers, stream=True, timeout=30)
        live.opened.append(again)
        if again.status_code == 200 or time.monotonic() > deadline:
            break
        again.close()
        time.sleep(0.05)
    assert again.status_code == 200

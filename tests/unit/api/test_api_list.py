"""`GET /v1/jobs`: newest first, limits, cursor pagination and filters, and how bad queries fail."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from pipeline.db.models import Job
from pipeline.db.session import transaction
from schemas.api import JobList
from tests.conftest import TenantKey
from tests.unit.api.conftest import PostTranscript


def listing(client: FlaskClient, tenant: TenantKey, **query: Any) -> dict[str, Any]:
    response = client.get("/v1/jobs", headers=tenant.headers, query_string=query)
    assert response.status_code == 200, response.json
    JobList.model_validate(response.json)
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [job["id"] for job in body["data"]]


def all_pages(client: FlaskClient, tenant: TenantKey, **query: Any) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        body = listing(client, tenant, **query, **({"cursor": cursor} if cursor else {}))
        pages.append(ids(body))
        assert body["has_more"] == (body["next_cursor"] is not None)
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 20, "pagination does not end"


def make_jobs(post: PostTranscript, tenant: TenantKey, count: int) -> list[str]:
    """`count` jobs, oldest first."""
    return [post(tenant, external_id=f"ext-{i}")["id"] for i in range(count)]


def set_created_at(sessions: sessionmaker[Session], job_ids: list[str], when: datetime) -> None:
    with transaction(sessions) as session:
        session.execute(update(Job).where(Job.id.in_(job_ids)).values(created_at=when))


def cursor_of(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def test_empty_list(client: FlaskClient, tenant: TenantKey) -> None:
    body = listing(client, tenant)
    assert body == {"object": "list", "data": [], "has_more": False, "next_cursor": None}


def test_newest_first(
    client: FlaskClient, tenant: TenantKey, post_transcript: PostTranscript
) -> None:
    created = make_jobs(post_transcript, tenant, 3)
    body = listing(client, tenant)
    assert ids(body) == created[::-1]
    assert body["has_more"] is False and body["next_cursor"] is None
    assert [j["status"] for j in body["data"]] == ["queued"] * 3
    assert all(len(j["steps"]) == 5 for j in body["data"])


def test_limit(client: FlaskClient, tenant: TenantKey, post_transcript: PostTranscript) -> None:
    created = make_jobs(post_transcript, tenant, 3)
    body = listing(client, tenant, limit=2)
    assert ids(body) == created[:0:-1]
    assert body["has_more"] is True and body["next_cursor"]
    assert ids(listing(client, tenant, limit=3)) == created[::-1]
    assert listing(client, tenant, limit=3)["has_more"] is False


def test_cursor_pages_return_every_job_exactly_once(
    client: FlaskClient, tenant: TenantKey, post_transcript: PostTranscript
) -> None:
    created = make_jobs(post_transcript, tenant, 5)
    pages = all_pages(client, tenant, limit=2)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [i for page in pages for i in page] == created[::-1]


def test_pagination_is_exact_when_jobs_share_a_creation_time(
    client: FlaskClient,
    tenant: TenantKey,
    post_transcript: PostTranscript,
    sessions: sessionmaker[Session],
) -> None:
    """Bulk intake can create many jobs in one microsecond: the id breaks the tie."""
    created = make_jobs(post_transcript, tenant, 5)
    set_created_at(sessions, created, datetime(2026, 1, 1, 12, tzinfo=UTC))
    flat = [i for page in all_pages(client, tenant, limit=2) for i in page]
    assert sorted(flat) == sorted(created) and len(flat) == 5
    assert flat == sorted(created, reverse=True)


def test_filters(
    client: FlaskClient,
    tenant: TenantKey,
    post_transcript: PostTranscript,
    sessions: sessionmaker[Session],
) -> None:
    old, mid, new = make_jobs(post_transcript, tenant, 3)
    base = datetime(2026, 3, 1, tzinfo=UTC)
    for offset, job_id in enumerate((old, mid, new)):
        set_created_at(sessions, [job_id], base + timedelta(hours=offset))
    with transaction(sessions) as session:
        session.execute(update(Job).where(Job.id == mid).values(status="failed"))

    assert ids(listing(client, tenant, status="failed")) == [mid]
    assert ids(listing(client, tenant, status="queued")) == [new, old]
    assert ids(listing(client, tenant, status="completed")) == []
    assert ids(listing(client, tenant, external_id="ext-2")) == [new]
    assert ids(listing(client, tenant, external_id="nope")) == []
    at_mid = (base + timedelta(hours=1)).isoformat()
    assert ids(listing(client, tenant, created_gte=at_mid)) == [new, mid]
    assert ids(listing(client, tenant, created_lt=at_mid)) == [old]
    assert ids(listing(client, tenant, created_gte="2026-03-01T01:00:00Z")) == [new, mid]
    in_paris = "2026-03-01T03:00:00+02:00"  # the same instant as base + 1 h
    assert ids(listing(client, tenant, created_gte=in_paris, created_lt=in_paris)) == []
    assert ids(listing(client, tenant, created_gte=in_paris, status="queued")) == [new]


def test_filters_combine_with_pagination(
    client: FlaskClient, tenant: TenantKey, post_transcript: PostTranscript
) -> None:
    created = make_jobs(post_transcript, tenant, 4)
    post_transcript(tenant, external_id="other")
    pages = all_pages(client, tenant, limit=1, status="queued", created_gte="2000-01-01T00:00:00Z")
    assert len(pages) == 5
    only_ext1 = all_pages(client, tenant, limit=1, external_id="ext-1")
    assert only_ext1 == [[created[1]]]


BAD_QUERIES = {
    "cursor-garbage": ({"cursor": "not a cursor!"}, "invalid_cursor"),
    "cursor-not-json": (
        {"cursor": base64.urlsafe_b64encode(b"\x00\xff").decode()},
        "invalid_cursor",
    ),
    "cursor-wrong-shape": ({"cursor": cursor_of({"a": 1})}, "invalid_cursor"),
    "cursor-three-items": (
        {"cursor": cursor_of(["2026-01-01T00:00:00Z", "a", "b"])},
        "invalid_cursor",
    ),
    "cursor-number": ({"cursor": cursor_of(5)}, "invalid_cursor"),
    "cursor-bad-time": ({"cursor": cursor_of(["yesterday", "job_x"])}, "invalid_cursor"),
    "limit-zero": ({"limit": "0"}, "invalid_request"),
    "limit-too-big": ({"limit": "101"}, "invalid_request"),
    "limit-negative": ({"limit": "-1"}, "invalid_request"),
    "limit-word": ({"limit": "ten"}, "invalid_request"),
    "limit-float": ({"limit": "1.5"}, "invalid_request"),
    "limit-superscript": ({"limit": "\u00b2"}, "invalid_request"),
    "status-unknown": ({"status": "done"}, "invalid_request"),
    "created-not-a-time": ({"created_gte": "yesterday"}, "invalid_request"),
    "created-naive": ({"created_lt": "2026-01-01T00:00:00"}, "invalid_request"),
}


@pytest.mark.parametrize(("query", "code"), BAD_QUERIES.values(), ids=BAD_QUERIES.keys())
def test_bad_queries_are_400(
    client: FlaskClient, tenant: TenantKey, query: dict[str, str], code: str
) -> None:
    response = client.get("/v1/jobs", headers=tenant.headers, query_string=query)
    assert response.status_code == 400, (response.status_code, response.json)
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == code


def test_empty_query_values_count_as_absent(
    client: FlaskClient, tenant: TenantKey, post_transcript: PostTranscript
) -> None:
    job = post_transcript(tenant)
    empty = {n: "" for n in ("status", "external_id", "batch_id", "created_gte", "cursor", "limit")}
    response = client.get("/v1/jobs", headers=tenant.headers, query_string=empty)
    assert response.status_code == 200, response.json
    assert [j["id"] for j in response.json["data"]] == [job["id"]]


@pytest.mark.parametrize(
    "query",
    [{"external_id": "a\x00b"}, {"cursor": cursor_of(["2026-01-01T00:00:00+00:00", "job\x00"])}],
    ids=["external_id", "cursor-id"],
)
def test_nul_in_a_query_is_not_an_outage(
    client: FlaskClient, tenant: TenantKey, query: dict[str, str]
) -> None:
    response = client.get("/v1/jobs", headers=tenant.headers, query_string=query)
    assert response.status_code in {200, 400}, (response.status_code, response.json)

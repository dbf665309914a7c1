"""The batches part of the OpenAPI document (`/v1/batches`; api/openapi.py merges it in)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from api.webhook_openapi import Helpers, Mode, Ok, ProblemOf, Ref
from schemas.batches import BatchIn, BatchItemIn, BatchItemsResult, BatchList, BatchView

SCHEMAS: list[tuple[type[BaseModel], Mode]] = [
    (BatchIn, "validation"),
    (BatchItemIn, "validation"),
    (BatchView, "serialization"),
    (BatchList, "serialization"),
    (BatchItemsResult, "serialization"),
]
_BATCH_ID = {"name": "batch_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def batch_paths(ok: Ok, problem: ProblemOf, ref: Ref) -> dict[str, Any]:
    h = Helpers(ok, problem, ref)
    return {
        "/v1/batches": {"post": _create(h), "get": _listing(h)},
        "/v1/batches/{batch_id}": {"get": _one(h, "The batch's status, from its counters")},
        "/v1/batches/{batch_id}/items": {"post": _items(h)},
        "/v1/batches/{batch_id}/close": {"post": _action(h, "No more items: complete when done")},
        "/v1/batches/{batch_id}/cancel": {
            "post": _action(h, "Cancel the items not yet released (released ones finish)")
        },
        "/v1/batches/{batch_id}/retry-failed": {
            "post": _action(
                h, "Put failed items back in the backlog (they resume where they failed)"
            )
        },
        "/v1/batches/{batch_id}/results": {"get": _results(h)},
    }


def _create(h: Helpers) -> dict[str, Any]:
    return {
        "summary": "Create a batch (optionally a server-side import of an allowed s3:// prefix)",
        "requestBody": h.body(BatchIn),
        "responses": {
            "201": h.ok(BatchView, "Created"),
            "422": h.problem("validation_error, import_prefix_not_allowed, invalid_webhook_url"),
            **h.auth(),
        },
    }


def _listing(h: Helpers) -> dict[str, Any]:
    statuses = {"type": "string", "enum": ["open", "closed", "cancelled", "completed"]}
    return {
        "summary": "List batches, newest first",
        "parameters": [
            _query("name", "Only batches with this name", {"type": "string"}),
            _query("status", "Only batches in this status", statuses),
            _query("limit", "Page size", {"type": "integer", "minimum": 1, "maximum": 100}),
            _query("cursor", "next_cursor of the previous page", {"type": "string"}),
        ],
        "responses": {
            "200": h.ok(BatchList, "Batches"),
            "400": h.problem("invalid_request or invalid_cursor"),
            **h.auth(),
        },
    }


def _one(h: Helpers, summary: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "parameters": [_BATCH_ID],
        "responses": {"200": h.ok(BatchView, "The batch"), **h.missing("batch")},
    }


def _items(h: Helpers) -> dict[str, Any]:
    line = {"schema": {"type": "string", "description": "JSON Lines: one BatchItemIn per line"}}
    return {
        "summary": "Add items: JSON Lines, one BatchItemIn per line, read as a stream",
        "description": "Each line gives exactly one of upload_id, key, transcript. A line that "
        "does not parse, or whose input is unusable, is listed in `rejected` with its number; "
        "the others are added. A line whose idempotency_key the batch holds is a duplicate.",
        "parameters": [_BATCH_ID],
        "requestBody": {"required": True, "content": {"application/x-ndjson": line}},
        "responses": {
            "200": h.ok(BatchItemsResult, "What was added, duplicated and rejected"),
            "409": h.problem("batch_not_open"),
            "415": h.problem("unsupported_media_type: not application/x-ndjson"),
            "422": h.problem("batch_full"),
            **h.missing("batch"),
        },
    }


def _action(h: Helpers, summary: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "parameters": [_BATCH_ID],
        "responses": {
            "200": h.ok(BatchView, "The batch"),
            "409": h.problem("batch_not_open: the batch was cancelled"),
            **h.missing("batch"),
        },
    }


def _results(h: Helpers) -> dict[str, Any]:
    fmt = {"type": "string", "enum": ["jsonl", "csv"]}
    return {
        "summary": "The batch's results as one file, streamed (JSON Lines or CSV)",
        "parameters": [_BATCH_ID, _query("format", "jsonl (default) or csv; or by Accept", fmt)],
        "responses": {
            "200": {
                "description": "JSON Lines: a CallResult per completed call, a batch_item line "
                "for the others; CSV: one row per call",
                "content": {
                    "application/x-ndjson": {"schema": {"type": "string"}},
                    "text/csv": {"schema": {"type": "string"}},
                },
            },
            "400": h.problem("invalid_request: an unknown format"),
            **h.missing("batch"),
        },
    }

"""The re-scoring and provider-callback parts of the OpenAPI document (api/openapi.py merges them)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from api.webhook_openapi import Helpers, Mode, Ok, ProblemOf, Ref
from schemas.rescore import BulkRescoreIn, RescoreBatchView, RescoreIn, RescoreList, RescoreView

SCHEMAS: list[tuple[type[BaseModel], Mode]] = [
    (RescoreIn, "validation"),
    (BulkRescoreIn, "validation"),
    (RescoreView, "serialization"),
    (RescoreBatchView, "serialization"),
    (RescoreList, "serialization"),
]


def rescore_paths(ok: Ok, problem: ProblemOf, ref: Ref) -> dict[str, Any]:
    h = Helpers(ok, problem, ref)
    job_id = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
    rescore_id = {
        "name": "rescore_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
    one = {
        "summary": "Re-score a completed call with the tenant's current scorecard (no new transcription)",
        "description": "Set `reanalyze` to run the analyzer again too. Poll the rescore's status.",
        "parameters": [job_id],
        "requestBody": {**h.body(RescoreIn), "required": False},  # no body: the defaults
        "responses": {
            "202": h.ok(RescoreView, "Queued; Location is the rescore's status"),
            "409": problem("job_not_completed, or input_purged (retention took its artifacts)"),
            **h.missing("job"),
        },
    }
    bulk = {
        "summary": "Re-score the tenant's completed calls matching a filter (at most `limit`)",
        "requestBody": {**h.body(BulkRescoreIn), "required": False},  # no body: the defaults
        "responses": {
            "202": h.ok(RescoreBatchView, "Queued"),
            "422": problem("validation_error"),
            **h.auth(),
        },
    }
    batch = {"name": "batch_id", "in": "query", "required": False, "schema": {"type": "string"}}
    job = {"name": "job_id", "in": "query", "required": False, "schema": {"type": "string"}}
    return {
        "/v1/jobs/{job_id}/rescore": {"post": one},
        "/v1/rescore": {"post": bulk},
        "/v1/rescores": {
            "get": {
                "summary": "List rescores (of a batch, or of a job)",
                "parameters": [batch, job],
                "responses": {"200": h.ok(RescoreList, "Rescores, oldest first"), **h.auth()},
            }
        },
        "/v1/rescores/{rescore_id}": {
            "get": {
                "summary": "A rescore: old and new scores and what changed per item",
                "parameters": [rescore_id],
                "responses": {"200": h.ok(RescoreView, "The rescore"), **h.missing("rescore")},
            }
        },
    }


def callback_paths(problem: ProblemOf) -> dict[str, Any]:
    """AssemblyAI's completion callback (called by AssemblyAI, not by clients)."""
    body = {
        "type": "object",
        "required": ["transcript_id"],
        "properties": {"transcript_id": {"type": "string"}, "status": {"type": "string"}},
    }
    return {
        "/v1/providers/assemblyai/webhook": {
            "post": {
                "summary": "AssemblyAI says a transcript finished: re-check that job now",
                "security": [],
                "parameters": [
                    {"name": "job", "in": "query", "required": True, "schema": {"type": "string"}},
                    {
                        "name": "X-Callintel-Token",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": body}},
                },
                "responses": {
                    "200": {"description": "Received (`checked`: whether a waiting job matched)"},
                    "400": problem("invalid_request"),
                    "401": problem("The per-job token is missing or wrong"),
                },
            }
        }
    }

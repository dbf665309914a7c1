"""Intake: store the submitted input, then create the job and its outbox row in one transaction."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from api.auth import Caller
from api.idempotency import record_upload
from api.problems import ApiProblem, too_long, validation_problem
from api.state import AppState
from api.uploads import (
    HashingPartStream,
    MultipartReader,
    read_form,
    read_head,
)
from api.webhook_urls import check_callback_url
from pipeline import artifacts, submission
from pipeline.db import batches
from pipeline.db.batch_models import OPEN, Batch
from pipeline.db.models import Job
from pipeline.db.session import transaction
from pipeline.errors import InvalidInput, TooLong
from pipeline.ids import new_id
from pipeline.limits import check_audio_seconds, check_transcript
from pipeline.media import check_channel_map, head_channels, head_wav_seconds, sniff
from pipeline.submission import Item
from pipeline.transcript_text import parse_text
from schemas.api import JobOptionsIn, TranscriptJobIn
from schemas.common import InputKind
from schemas.envelope import JobInput

SUPPORTED = "WAV, MP3, FLAC, OGG, M4A or WebM audio"


def accept_audio(app: AppState, caller: Caller, reader: MultipartReader) -> Job:
    """Stream the audio part into storage, then create the job. Nothing is stored on any error."""
    job_id = new_id("job")
    stored: JobInput | None = None

    def store(part: MultipartReader) -> None:
        nonlocal stored  # kept as soon as it exists, so any later failure deletes the blob
        stored = _store_audio(app, caller, job_id, part)

    try:
        fields = read_form(reader, store)
        record_upload(fields, stored.sha256 if stored else None)  # Idempotency-Key fingerprint
        if stored is None:
            raise ApiProblem(422, "missing_file", "send the recording in a multipart field 'file'")
        options = _options_from_fields(fields)
        check_channels(options, stored)
        return _create(app, caller, job_id, stored, options)
    except BaseException:
        if stored is not None:
            app.blobs.delete(stored.blob_key)
        raise


def _store_audio(app: AppState, caller: Caller, job_id: str, reader: MultipartReader) -> JobInput:
    head = read_head(reader, 64)
    fmt = sniff(head)
    if fmt is None:
        raise ApiProblem(415, "unsupported_media_type", f"the file is not {SUPPORTED}")
    key = artifacts.input_key(caller.tenant_id, job_id, fmt.ext)
    stream = HashingPartStream(reader, head=head, limit=app.settings.max_upload_bytes)
    try:
        app.blobs.put_stream(key, stream, content_type=fmt.content_type)  # type: ignore[arg-type]
        # A WAV header tells the duration; other formats are measured at transcribe.
        check_audio_seconds(head_wav_seconds(head, total_bytes=stream.size), app.settings)
    except TooLong as exc:
        app.blobs.delete(key)
        raise too_long(exc) from exc
    except BaseException:  # too large, malformed, a storage error: keep no partial object
        app.blobs.delete(key)
        raise
    return JobInput(
        kind=InputKind.AUDIO,
        blob_key=key,
        sha256=stream.sha256.hexdigest(),
        content_type=fmt.content_type,
        bytes=stream.size,
        format=fmt.ext,
        channels=head_channels(head),
    )


def check_channels(options: JobOptionsIn, stored: JobInput) -> None:
    """422 for a `channel_map` naming a channel the recording lacks (known for WAV headers; other
    formats are checked when they are decoded)."""
    try:
        check_channel_map(options.channel_map, channels=stored.channels)
    except InvalidInput as exc:
        error = {"loc": "channel_map", "msg": exc.message, "type": exc.code}
        raise ApiProblem(422, "validation_error", exc.message, errors=[error]) from exc


def accept_transcript(app: AppState, caller: Caller, body: Any) -> Job:
    try:
        given = TranscriptJobIn.model_validate(body)
        # Unusable or too long text is refused now, not in a worker later.
        turns = (
            parse_text(given.transcript) if isinstance(given.transcript, str) else given.transcript
        )
        check_transcript(turns, app.settings)
    except ValidationError as exc:
        raise validation_problem(exc) from exc
    except TooLong as exc:
        raise too_long(exc) from exc
    except InvalidInput as exc:
        raise ApiProblem(422, "invalid_transcript", exc.message) from exc
    job_id = new_id("job")
    stored = store_transcript(app, caller.tenant_id, job_id, body["transcript"])
    options = JobOptionsIn.model_validate(given.model_dump(exclude={"transcript"}))
    try:
        return _create(app, caller, job_id, stored, options)
    except BaseException:
        app.blobs.delete(stored.blob_key)
        raise


def store_transcript(app: AppState, tenant_id: str, job_id: str, transcript: Any) -> JobInput:
    """Store a validated transcript (turns or text) as the job's input blob."""
    data = json.dumps({"transcript": transcript}).encode()
    key = artifacts.input_key(tenant_id, job_id, "json")
    app.blobs.put_bytes(key, data, content_type="application/json")
    return JobInput(
        kind=InputKind.TRANSCRIPT,
        blob_key=key,
        sha256=hashlib.sha256(data).hexdigest(),
        content_type="application/json",
        bytes=len(data),
        format="json",
    )


def _create(
    app: AppState, caller: Caller, job_id: str, stored: JobInput, options: JobOptionsIn
) -> Job:
    if options.callback_url is not None:
        check_callback_url(app, caller, options.callback_url)  # SSRF policy + a secret to sign
    item = Item(job_id=job_id, stored=stored, options=options)
    with transaction(app.sessions) as session:
        batch = open_batch(session, caller, options.batch_id) if options.batch_id else None
        return submission.submit(session, app.settings, caller.submitter, item, batch=batch)


def open_batch(session: Session, caller: Caller, batch_id: str) -> Batch:
    """The caller's batch, locked, if it still takes items: 404 when not theirs, 409 when closed."""
    batch = batches.owned(session, caller.tenant_id, batch_id, lock=True)
    if batch is None:
        raise ApiProblem(404, "not_found", "no such batch")
    if batch.status != OPEN:
        raise ApiProblem(409, "batch_not_open", f"the batch is {batch.status}; it takes no items")
    return batch


def _options_from_fields(fields: dict[str, str]) -> JobOptionsIn:
    parsed: dict[str, Any] = {}
    for name, value in fields.items():
        parsed[name] = _FIELD_PARSERS.get(name, str)(value)
    try:
        return JobOptionsIn.model_validate(parsed)
    except ValidationError as exc:
        raise validation_problem(exc) from exc


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def strict_json(data: bytes | str) -> dict[str, Any]:
    """A JSON object, refusing NaN/Infinity (Python accepts them; JSON and PostgreSQL do not)."""
    try:
        body = json.loads(data, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise ApiProblem(400, "invalid_request", "the body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise ApiProblem(400, "invalid_request", "the body must be a JSON object")
    return body


def _json_field(value: str) -> Any:
    try:
        return json.loads(value, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiProblem(422, "validation_error", "a form field must be valid JSON") from exc


def _channel_map(value: str) -> Any:
    """JSON (`{"0": "agent"}`) or the short form `agent,customer` (roles by channel index)."""
    if value.lstrip().startswith("{"):
        return _json_field(value)
    return {i: role.strip() for i, role in enumerate(value.split(","))}


_FIELD_PARSERS: dict[str, Callable[[str], Any]] = {
    "metadata": _json_field,
    "channel_map": _channel_map,
}

"""`POST /v1/batches/{id}/items`: JSON Lines read as a stream, added in chunks of a few hundred.

Each line is one item (an upload, a storage key or a transcript). A line that does not parse or
whose input is unusable is rejected with its line number and a code; the others go on. Each chunk
is one transaction with multi-row INSERTs, so 10,000 lines never sit in memory or in one commit.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from api.auth import Caller
from api.batch_presenters import batch_view
from api.intake import store_transcript
from api.state import AppState
from pipeline import submission, uploads
from pipeline.db import batches
from pipeline.db.batch_models import OPEN, Batch
from pipeline.db.session import transaction
from pipeline.errors import InvalidInput, PermanentError, TooLong
from pipeline.ids import new_id
from pipeline.limits import check_transcript
from pipeline.media import check_channel_map
from pipeline.settings import Settings
from pipeline.submission import Item
from pipeline.transcript_text import parse_text
from schemas.api import ItemOptions, JobOptionsIn
from schemas.batches import BatchItemError, BatchItemIn, BatchItemOut, BatchItemsResult
from schemas.envelope import JobInput

CHUNK_LINES = 500
MAX_LINE_BYTES = 1024 * 1024
TOO_LONG = b"\x00"  # stands for a line over MAX_LINE_BYTES (a real line is never a bare NUL)
_OPTION_FIELDS = set(ItemOptions.model_fields)


class LineRejected(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


@dataclass
class Tally:
    accepted: int = 0
    duplicates: int = 0

    def __post_init__(self) -> None:
        self.rejected: list[BatchItemError] = []
        self.items: list[BatchItemOut] = []

    def reject(self, line: int, code: str, detail: str) -> None:
        self.rejected.append(BatchItemError(line=line, code=code, detail=detail))


def add_items(app: AppState, caller: Caller, batch_id: str, stream: IO[bytes]) -> BatchItemsResult:
    """Read every line of `stream`, adding items to the batch chunk by chunk."""
    tally = Tally()
    for chunk in _chunks(_lines(stream)):
        parsed: list[tuple[int, Item]] = []
        for number, raw in chunk:
            try:
                parsed.append((number, _item(app, caller, raw)))
            except LineRejected as exc:
                tally.reject(number, exc.code, exc.detail)
        _commit(app, caller, batch_id, parsed, tally)
    with app.sessions() as session:
        batch = batches.owned(session, caller.tenant_id, batch_id)
        assert batch is not None  # checked before the body was read; batches are never deleted
        view = batch_view(batch)
    return BatchItemsResult(
        accepted=tally.accepted,
        duplicates=tally.duplicates,
        rejected=tally.rejected,
        items=tally.items,
        batch=view,
    )


def _commit(
    app: AppState, caller: Caller, batch_id: str, parsed: list[tuple[int, Item]], tally: Tally
) -> None:
    if not parsed:
        return
    with transaction(app.sessions) as session:
        batch, taken = _room(
            session, app, caller=caller, batch_id=batch_id, parsed=parsed, tally=tally
        )
        accepted = submission.submit_items(
            session, app.settings, caller.submitter, batch, [item for _, item in taken]
        )
    for (number, item), outcome in zip(taken, accepted, strict=True):
        tally.items.append(
            BatchItemOut(line=number, job_id=outcome.job_id, duplicate=outcome.duplicate)
        )
        if outcome.duplicate:
            tally.duplicates += 1
            _forget(app, item)
        else:
            tally.accepted += 1


def _forget(app: AppState, item: Item) -> None:
    """Delete a transcript stored for a line that turned out to be a duplicate."""
    if item.stored.blob_key.endswith(f"/{item.job_id}/input.json"):
        app.blobs.delete(item.stored.blob_key)


def _room(
    session: Session,
    app: AppState,
    *,
    caller: Caller,
    batch_id: str,
    parsed: list[tuple[int, Item]],
    tally: Tally,
) -> tuple[Batch, list[tuple[int, Item]]]:
    """The batch and the lines that fit: the batch must be open and under the item limit (locks the batch)."""
    from api.problems import ApiProblem

    batch = batches.owned(session, caller.tenant_id, batch_id, lock=True)
    assert batch is not None
    first = not tally.items and not tally.rejected
    if batch.status != OPEN:
        # A replayed line (a client resuming after the batch was closed) gets its job back; only
        # new items are refused.
        keys = [i.item_key for _, i in parsed if i.item_key]
        known = submission.known_keys(session, batch.id, keys)
        if first and not known:
            raise ApiProblem(
                409, "batch_not_open", f"the batch is {batch.status}; it takes no items"
            )
        for number, item in parsed:
            if item.item_key in known:
                tally.items.append(
                    BatchItemOut(line=number, job_id=known[item.item_key], duplicate=True)
                )
                tally.duplicates += 1
                _forget(app, item)
            else:
                tally.reject(number, "batch_not_open", f"the batch is {batch.status}")
        return batch, []
    room = max(app.settings.batch_max_items - batch.total, 0)
    if room == 0 and first:
        limit = app.settings.batch_max_items
        raise ApiProblem(422, "batch_full", f"a batch holds at most {limit} items; start another")
    for number, _ in parsed[room:]:
        tally.reject(
            number, "batch_full", f"a batch holds at most {app.settings.batch_max_items} items"
        )
    return batch, parsed[:room]


def _item(app: AppState, caller: Caller, raw: bytes) -> Item:
    line = _parse(raw)
    _check_length(line, app.settings)
    job_id = new_id("job")
    options = JobOptionsIn.model_validate(line.model_dump(include=_OPTION_FIELDS))
    stored = _input(app, caller, job_id, line)
    try:
        check_channel_map(options.channel_map, channels=stored.channels)
    except InvalidInput as exc:
        raise LineRejected("validation_error", f"channel_map: {exc.message}") from exc
    return Item(job_id=job_id, stored=stored, options=options, item_key=line.idempotency_key)


def _parse(raw: bytes) -> BatchItemIn:
    if raw == TOO_LONG:
        raise LineRejected("line_too_long", f"a line may hold at most {MAX_LINE_BYTES} bytes")
    try:
        body = json.loads(raw, parse_constant=_refuse)
    except (ValueError, RecursionError) as exc:
        raise LineRejected("invalid_json", "the line is not a JSON object") from exc
    if not isinstance(body, dict):
        raise LineRejected("invalid_json", "the line is not a JSON object")
    try:
        line = BatchItemIn.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "line"
        raise LineRejected("validation_error", f"{where}: {first['msg']}") from exc
    if isinstance(line.transcript, str):
        try:
            parse_text(line.transcript)
        except InvalidInput as exc:
            raise LineRejected("invalid_transcript", exc.message) from exc
    return line


def _check_length(line: BatchItemIn, settings: Settings) -> None:
    """A transcript beyond a capacity limit is refused as `too_long`, naming the limit."""
    if line.transcript is None:
        return
    turns = parse_text(line.transcript) if isinstance(line.transcript, str) else line.transcript
    try:
        check_transcript(turns, settings)
    except TooLong as exc:
        raise LineRejected(exc.code, exc.message) from exc


def _input(app: AppState, caller: Caller, job_id: str, line: BatchItemIn) -> JobInput:
    limit, limits = app.settings.max_upload_bytes, app.settings
    try:
        if line.upload_id is not None:
            return uploads.input_from_upload(
                app.blobs,
                tenant_id=caller.tenant_id,
                upload_id=line.upload_id,
                max_bytes=limit,
                limits=limits,
            )
        if line.key is not None:
            key = _own_key(caller, line.key)
            return uploads.input_from_blob(app.blobs, key, max_bytes=limit, limits=limits)
    except PermanentError as exc:
        raise LineRejected(exc.code, exc.message) from exc
    transcript: Any = (
        line.transcript
        if isinstance(line.transcript, str)
        else [t.model_dump(exclude_none=True) for t in line.transcript or []]
    )
    return store_transcript(app, caller.tenant_id, job_id, transcript)


def _own_key(caller: Caller, key: str) -> str:
    """A storage key item may only name the tenant's own objects."""
    area = f"tenants/{caller.tenant_id}/"
    if not key.startswith(area) or ".." in key.split("/") or "\\" in key:
        raise LineRejected("key_not_allowed", f"a key must be under {area}")
    return key


def _lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of every non-blank line; an over-long line is reported, then skipped."""
    number = 0
    while raw := stream.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while (rest := stream.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
            yield number, TOO_LONG
            continue
        if raw.strip():
            yield number, raw


def _chunks(lines: Iterator[tuple[int, bytes]]) -> Iterator[list[tuple[int, bytes]]]:
    chunk: list[tuple[int, bytes]] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= CHUNK_LINES:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")

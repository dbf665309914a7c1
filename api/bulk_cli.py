"""`callintel bulk …`: the nightly bulk submission of a call center (submit, status, results), a
client of the batch API; `api/cli.py` adds this group to the `callintel` command.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from api.bulk_client import BulkRun, Options, Outcome, find_batch, import_prefix
from api.bulk_http import Api, ApiError
from api.bulk_sources import Call, Found, find_calls
from api.bulk_state import BulkState, StateError, default_state_path
from api.bulk_view import UploadProgress, describe, summary, watch

CHUNK = 1024 * 1024

url_option = click.option("--url", default="http://127.0.0.1:8000", show_default=True)
key_option = click.option(
    "--key", envvar="CALLINTEL_API_KEY", required=True, help="or CALLINTEL_API_KEY"
)
interval_option = click.option(
    "--interval",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds between refreshes (of a watched batch).",
)


@click.group()
def bulk() -> None:
    """Many calls in one batch: submit (resumable), follow, download the results."""


@bulk.command("submit")
@click.argument("sources", nargs=-1, required=True)
@click.option("--batch", "batch_name", required=True, help="The batch's name (found or created).")
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(1, 64))
@click.option("--call-type", default=None, help="The batch's call type.")
@click.option("--metadata", default=None, help="The batch's metadata, a JSON object.")
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Resume file (default: .callintel-bulk-<batch>.json here).",
)
@click.option("--keep-open", is_flag=True, help="Do not close the batch at the end.")
@click.option(
    "--group-size",
    default=200,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Items per POST …/items.",
)
@interval_option
@url_option
@key_option
@click.pass_context
def bulk_submit(
    ctx: click.Context,
    /,
    *,
    sources: tuple[str, ...],
    batch_name: str,
    concurrency: int,
    call_type: str | None,
    metadata: str | None,
    state_file: Path | None,
    keep_open: bool,
    group_size: int,
    interval: float,
    url: str,
    key: str,
) -> None:
    """Submit SOURCE... (files, directories, globs, CSV manifests, or one s3://bucket/prefix/) as
    one batch, --batch NAME. A re-run with the same NAME resumes; nothing is created twice."""
    found = find_calls(list(sources))
    options = Options(
        batch=batch_name,
        call_type=call_type,
        metadata=_json_object(metadata),
        concurrency=concurrency,
        keep_open=keep_open,
        group_size=group_size,
    )
    api = _api(url, key)
    if found.storage_prefixes:
        _import(api, options, found, interval=interval)
        return
    state_path = state_file or default_state_path(batch_name)
    outcome = _run(api, options, found, state_path=state_path)
    for line in summary(outcome, found.problems):
        click.echo(line)
    if outcome.failures or found.problems:
        ctx.exit(1)


@bulk.command("status")
@click.argument("batch")
@click.option("--watch", "follow", is_flag=True, help="Refresh until completed or cancelled.")
@interval_option
@url_option
@key_option
def bulk_status(*, batch: str, follow: bool, interval: float, url: str, key: str) -> None:
    """BATCH's (id or name) counts, progress, ETA and failures."""
    api = _api(url, key)
    with _api_errors():
        batch_id = _batch_id(api, batch)
        if follow:
            watch(api, batch_id, interval=interval, echo=click.echo)
        else:
            click.echo("\n".join(describe(api.call("GET", f"/v1/batches/{batch_id}"))))


@bulk.command("results")
@click.argument("batch")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), help="Default: from -o.")
@url_option
@key_option
def bulk_results(*, batch: str, output: Path, fmt: str | None, url: str, key: str) -> None:
    """Download BATCH's (id or name) results to OUTPUT (.jsonl or .csv), streamed."""
    chosen = fmt or {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}.get(output.suffix)
    if chosen is None:
        raise click.UsageError("say --format jsonl|csv (the output's extension does not)")
    api = _api(url, key)
    with _api_errors():
        batch_id = _batch_id(api, batch)
        written = _download(api, f"/v1/batches/{batch_id}/results", {"format": chosen}, output)
    click.echo(f"{written} bytes of {chosen} results written to {output}", err=True)


def _run(api: Api, options: Options, found: Found, *, state_path: Path) -> Outcome:
    """Upload and add the files, behind a progress bar; Ctrl-C leaves a state file to resume."""
    try:
        state = BulkState.load(state_path, batch=options.batch)
    except StateError as exc:
        raise click.ClickException(str(exc)) from exc
    total = sum(_size(call) for call in found.calls)
    try:
        with (
            _api_errors(),
            UploadProgress(files=len(found.calls), total_bytes=total) as progress,
        ):
            return BulkRun(api, state, options, advance=progress.advance).run(found.calls)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: run the same command again to resume ({state_path})", err=True)
        raise SystemExit(130) from None


def _import(api: Api, options: Options, found: Found, *, interval: float) -> None:
    if found.calls or found.problems or len(found.storage_prefixes) > 1:
        raise click.UsageError(
            "an s3:// prefix is imported by the server: give it as the only SOURCE"
        )
    with _api_errors():
        batch = import_prefix(api, options, found.storage_prefixes[0])
        click.echo(f"batch {batch['id']} imports {found.storage_prefixes[0]}", err=True)
        watch(api, batch["id"], interval=interval, echo=click.echo)


def _api(url: str, key: str) -> Api:
    with _api_errors():
        return Api(url, api_key=key)


def _batch_id(api: Api, ref: str) -> str:
    if ref.startswith("bat_"):
        return ref
    batch = find_batch(api, ref)
    if batch is None:
        raise click.ClickException(f"no batch named {ref!r}")
    return str(batch["id"])


def _download(api: Api, path: str, query: dict[str, str], output: Path) -> int:
    """Stream a body to `output` chunk by chunk (via a temporary file, renamed once complete)."""
    fd, temporary = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.resolve().parent)
    try:
        with os.fdopen(fd, "wb") as handle, api.stream(path, query=query) as response:
            shutil.copyfileobj(response, handle, CHUNK)
            written = handle.tell()
        os.replace(temporary, output)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return written


@contextmanager
def _api_errors() -> Iterator[None]:
    """An ApiError ends the command with its message instead of a traceback."""
    try:
        yield
    except ApiError as exc:
        raise click.ClickException(str(exc)) from exc


def _json_object(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--metadata")
    return value


def _size(call: Call) -> int:
    try:
        return call.path.stat().st_size
    except OSError:
        return 0

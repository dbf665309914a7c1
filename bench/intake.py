"""Intake of a large recording through the real API under gunicorn: memory and speed of the upload.

Measures, for each BlobStore (`file://` and `s3://` on moto's server in a separate process):
- the gunicorn worker's RSS (the worker child, not the arbiter) sampled every 50 ms while a
  256 MiB WAV is POSTed as multipart/form-data: baseline, peak and growth
  (goal: growth <= 64 MiB, i.e. the upload is streamed, never buffered whole — RELIABILITY #11);
- the upload's wall time against a raw `shutil.copyfile` of the same bytes in the same run
  (median of --copies; `os.sync()` before each copy and before the upload so dirty pages left by
  the previous step do not land in the next timing) (goal: upload <= 2x the copy); for reference
  also a Python read + SHA-256 + write loop, the work an upload cannot avoid;
- the same upload sent chunked, without Content-Length (unless --no-chunked);
- for S3, which calls moto saw (one PutObject means the body was buffered whole before sending).

The client streams too: the WAV is written to a temp file in chunks and sent from a generator.
No worker runs, so the accepted jobs simply stay queued in a private Redis database; the Redis
database is flushed and the throwaway PostgreSQL database dropped at the end.

    .venv/bin/python bench/intake.py                      # full size: 256 MiB, both stores
    .venv/bin/python bench/intake.py --size-mib 16 --stores file   # quick
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import math
import os
import shutil
import statistics
import struct
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import psutil
from _stack import start_moto as start_moto_server
from _support import (
    DEFAULT_REDIS_URL,
    RssSampler,
    base_env,
    cleanup_on_sigterm,
    free_port,
    migrated_database,
    new_api_key,
    private_redis,
    spawn,
    wait_http_ok,
    wait_until,
)

MIB = 1024 * 1024
CHUNK = MIB
BUCKET = "callintel-bench"
RSS_GOAL_MIB = 64
RATIO_GOAL = 2.0


@dataclass(frozen=True)
class Store:
    name: str
    storage_url: str
    endpoint: str | None
    server_log: Path | None = None  # moto's request log: which S3 calls an upload made


@dataclass(frozen=True)
class Upload:
    status: int
    seconds: float
    body: dict[str, object]


@dataclass(frozen=True)
class Measured:
    upload: Upload
    copies: list[float]
    python_copy_s: float
    baseline: int
    peak: int
    after: int
    samples: int
    cpu_s: float
    s3_calls: dict[str, int] | None

    @property
    def copy_s(self) -> float:
        return statistics.median(self.copies)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=256, help="WAV size (default 256)")
    parser.add_argument("--stores", default="file,s3", help="comma list of file, s3")
    parser.add_argument("--repeats", type=int, default=1, help="measured uploads per store")
    parser.add_argument("--copies", type=int, default=3, help="raw copies timed (median used)")
    parser.add_argument("--no-chunked", action="store_true", help="skip the chunked upload")
    parser.add_argument("--sample-ms", type=float, default=50.0, help="RSS sampling period")
    parser.add_argument("--gunicorn-timeout", type=int, default=120, help="as in the Dockerfile")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="flushed before and after")
    parser.add_argument("--tmp-dir", default=None, help="where the WAV and the blobs go")
    return parser.parse_args()


def write_wav(path: Path, size: int) -> None:
    """A valid 16 kHz mono 16-bit PCM WAV of exactly `size` bytes, written 1 MiB at a time."""
    data_size = (size - 44) & ~1
    rate, channels, width = 16_000, 1, 2
    header = b"RIFF" + struct.pack("<I", 36 + data_size) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * width, width, 16)
    header += b"data" + struct.pack("<I", data_size)
    # Four tones, each block a whole number of periods so blocks join without clicks; generated
    # once (a Python loop over 134 M samples would take minutes) and cycled.
    samples = 524_000  # divisible by 40, 32, 50 and 20: the periods of the tones below
    blocks = [
        struct.pack(
            f"<{samples}h",
            *(int(8000 * math.sin(2 * math.pi * hz * i / rate)) for i in range(samples)),
        )
        for hz in (400, 500, 320, 800)
    ]
    with path.open("wb") as out:
        out.write(header)
        written, index = 0, 0
        while written < data_size:
            block = blocks[index % len(blocks)][: data_size - written]
            out.write(block)
            written += len(block)
            index += 1


def multipart_body(path: Path, boundary: str) -> tuple[Iterator[bytes], int]:
    """A streamed multipart body (one form field and the file) and its exact length."""
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="external_id"\r\n\r\n'
        "bench-intake\r\n"
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="call.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def chunks() -> Iterator[bytes]:
        yield head
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
        yield tail

    return chunks(), len(head) + path.stat().st_size + len(tail)


def post_upload(port: int, key: str, path: Path, *, chunked: bool) -> Upload:
    boundary = uuid.uuid4().hex
    body, length = multipart_body(path, boundary)
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    }
    if not chunked:
        headers["Content-Length"] = str(length)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        began = time.perf_counter()
        conn.request("POST", "/v1/jobs", body=body, headers=headers, encode_chunked=chunked)
        response = conn.getresponse()
        raw = response.read()
        seconds = time.perf_counter() - began
    finally:
        conn.close()
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = {"raw": raw[:500].decode(errors="replace")}
    return Upload(response.status, seconds, parsed)


def timed_copy(src: Path) -> float:
    """A raw copy of the same bytes in the same directory, from a clean page-cache state."""
    dest = src.with_name("raw-copy.bin")
    os.sync()
    began = time.perf_counter()
    shutil.copyfile(src, dest)
    seconds = time.perf_counter() - began
    dest.unlink()
    return seconds


def timed_python_copy(src: Path) -> float:
    """For reference: the unavoidable user-space work of an upload (1 MiB reads, SHA-256, writes)."""
    dest = src.with_name("python-copy.bin")
    os.sync()
    began = time.perf_counter()
    digest = hashlib.sha256()
    with src.open("rb") as f, dest.open("wb") as out:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    seconds = time.perf_counter() - began
    dest.unlink()
    return seconds


def s3_calls(log: Path, offset: int) -> dict[str, int]:
    """Count the S3 operations moto logged since `offset` (one request line per call)."""
    with log.open("rb") as f:
        f.seek(offset)
        lines = f.read().decode(errors="replace").splitlines()
    calls = {"PutObject": 0, "CreateMultipartUpload": 0, "UploadPart": 0, "Complete": 0}
    for line in lines:
        if '"PUT /' in line:
            calls["UploadPart" if "partNumber=" in line else "PutObject"] += 1
        elif '"POST /' in line:
            calls["Complete" if "uploadId=" in line else "CreateMultipartUpload"] += 1
    return calls


def gunicorn_worker(arbiter: psutil.Process) -> psutil.Process:
    children = arbiter.children()
    if len(children) != 1:
        raise RuntimeError(f"expected one gunicorn worker, found {len(children)}")
    return children[0]


def measure_upload(
    port: int, key: str, wav: Path, worker: psutil.Process, *, store: Store, chunked: bool,
    args: argparse.Namespace,
) -> Measured:  # fmt: skip
    copies = [timed_copy(wav) for _ in range(args.copies)]
    python_copy_s = timed_python_copy(wav)
    os.sync()  # the upload starts from the same clean state as each copy
    time.sleep(0.2)
    log_offset = store.server_log.stat().st_size if store.server_log else 0
    cpu_before = sum(worker.cpu_times()[:2])
    with RssSampler(worker.pid, interval=args.sample_ms / 1000) as sampler:
        baseline = sampler.rss()
        upload = post_upload(port, key, wav, chunked=chunked)
    cpu_s = sum(worker.cpu_times()[:2]) - cpu_before
    calls = s3_calls(store.server_log, log_offset) if store.server_log else None
    return Measured(
        upload=upload,
        copies=copies,
        python_copy_s=python_copy_s,
        baseline=baseline,
        peak=sampler.peak,
        after=sampler.rss(),
        samples=sampler.samples,
        cpu_s=cpu_s,
        s3_calls=calls,
    )


def stored_input(database_url: str, job_id: str) -> dict[str, object]:
    import psycopg

    dsn = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT envelope FROM jobs WHERE id = %s", (job_id,)).fetchone()
    if row is None:
        raise RuntimeError(f"job {job_id} not in the database")
    value: dict[str, object] = row[0]["input"]
    return value


def delete_blob(store: Store, blob_key: str) -> None:
    """Free the disk (or moto's memory) between uploads."""
    from pipeline.adapters.storage import blob_store_from_settings
    from pipeline.settings import Settings

    settings = Settings(storage_url=store.storage_url, s3_endpoint_url=store.endpoint)
    blob_store_from_settings(settings).delete(blob_key)


def report(store: Store, label: str, size: int, m: Measured, database_url: str) -> None:
    mib_s = size / MIB / m.upload.seconds
    ratio = m.upload.seconds / m.copy_s
    growth = (m.peak - m.baseline) / MIB
    print(f"[{store.name}] {label}: HTTP {m.upload.status}")
    if m.upload.status != 202:
        print(f"    response: {m.upload.body}")
        return
    job_id = str(m.upload.body["id"])
    stored = stored_input(database_url, job_id)
    ok = "ok" if stored["bytes"] == size else f"MISMATCH ({stored['bytes']} != {size})"
    print(f"    job {job_id}: stored {stored['bytes']} bytes, size check {ok}")
    copies = ", ".join(f"{c:.3f}" for c in m.copies)
    print(
        f"    upload {m.upload.seconds:.3f} s ({mib_s:.0f} MiB/s); raw copy median "
        f"{m.copy_s:.3f} s ({copies}); ratio {ratio:.2f}x "
        f"(goal <= {RATIO_GOAL:.0f}x: {'met' if ratio <= RATIO_GOAL else 'MISSED'})"
    )
    print(
        f"    worker RSS baseline {m.baseline / MIB:.1f} MiB, peak {m.peak / MIB:.1f} MiB, "
        f"growth {growth:.1f} MiB (goal <= {RSS_GOAL_MIB} MiB: "
        f"{'met' if growth <= RSS_GOAL_MIB else 'MISSED'}); after {m.after / MIB:.1f} MiB; "
        f"{m.samples} samples; worker CPU {m.cpu_s:.2f} s"
    )
    print(
        f"    for reference: read + SHA-256 + write in Python {m.python_copy_s:.3f} s "
        f"(upload / that = {m.upload.seconds / m.python_copy_s:.2f}x)"
    )
    if m.s3_calls is not None:
        print(f"    S3 calls seen by moto: {m.s3_calls}")
    delete_blob(store, str(stored["blob_key"]))


def start_moto(stack: ExitStack, tmp: Path) -> Store:
    """moto's S3 server (bench/_stack.py) with our bucket, as the store under test."""
    endpoint = start_moto_server(stack, tmp, BUCKET)
    return Store("s3", f"s3://{BUCKET}/blobs", endpoint, server_log=tmp / "moto.log")


def start_api(
    stack: ExitStack, tmp: Path, store: Store, *, database_url: str, args: argparse.Namespace
) -> tuple[int, psutil.Process]:
    port = free_port()
    env = base_env(
        DATABASE_URL=database_url,
        REDIS_URL=args.redis_url,
        STORAGE_URL=store.storage_url,
        MAX_UPLOAD_BYTES=str((args.size_mib + 64) * MIB),
        LOG_LEVEL="WARNING",
    )
    if store.endpoint:
        env["S3_ENDPOINT_URL"] = store.endpoint
    log = tmp / f"gunicorn-{store.name}.log"
    cmd = [sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}",
           "--timeout", str(args.gunicorn_timeout), "api:create_app()"]  # fmt: skip
    proc = stack.enter_context(spawn(cmd, env=env, log=log))
    wait_http_ok(f"http://127.0.0.1:{port}/healthz", timeout=60, proc=proc, log=log)
    arbiter = psutil.Process(proc.pid)
    wait_until(lambda: len(arbiter.children()) == 1, what="gunicorn worker", timeout=30)
    return port, gunicorn_worker(arbiter)


def run_store(store: Store, *, tmp: Path, wav: Path, small: Path, key: str, db_url: str,
              args: argparse.Namespace) -> None:  # fmt: skip
    size = wav.stat().st_size
    with ExitStack() as stack:
        port, worker = start_api(stack, tmp, store, database_url=db_url, args=args)
        warm = post_upload(port, key, small, chunked=False)  # imports, pools, the S3 client
        if warm.status != 202:
            raise RuntimeError(f"warm-up upload failed: {warm.status} {warm.body}")
        delete_blob(store, str(stored_input(db_url, str(warm.body["id"]))["blob_key"]))
        modes = [False] * args.repeats + ([] if args.no_chunked else [True])
        for i, chunked in enumerate(modes):
            label = "chunked, no Content-Length" if chunked else f"Content-Length, run {i + 1}"
            m = measure_upload(port, key, wav, worker, store=store, chunked=chunked, args=args)
            report(store, f"{size / MIB:.0f} MiB WAV, {label}", size, m, db_url)
        if not worker.is_running():
            print(f"[{store.name}] WARNING: the gunicorn worker was replaced during the run")


def main() -> None:
    args = parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    cleanup_on_sigterm()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    began = time.perf_counter()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-intake-",
                                                                   dir=args.tmp_dir)))  # fmt: skip
        wav, small = tmp / "call.wav", tmp / "small.wav"
        write_wav(wav, args.size_mib * MIB)
        write_wav(small, MIB)
        print(f"WAV {wav.stat().st_size} bytes written in {time.perf_counter() - began:.1f} s")
        stack.enter_context(private_redis(args.redis_url))
        db_url = stack.enter_context(migrated_database())
        key = new_api_key(db_url)
        for name in stores:
            if name == "file":
                store = Store("file", f"file://{tmp / 'blobs'}", None)
            elif name == "s3":
                store = start_moto(stack, tmp)
            else:
                raise SystemExit(f"unknown store {name!r} (file, s3)")
            run_store(store, tmp=tmp, wav=wav, small=small, key=key, db_url=db_url, args=args)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"total bench time {time.perf_counter() - began:.1f} s; load average now {load}")


if __name__ == "__main__":
    main()

"""`callintel bulk …` against the fake batch API on a real HTTP server (tests/support/fake_batches.py):
one item per file, resume after a real Ctrl-C, no duplicates without the state file, retries,
manifests, per-file failures, status/watch, results, and a server-side s3:// import.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import wave
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from api.bulk_http import Api, ApiError, Retry, retry_after_seconds
from api.cli import cli
from tests.support.fake_batch_server import fake_batch_api
from tests.support.fake_batches import API_KEY, FakeBatchApi

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def fake() -> Iterator[FakeBatchApi]:
    with fake_batch_api() as api:
        yield api


def wav(path: Path, seed: int) -> bytes:
    """A small, distinct WAV file at `path`; its bytes."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes((seed * 7 + i) % 256 for i in range(4000)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(out.getvalue())
    return out.getvalue()


class Child:
    """`callintel bulk submit` in a child process, for a fake's hook to interrupt with SIGINT."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.pid = 0

    def interrupt(self) -> None:
        self.started.wait(30)
        os.kill(self.pid, signal.SIGINT)

    def run(self, fake: FakeBatchApi, *args: str) -> tuple[int, str]:
        """The exit code and stderr of the run."""
        env = {**os.environ, "CALLINTEL_API_KEY": API_KEY, "PYTHONPATH": str(REPO)}
        command = [sys.executable, "-c", "from api.cli import cli; cli()", "bulk", "submit"]
        command += [*args, "--url", fake.base_url]
        with subprocess.Popen(
            command, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True
        ) as proc:
            self.pid = proc.pid
            self.started.set()
            try:
                _, stderr = proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
        return proc.returncode, stderr


def bulk(fake: FakeBatchApi, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["bulk", *args, "--url", fake.base_url], env={"CALLINTEL_API_KEY": API_KEY}
    )


def submit(fake: FakeBatchApi, state: Path, *args: str) -> Result:
    return bulk(fake, "submit", *args, "--state-file", str(state))


def only_batch(fake: FakeBatchApi) -> dict[str, object]:
    [batch] = fake.batches.values()
    return batch


def test_a_folder_becomes_one_item_per_file(fake: FakeBatchApi, tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    audio = {
        "a.wav": wav(calls / "a.wav", 1),
        "monday/b.wav": wav(calls / "monday" / "b.wav", 2),
        "monday/c.flac": wav(calls / "monday" / "c.flac", 3),
    }
    (calls / "d.txt").write_text("Agent: Hello, how can I help?\nCustomer: My bill is wrong.")
    turns = [{"speaker": "agent", "text": "Hello"}, {"speaker": "customer", "text": "Hi"}]
    (calls / "e.json").write_text(json.dumps({"transcript": turns, "metadata": {"queue": "vip"}}))
    (calls / "notes.md").write_text("not a call")
    wav(calls / ".partial.wav", 9)  # hidden: an editor's or a copier's temporary file

    result = submit(
        fake, tmp_path / "state.json", str(calls), "--batch", "night-1", "--group-size", "2",
        "--call-type", "sales", "--metadata", '{"site": "lyon"}',
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    batch = only_batch(fake)
    assert (batch["status"], batch["call_type"], batch["metadata"]) == (
        "closed", "sales", {"site": "lyon"},
    )  # fmt: skip
    jobs = {j["external_id"]: j for j in fake.jobs_of(str(batch["id"]))}
    assert sorted(jobs) == ["a.wav", "d.txt", "e.json", "monday/b.wav", "monday/c.flac"]
    for name, data in audio.items():
        assert fake.uploads[jobs[name]["upload_id"]].data == data
        assert jobs[name]["idempotency_key"] == hashlib.sha256(data).hexdigest()
    assert jobs["d.txt"]["transcript"].startswith("Agent: Hello")
    assert (jobs["e.json"]["transcript"], jobs["e.json"]["metadata"]) == (turns, {"queue": "vip"})
    assert fake.count("POST", f"/v1/batches/{batch['id']}/items") == 3  # 5 items, groups of 2
    assert (
        f"added 5, duplicates 0, skipped 0 (added by an earlier run), failed 0, batch {batch['id']}"
        in result.output
    )


def test_an_interrupted_run_resumes_and_uploads_only_the_rest(
    fake: FakeBatchApi, tmp_path: Path
) -> None:
    calls = tmp_path / "calls"
    for n in range(6):
        wav(calls / f"call-{n}.wav", n)
    state_file = tmp_path / "state.json"
    child = Child()
    fake.after_put = lambda puts: child.interrupt() if puts == 2 else None  # a real Ctrl-C
    args = [str(calls), "--batch", "night-2", "--concurrency", "1", "--state-file", str(state_file)]
    code, stderr = child.run(fake, *args)
    assert code == 130, stderr
    assert "run the same command again to resume" in stderr
    first_puts = fake.puts
    saved = json.loads(state_file.read_text())["files"]
    assert 2 <= first_puts < 6
    assert [f["status"] for f in saved] == ["uploaded"] * first_puts  # every finished upload kept
    assert fake.jobs == {}

    fake.after_put = None
    result = submit(fake, state_file, str(calls), "--batch", "night-2")
    assert result.exit_code == 0, result.output
    assert fake.puts == 6  # the second run uploaded only the rest
    batch = only_batch(fake)
    jobs = fake.jobs_of(str(batch["id"]))
    assert sorted(j["external_id"] for j in jobs) == [f"call-{n}.wav" for n in range(6)]
    assert "added 6, duplicates 0" in result.output
    saved = json.loads(state_file.read_text())["files"]
    assert sorted(f["job_id"] for f in saved) == sorted(j["id"] for j in jobs)


def test_ctrl_c_does_not_wait_out_a_retry_after(fake: FakeBatchApi, tmp_path: Path) -> None:
    wav(tmp_path / "calls" / "a.wav", 1)
    fake.fail("POST", "/v1/uploads", 429, {"Retry-After": "3600"})
    child = Child()
    fake.on_request = lambda method, path: (
        child.interrupt() if (method, path) == ("POST", "/v1/uploads") else None
    )
    state_file = tmp_path / "state.json"
    code, stderr = child.run(
        fake, str(tmp_path / "calls"), "--batch", "n", "--state-file", str(state_file)
    )
    assert code == 130, stderr  # at once, not after an hour (communicate's guard is 2 minutes)
    assert fake.count("POST", "/v1/uploads") == 1 and fake.puts == 0
    assert json.loads(state_file.read_text())["files"] == []


def test_without_the_state_file_nothing_is_created_twice(
    fake: FakeBatchApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "calls"
    for n in range(3):
        wav(calls / f"{n}.wav", n)
    (calls / "t.txt").write_text("Agent: Hi\nCustomer: Bye")
    monkeypatch.chdir(tmp_path)  # where the default state file goes
    args = ["submit", str(calls), "--batch", "night 3"]
    first = bulk(fake, *args)
    assert first.exit_code == 0, first.output
    default_state = tmp_path / ".callintel-bulk-night_3.json"
    assert default_state.exists()
    again = bulk(fake, *args)  # with the state file: nothing to do
    assert again.exit_code == 0, again.output
    assert "added 0, duplicates 0, skipped 4" in again.output

    default_state.unlink()
    third = bulk(fake, *args)
    assert third.exit_code == 0, third.output
    assert "added 0, duplicates 4" in third.output
    assert len(fake.jobs) == 4 and fake.puts == 6  # re-uploaded, but no job created twice


def test_429_and_5xx_are_retried(fake: FakeBatchApi, tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    for n in range(3):
        wav(calls / f"{n}.wav", n)
    fake.relative_upload_urls = True
    fake.fail("GET", "/v1/batches", 503)
    fake.fail("POST", "/v1/uploads", 429, {"Retry-After": "1"})
    fake.fail("PUT", "/_uploads/", 503, {"Retry-After": "0"})
    fake.fail("POST", "/v1/batches/bat_", 502, {"Retry-After": "0"})  # the items
    result = submit(fake, tmp_path / "state.json", str(calls), "--batch", "night-4")
    assert result.exit_code == 0, result.output
    assert len(fake.jobs) == 3 and fake.faults == []
    assert (fake.count("POST", "/v1/uploads"), fake.count("PUT", "/_uploads/")) == (4, 4)
    assert "added 3, duplicates 0" in result.output


def test_retry_after_seconds_and_backoff_are_honoured(fake: FakeBatchApi) -> None:
    slept: list[float] = []
    api = Api(fake.base_url, api_key=API_KEY, retry=Retry(sleep=slept.append))
    fake.fail("GET", "/v1/batches", 429, {"Retry-After": "7"})
    fake.fail("GET", "/v1/batches", 503, {"Retry-After": "Fri, 01 Jan 2100 00:00:00 GMT"})
    fake.fail("GET", "/v1/batches", 503)
    assert api.call("GET", "/v1/batches", query={"name": "x"})["data"] == []
    assert slept[:2] == [7.0, 600.0]  # an HTTP date a century away is capped
    assert 1.0 <= slept[2] <= 2.0  # the third attempt's backoff: 0.5 s * 2**2, half of it jitter

    fake.fail("GET", "/v1/batches", 400)
    with pytest.raises(ApiError) as refused:
        api.call("GET", "/v1/batches")
    assert refused.value.status == 400 and len(slept) == 3  # a 4xx is not retried
    for _ in range(6):
        fake.fail("GET", "/v1/batches", 503)
    with pytest.raises(ApiError) as exhausted:
        api.call("GET", "/v1/batches")
    assert exhausted.value.status == 503 and len(slept) == 3 + 5


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2026, 10, 21, 7, 27, 30, tzinfo=UTC)
    assert retry_after_seconds("Wed, 21 Oct 2026 07:28:00 GMT", now=now) == 30.0
    assert retry_after_seconds("Wed, 21 Oct 2026 07:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("12", now=now) == 12.0
    assert retry_after_seconds("soon", now=now) is None
    assert retry_after_seconds(None) is None


def test_a_manifest_line_that_does_not_parse_is_reported_and_the_rest_go_on(
    fake: FakeBatchApi, tmp_path: Path
) -> None:
    wav(tmp_path / "a.wav", 1)
    wav(tmp_path / "b.wav", 2)
    (tmp_path / "c.txt").write_text("Agent: Hi\nCustomer: Bye")
    manifest = tmp_path / "night.csv"
    manifest.write_text(
        "path,external_id,call_type,metadata,agent\n"
        'a.wav,crm-1,sales,"{""queue"": ""billing""}",alice\n'
        "b.wav,crm-2,,{not json},bob\n"
        "c.txt,,,,carol\n"
        "missing.wav,crm-4,,,dan\n"
    )
    result = submit(fake, tmp_path / "state.json", str(manifest), "--batch", "night-5")
    assert result.exit_code == 1, result.output
    assert f"{manifest} line 3: metadata is not valid JSON" in result.output
    assert f"{manifest} line 5: missing.wav: no such file" in result.output
    jobs = {j["external_id"]: j for j in fake.jobs.values()}
    assert sorted(jobs) == ["c.txt", "crm-1"]
    assert (jobs["crm-1"]["call_type"], jobs["crm-1"]["metadata"]) == (
        "sales", {"agent": "alice", "queue": "billing"},
    )  # fmt: skip
    assert jobs["c.txt"]["metadata"] == {"agent": "carol"}
    assert "added 2, duplicates 0, skipped 0 (added by an earlier run), failed 2" in result.output


def test_a_refused_file_is_reported_and_the_rest_go_on(fake: FakeBatchApi, tmp_path: Path) -> None:
    for name in ("one.wav", "broken.wav", "three.wav"):
        wav(tmp_path / "calls" / name, len(name))
    (tmp_path / "calls" / "both.json").write_text('{"transcript": "Agent: Hi", "upload_id": "x"}')
    (tmp_path / "calls" / "ok.txt").write_text("Agent: Hi\nCustomer: Bye")
    fake.reject_files["broken.wav"] = 415
    result = submit(fake, tmp_path / "state.json", str(tmp_path / "calls"), "--batch", "night-6")
    assert result.exit_code == 1, result.output
    assert "failed: broken.wav: 415 unsupported_media: broken.wav is refused" in result.output
    assert "failed: both.json: invalid_item: one of upload_id, key, transcript" in result.output
    added = sorted(j["external_id"] for j in fake.jobs.values())
    assert added == ["ok.txt", "one.wav", "three.wav"]
    assert "added 3, duplicates 0, skipped 0 (added by an earlier run), failed 2" in result.output
    assert fake.puts == 2 and only_batch(fake)["status"] == "closed"


def test_results_are_downloaded_as_jsonl_and_csv(fake: FakeBatchApi, tmp_path: Path) -> None:
    for n in range(3):
        wav(tmp_path / "calls" / f"{n}.wav", n)
    assert (
        submit(fake, tmp_path / "s.json", str(tmp_path / "calls"), "--batch", "n7").exit_code == 0
    )
    batch_id = str(only_batch(fake)["id"])

    jsonl = tmp_path / "night.jsonl"
    assert bulk(fake, "results", "n7", "-o", str(jsonl)).exit_code == 0  # by name
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert sorted(r["external_id"] for r in rows) == ["0.wav", "1.wav", "2.wav"]

    night_csv = tmp_path / "night.csv"
    assert bulk(fake, "results", batch_id, "-o", str(night_csv)).exit_code == 0  # by id
    with night_csv.open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert sorted(r["job_id"] for r in table) == sorted(r["job_id"] for r in rows)

    unknown = bulk(fake, "results", batch_id, "-o", str(tmp_path / "night.out"))
    assert unknown.exit_code == 2 and "--format" in unknown.output
    assert not (tmp_path / "night.out").exists()


def test_status_and_watch_until_completed(fake: FakeBatchApi, tmp_path: Path) -> None:
    for n in range(5):
        wav(tmp_path / "calls" / f"{n}.wav", n)
    assert (
        submit(fake, tmp_path / "s.json", str(tmp_path / "calls"), "--batch", "n8").exit_code == 0
    )
    batch_id = str(only_batch(fake)["id"])

    shown = bulk(fake, "status", batch_id)
    assert shown.exit_code == 0, shown.output
    assert f"{batch_id}  n8  closed  0% (0/5)" in shown.output
    assert "backlog 5" in shown.output

    fake.complete_per_poll = 2
    watched = bulk(fake, "status", "n8", "--watch", "--interval", "0")
    assert watched.exit_code == 0, watched.output
    heads = [line for line in watched.output.splitlines() if line.startswith(batch_id)]
    assert heads[-1] == f"{batch_id}  n8  completed  100% (5/5)"
    assert len(heads) == 3  # 2/5, 4/5, then completed

    missing = bulk(fake, "status", "nobody")
    assert missing.exit_code == 1 and "no batch named 'nobody'" in missing.output
    wrong_key = CliRunner().invoke(
        cli, ["bulk", "status", "n8", "--url", fake.base_url, "--key", "ck_wrong"]
    )
    assert wrong_key.exit_code == 1
    assert "Error: 401 unauthorized: a valid API key is required" in wrong_key.output


def test_an_open_batch_is_found_by_name_and_a_glob_is_relative_to_its_root(
    fake: FakeBatchApi, tmp_path: Path
) -> None:
    wav(tmp_path / "calls" / "mon" / "a.wav", 1)
    wav(tmp_path / "calls" / "tue" / "b.wav", 2)
    first = submit(
        fake, tmp_path / "1.json", str(tmp_path / "calls/mon"), "--batch", "week", "--keep-open"
    )
    assert first.exit_code == 0, first.output
    assert only_batch(fake)["status"] == "open"
    second = submit(fake, tmp_path / "2.json", str(tmp_path / "calls/*/b.wav"), "--batch", "week")
    assert second.exit_code == 0, second.output
    batch = only_batch(fake)
    assert batch["status"] == "closed"
    assert sorted(j["external_id"] for j in fake.jobs_of(str(batch["id"]))) == [
        "a.wav",
        "tue/b.wav",
    ]


def test_an_s3_prefix_is_imported_by_the_server_and_watched(
    fake: FakeBatchApi, tmp_path: Path
) -> None:
    prefix = "s3://acme-calls/2026-12-04/"
    fake.storage[prefix] = ["2026-12-04/a.wav", "2026-12-04/b.wav", "2026-12-04/c.wav"]
    fake.complete_per_poll = 1
    result = submit(fake, tmp_path / "s.json", prefix, "--batch", "s3-night", "--interval", "0")
    assert result.exit_code == 0, result.output
    batch = only_batch(fake)
    assert batch["source"] == {"storage_prefix": prefix}
    assert fake.count("POST", "/v1/uploads") == 0
    assert f"{batch['id']}  s3-night  completed  100% (3/3)" in result.output

    mixed = submit(fake, tmp_path / "s.json", prefix, str(tmp_path), "--batch", "s3-night")
    assert mixed.exit_code == 2 and "only SOURCE" in mixed.output


def test_a_changed_file_is_submitted_again_in_a_new_batch_of_that_name(
    fake: FakeBatchApi, tmp_path: Path
) -> None:
    wav(tmp_path / "calls" / "a.wav", 1)
    wav(tmp_path / "calls" / "b.wav", 2)
    state = tmp_path / "state.json"
    assert submit(fake, state, str(tmp_path / "calls"), "--batch", "n9").exit_code == 0
    changed = wav(tmp_path / "calls" / "b.wav", 3)  # re-recorded: new content
    again = submit(fake, state, str(tmp_path / "calls"), "--batch", "n9")
    assert again.exit_code == 0, again.output
    assert "added 1, duplicates 0, skipped 1" in again.output
    first, second = fake.batches  # the first was closed: the name gets a new open batch
    assert [j["external_id"] for j in fake.jobs_of(second)] == ["b.wav"]
    assert fake.jobs_of(second)[0]["idempotency_key"] == hashlib.sha256(changed).hexdigest()
    assert len(fake.jobs_of(first)) == 2

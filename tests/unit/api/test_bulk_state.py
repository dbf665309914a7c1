"""The resume file of `callintel bulk submit`: written atomically, bound to its batch name, and an
upload reused only while it has not expired and the file is unchanged."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from api.bulk_state import BulkState, FileState, StateError, default_state_path


def entry(path: Path, **changes: object) -> FileState:
    stat = path.stat()
    fields: dict[str, object] = {
        "path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
        "sha256": "ab" * 32, "status": "uploaded", "upload_id": "upl_1",
        "upload_expires_at": "2026-12-05T06:00:00Z",
    }  # fmt: skip
    fields.update(changes)
    return FileState(**fields)  # type: ignore[arg-type]


def test_round_trip_and_the_batch_it_belongs_to(tmp_path: Path) -> None:
    call = tmp_path / "a.wav"
    call.write_bytes(b"RIFF....")
    state = BulkState(tmp_path / "s.json", batch="night")
    state.set_batch("bat_1")
    state.record(entry(call))
    state.save(force=True)
    loaded = BulkState.load(tmp_path / "s.json", batch="night")
    assert loaded.batch_id == "bat_1" and loaded.known(call) == entry(call)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "s.json"]  # no temporary file
    with pytest.raises(StateError, match="belongs to batch 'night'"):
        BulkState.load(tmp_path / "s.json", batch="other")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(StateError, match="not a bulk state file"):
        BulkState.load(tmp_path / "broken.json", batch="night")


def test_a_changed_or_vanished_file_is_not_known(tmp_path: Path) -> None:
    call = tmp_path / "a.wav"
    call.write_bytes(b"RIFF....")
    state = BulkState(tmp_path / "s.json", batch="night")
    state.record(entry(call))
    assert state.known(call) is not None
    os.utime(call, ns=(1, 1))
    assert state.known(call) is None
    call.unlink()
    assert state.known(call) is None


def test_an_upload_is_reused_only_until_it_expires(tmp_path: Path) -> None:
    call = tmp_path / "a.wav"
    call.write_bytes(b"RIFF")
    before = datetime(2026, 12, 5, 5, 59, tzinfo=UTC)
    after = datetime(2026, 12, 5, 6, 1, tzinfo=UTC)
    assert entry(call).upload_usable(now=before)
    assert not entry(call).upload_usable(now=after)
    assert entry(call, upload_expires_at=None).upload_usable(now=after)
    assert not entry(call, upload_id=None).upload_usable(now=before)


def test_the_default_file_name_is_safe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_state_path("night 2026/12/04").name == ".callintel-bulk-night_2026_12_04.json"
    assert default_state_path("../..").name == ".callintel-bulk-batch.json"

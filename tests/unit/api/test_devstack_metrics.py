"""`make run`'s metrics folder starts empty: a previous run's counters would add to this run's."""

from __future__ import annotations

from pathlib import Path

from api.devstack import fresh_metrics_dir


def test_the_metrics_folder_is_emptied_at_start(tmp_path: Path) -> None:
    folder = tmp_path / "var" / "metrics"
    folder.mkdir(parents=True)
    (folder / "counter_4242.db").write_bytes(b"old run")
    made = fresh_metrics_dir(folder)
    assert made.is_absolute() and made.is_dir()
    assert list(made.iterdir()) == []
    assert fresh_metrics_dir(tmp_path / "new").is_dir()  # a first run creates it

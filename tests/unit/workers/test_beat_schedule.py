"""Every beat entry names a task the Celery app really registers (a typo would schedule nothing)."""

from __future__ import annotations

import celeryconfig
from workers.app import app


def test_every_beat_entry_names_a_registered_task() -> None:
    app.loader.import_default_modules()  # what a worker does at start: import `include` modules
    scheduled = {entry["task"] for entry in celeryconfig.beat_schedule.values()}
    assert "maintenance.purge_idempotency_keys" in scheduled
    assert "maintenance.purge_expired" in scheduled
    assert scheduled - set(app.tasks) == set()

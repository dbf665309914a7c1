"""Every beat entry names a task the Celery app really registers (a typo would schedule nothing),
and beat's tasks run on their own queue, which every worker command consumes."""

from __future__ import annotations

import celeryconfig
from api import cli, devstack
from tests.support.services import ALL_QUEUES
from workers.app import app


def test_every_beat_entry_names_a_registered_task() -> None:
    app.loader.import_default_modules()  # what a worker does at start: import `include` modules
    scheduled = {entry["task"] for entry in celeryconfig.beat_schedule.values()}
    assert "maintenance.purge_idempotency_keys" in scheduled
    assert "maintenance.purge_expired" in scheduled
    assert scheduled - set(app.tasks) == set()


def test_maintenance_tasks_run_on_their_own_queue() -> None:
    """A backlog on `default` (stages, rescores) must never delay the reaper or the sweep."""
    app.loader.import_default_modules()
    maintenance = [name for name in app.tasks if name.startswith("maintenance.")]
    assert "maintenance.release_backlog" in maintenance
    routed = {name: app.amqp.router.route({}, name)["queue"].name for name in maintenance}
    assert set(routed.values()) == {"maintenance"}, routed


def test_every_worker_command_consumes_the_maintenance_queue() -> None:
    """Each place that starts a worker on all queues includes `maintenance`, or beat's tasks
    would wait forever (the devstack, `callintel worker` and the integration tests)."""
    for queues in (devstack.QUEUES, cli.QUEUES, ALL_QUEUES):
        assert set(queues.split(",")) >= {"maintenance", "default", "transcribe", "asr-local"}
    assert devstack.QUEUES == cli.QUEUES == ALL_QUEUES

"""Celery settings (see README "Reliability" and docs/recovery.md).

Values that depend on the environment (broker URL, time limits) come from pipeline.settings.
"""

from pipeline.settings import get_settings

_s = get_settings()

broker_url = _s.redis_url
# The database is the source of truth: no result backend, results are not stored.
result_backend = None
task_ignore_result = True

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]

# A task is acknowledged only once it finished, and re-queued if its worker process died;
# the per-(job, stage) attempts cap in the database stops a poison input from looping.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
worker_cancel_long_running_tasks_on_connection_loss = False
broker_connection_retry_on_startup = True

task_soft_time_limit = _s.stage_soft_limit_s
task_time_limit = _s.stage_hard_limit_s
# Redelivery timer at least twice the longest hard limit, or a slow task runs twice at once.
# Broker I/O is bounded: a frozen broker fails a call within the socket timeouts instead of hanging
# it, and a publish that fails is left to the outbox sweep (docs/recovery.md). The API publishes
# with a shorter timeout of its own (`publish_timeout_s`, workers/app.py `bound_publishing`).
_transport = {
    "visibility_timeout": _s.visibility_timeout_s,
    "socket_timeout": _s.broker_timeout_s,
    "socket_connect_timeout": _s.broker_timeout_s,
}
broker_transport_options = _transport
result_backend_transport_options = _transport
visibility_timeout = _s.visibility_timeout_s
broker_connection_timeout = _s.broker_timeout_s
task_publish_retry_policy = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}

task_default_queue = "default"
task_routes = {
    "pipeline.transcribe": {"queue": "asr-local"},
    "pipeline.diarize": {"queue": "default"},
    "pipeline.analyze": {"queue": "analyze"},
    "pipeline.score": {"queue": "default"},
    "pipeline.persist": {"queue": "default"},
    # Beat tasks on their own queue: a backlog on `default` never delays the reaper or the sweep.
    "maintenance.*": {"queue": "maintenance"},
    "webhooks.*": {"queue": "webhooks"},
    "batches.*": {"queue": "default"},
}

beat_schedule = {
    # Batch items wait in the database; this releases them fairly across tenants, up to the caps.
    "release-backlog": {"task": "maintenance.release_backlog", "schedule": _s.scheduler_tick_s},
    # Publishes what a writer could not (the broker was down, or it crashed after its commit).
    "outbox-sweep": {"task": "maintenance.relay_outbox", "schedule": _s.outbox_sweep_s},
    # A server-side import whose task was lost resumes after its lease (pipeline/batch_import.py).
    "resume-imports": {"task": "maintenance.resume_imports", "schedule": 30.0},
    # Re-drives every unfinished job whose next action is overdue (docs/recovery.md).
    "reap-stuck-jobs": {"task": "maintenance.reap_stuck_jobs", "schedule": _s.reaper_interval_s},
    "purge-idempotency-keys": {
        "task": "maintenance.purge_idempotency_keys",
        "schedule": _s.reaper_interval_s,
    },
    # Tenants' retention (docs/retention.md): hourly, in bounded batches.
    "retention-purge": {
        "task": "maintenance.purge_expired",
        "schedule": _s.retention_interval_s,
    },
    # Provider jobs (AssemblyAI) whose re-check is due: waits live in the database, not in a slot.
    "provider-checks": {
        "task": "maintenance.send_due_checks",
        "schedule": _s.provider_check_tick_s,
    },
    # Queue depth, backlog per tenant, outbox and overdue jobs as gauges (docs/operations.md).
    "sample-gauges": {"task": "maintenance.sample_gauges", "schedule": _s.gauges_interval_s},
    # Claims due webhook deliveries; their waits live in the database, not in countdowns.
    "webhooks-dispatch": {"task": "webhooks.dispatch_due", "schedule": _s.webhook_dispatch_s},
}

worker_send_task_events = True  # Flower shows tasks live
task_send_sent_event = True
worker_hijack_root_logger = False

"""The Celery application: the one module-level global of the project."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger, worker_ready

from pipeline import metrics
from pipeline.logs import formatter
from pipeline.settings import get_settings


def create_celery() -> Celery:
    celery = Celery(
        "callintel",
        include=[
            "workers.tasks",
            "workers.maintenance",
            "workers.webhooks",
            "workers.rescore",
            "workers.batch_import",
        ],
    )
    celery.config_from_object("celeryconfig")
    return celery


app = create_celery()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _context_fields(logger: Any, format: str, **_: Any) -> None:
    """Worker lines carry the same context fields as the API's (job_id, stage, code, …), as text
    or JSON (LOG_FORMAT)."""
    for handler in logger.handlers:
        handler.setFormatter(formatter(get_settings().log_format, format))


@worker_ready.connect
def _serve_metrics(**_: Any) -> None:
    """The worker's main process serves every pool process's metrics on WORKER_METRICS_PORT
    (0: off); prefork children write theirs to PROMETHEUS_MULTIPROC_DIR (docs/operations.md)."""
    port = get_settings().worker_metrics_port
    if port:
        metrics.serve(port)


def bound_publishing(timeout_s: float) -> None:
    """For a process that only publishes (the API): one attempt, within `timeout_s` per socket
    call, so a frozen broker costs a request well under a second; what fails to publish stays in
    the outbox for the sweep. Call before the first publish (connections are made lazily)."""
    options = dict(app.conf.broker_transport_options or {})
    options |= {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
    app.conf.broker_transport_options = options
    app.conf.broker_connection_timeout = timeout_s
    app.conf.task_publish_retry = False

"""The Celery application: the one module-level global of the project."""

from __future__ import annotations

from celery import Celery


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

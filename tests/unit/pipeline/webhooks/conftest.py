"""Webhook domain tests run on the session's PostgreSQL with real receivers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from pipeline.adapters.webhook_http import HttpWebhookSender
from pipeline.settings import Settings
from tests.support.webhooks import close_all_open, fast_settings


@pytest.fixture(autouse=True)
def quiet_deliveries(sessions: sessionmaker[Session]) -> Iterator[None]:
    close_all_open(sessions)
    yield
    close_all_open(sessions)


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    return fast_settings(settings)


@pytest.fixture
def sender(hook_settings: Settings) -> HttpWebhookSender:
    return HttpWebhookSender.from_settings(hook_settings)

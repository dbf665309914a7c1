"""The README's webhook receiver works: its code verifies what our sender signs, and refuses forgeries."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.adapters.webhook_http import sign
from pipeline.webhooks.endpoints import new_secret
from pipeline.webhooks.ports import WebhookRequest

README = Path(__file__).resolve().parents[2] / "README.md"


def receiver_code() -> str:
    section = README.read_text().split("## Webhooks", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    return code


def test_the_readme_receiver_verifies_our_signatures(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = new_secret()
    monkeypatch.setenv("CALLINTEL_WEBHOOK_SECRET", secret)
    namespace: dict[str, Any] = {"__name__": "readme_receiver"}
    exec(compile(receiver_code(), "README.md", "exec"), namespace)
    client = namespace["app"].test_client()
    body = json.dumps({"type": "job.completed", "data": {"job_id": "job_1"}})
    request = WebhookRequest("msg_1", "https://x.test/", body, (secret,), datetime.now(UTC))
    headers = {**sign(request), "Content-Type": "application/json"}

    assert client.post("/callintel", data=body, headers=headers).status_code == 204
    assert client.post("/callintel", data=body, headers=headers).status_code == 204  # a retry
    assert capsys.readouterr().out.splitlines() == ["job.completed job_1"]  # handled once
    forged = body.replace("job_1", "job_2")
    assert client.post("/callintel", data=forged, headers=headers).status_code == 400

"""pipeline/metrics.py: multiprocess mode adds up what separate processes wrote; provider calls are
timed by outcome and 429s counted."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from pipeline import metrics
from pipeline.errors import InvalidInput, TransientError
from tests.support.services import free_port

# A child process as a gunicorn worker or prefork child is: PROMETHEUS_MULTIPROC_DIR set before
# prometheus_client is imported.
WRITER = """
from pipeline import metrics
metrics.STAGE_ATTEMPTS.labels("transcribe").inc()
metrics.WEBHOOK_DELIVERIES.labels("delivered").inc(2)
metrics.QUEUE_DEPTH.labels("default").set({depth})
"""


def write_from_a_process(folder: Path, depth: int) -> None:
    env = {"PROMETHEUS_MULTIPROC_DIR": str(folder), "PATH": ""}
    root = Path(__file__).resolve().parents[3]
    code = WRITER.format(depth=depth)
    subprocess.run([sys.executable, "-c", code], env=env, cwd=root, check=True, timeout=60)


def test_multiprocess_mode_adds_up_every_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_from_a_process(tmp_path, depth=7)
    write_from_a_process(tmp_path, depth=3)  # sampled last: the most recent value wins
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    assert samples[("callintel_stage_attempts_total", (("stage", "transcribe"),))] == 2
    assert samples[("callintel_webhook_attempts_total", (("state", "delivered"),))] == 4
    assert samples[("callintel_queue_depth", (("queue", "default"),))] == 3


def test_without_the_folder_the_process_exposes_its_own_registry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert metrics.registry() is REGISTRY


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_provider_429_is_counted_and_timed_by_its_code() -> None:
    limited = sample("callintel_provider_rate_limited_total", provider="p429")
    with (
        pytest.raises(TransientError),
        metrics.provider_call("p429", "submit"),
    ):
        raise TransientError("rate limited", code=metrics.RATE_LIMITED)
    with pytest.raises(InvalidInput), metrics.provider_call("p429", "submit"):
        raise InvalidInput("bad options")
    with metrics.provider_call("p429", "check"):
        pass
    assert sample("callintel_provider_rate_limited_total", provider="p429") == limited + 1
    count = "callintel_provider_request_duration_seconds_count"
    rate_limited = {"provider": "p429", "operation": "submit", "outcome": "provider_rate_limited"}
    assert sample(count, **rate_limited) == 1
    assert sample(count, provider="p429", operation="submit", outcome="invalid_input") == 1
    assert sample(count, provider="p429", operation="check", outcome="ok") == 1


def test_serve_answers_a_scrape(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a worker does on `worker_ready` when WORKER_METRICS_PORT is set."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    port = free_port()
    metrics.serve(port, addr="127.0.0.1")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    assert "callintel_stage_duration_seconds" in body

"""GeminiAnalyzer's Batch API path with the real google-genai SDK against the fake Gemini server:
the batch carries the synchronous path's prompt and config, checks answer None until the batch
succeeds, then the same validated insights at the batch price; ended batches and errors map."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pipeline.adapters.gemini import GeminiAnalyzer
from pipeline.analysis.prompt import chunk_utterances
from pipeline.errors import PermanentError, ProviderRejected, TransientError
from schemas.common import Role
from tests.support.analysis_requests import request
from tests.support.fake_gemini import API_KEY, BatchPlan, FakeGemini, fake_gemini, status

MODEL = "gemini-test-model"
PRICE_IN, PRICE_OUT = 0.30, 2.50
FULL_PRICE = (1000 * PRICE_IN + 250 * PRICE_OUT) / 1e6  # the fake's usage for one answer

Make = Callable[..., GeminiAnalyzer]


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with fake_gemini() as running:
        yield running


@pytest.fixture
def make(fake: FakeGemini) -> Iterator[Make]:
    built: list[GeminiAnalyzer] = []

    def build(**overrides: Any) -> GeminiAnalyzer:
        options: dict[str, Any] = {
            "api_key": API_KEY,
            "base_url": fake.base_url,
            "model": MODEL,
            "timeout_s": 10.0,
            "output_attempts": 3,
            "chunk_chars": 60_000,
            "usd_per_mtok_in": PRICE_IN,
            "usd_per_mtok_out": PRICE_OUT,
            "batch_discount": 0.5,
        }
        built.append(GeminiAnalyzer(**(options | overrides)))
        return built[-1]

    yield build
    for analyzer in built:
        analyzer.close()


def test_submit_pending_running_then_succeeded_gives_the_synchronous_insights_at_half_price(
    fake: FakeGemini, make: Make
) -> None:
    fake.batch_plan(BatchPlan(pending_checks=2))
    analyzer, call = make(), request()

    name = analyzer.submit_batch(call)

    assert name == "batches/fake0001"
    [create] = fake.requests
    version = create.path.split("/")[1]  # the SDK's API version (v1 or v1beta)
    assert create.path == f"/{version}/models/{MODEL}:batchGenerateContent"
    assert analyzer.check_batch(name, call) is None  # pending
    assert analyzer.check_batch(name, call) is None  # running
    batched = analyzer.check_batch(name, call)
    assert [r.path for r in fake.requests[1:]] == [f"/{version}/{name}"] * 3

    synchronous = analyzer.analyze(call)
    # The very request the synchronous path sends, inlined: same prompt, same generation config.
    [inlined] = create.body["batch"]["inputConfig"]["requests"]["requests"]
    sent = fake.requests[-1].body
    assert inlined["request"]["contents"] == sent["contents"]
    assert inlined["request"]["generationConfig"] == sent["generationConfig"]
    assert sent["generationConfig"]["responseSchema"]  # the structured-output schema travels
    assert batched is not None
    assert batched.model_dump(exclude={"estimated_cost_usd", "batch_saved_usd"}) == (
        synchronous.model_dump(exclude={"estimated_cost_usd", "batch_saved_usd"})
    )
    assert batched.summary == "Part from u0001 to u0004, 4 utterances."
    assert [(a.id, a.answer) for a in batched.semantic] == [
        ("greeting", "yes"),
        ("disclosure", "yes"),
    ]
    assert (batched.input_tokens, batched.output_tokens, batched.calls) == (1000, 250, 1)
    assert synchronous.estimated_cost_usd == pytest.approx(FULL_PRICE)
    assert synchronous.batch_saved_usd == 0.0
    assert batched.estimated_cost_usd == pytest.approx(FULL_PRICE / 2)
    assert batched.batch_saved_usd == pytest.approx(FULL_PRICE / 2)


def test_a_long_transcript_is_one_inlined_request_per_chunk_merged_in_order(
    fake: FakeGemini, make: Make
) -> None:
    lines = [
        (Role.AGENT if n % 2 == 0 else Role.CUSTOMER, f"Sentence number {n}.") for n in range(9)
    ]
    call = request(lines)
    chunks = chunk_utterances(call.transcript.utterances, max_chars=100)
    assert len(chunks) > 1
    fake.batch_plan(BatchPlan(pending_checks=0))
    analyzer = make(chunk_chars=100)

    insights = analyzer.check_batch(analyzer.submit_batch(call), call)

    [batch] = fake.batches.values()
    assert len(batch.prompts) == len(chunks) == (insights.calls if insights else -1)
    assert [f"part {n} of {len(chunks)}" in p for n, p in enumerate(batch.prompts, 1)] == [
        True
    ] * len(chunks)


@pytest.mark.parametrize(
    ("final", "code"),
    [
        ("BATCH_STATE_FAILED", "gemini_batch_failed"),
        ("BATCH_STATE_CANCELLED", "gemini_batch_cancelled"),
        ("BATCH_STATE_EXPIRED", "gemini_batch_expired"),
    ],
)
def test_a_batch_that_ended_without_results_is_rejected_with_its_state(
    fake: FakeGemini, make: Make, final: str, code: str
) -> None:
    fake.batch_plan(BatchPlan(pending_checks=1, final=final))
    analyzer, call = make(), request()
    name = analyzer.submit_batch(call)
    assert analyzer.check_batch(name, call) is None

    with pytest.raises(ProviderRejected) as raised:
        analyzer.check_batch(name, call)
    assert raised.value.code == code


def test_invalid_batch_output_is_not_asked_again(fake: FakeGemini, make: Make) -> None:
    fake.batch_plan(BatchPlan(pending_checks=0, text=json.dumps({"summary": 42})))
    analyzer, call = make(), request()
    name = analyzer.submit_batch(call)

    with pytest.raises(PermanentError) as raised:
        analyzer.check_batch(name, call)
    assert raised.value.code == "analyzer_invalid_output"
    assert len(fake.requests) == 2  # one create, one check: a batch answer is not re-requested


@pytest.mark.parametrize(("code", "kind", "error"), [
    (429, TransientError, "provider_rate_limited"),
    (503, TransientError, "provider_unavailable"),
    (403, ProviderRejected, "provider_auth"),
])  # fmt: skip
def test_errors_on_create_and_check_map_like_the_synchronous_path(
    fake: FakeGemini, make: Make, code: int, kind: type[Exception], error: str
) -> None:
    analyzer, call = make(), request()
    fake.queue(status(code))
    with pytest.raises(kind) as on_create:
        analyzer.submit_batch(call)
    assert getattr(on_create.value, "code", None) == error
    assert fake.batches == {}

    name = analyzer.submit_batch(call)
    fake.queue(status(code))
    with pytest.raises(kind) as on_check:
        analyzer.check_batch(name, call)
    assert getattr(on_check.value, "code", None) == error
    assert fake.batches[name].checks == 0


def test_a_bad_key_is_refused_without_the_key_in_the_message(fake: FakeGemini, make: Make) -> None:
    with pytest.raises(ProviderRejected) as raised:
        make(api_key="wrong-key").submit_batch(request())
    assert raised.value.code == "provider_auth" and "wrong-key" not in str(raised.value)

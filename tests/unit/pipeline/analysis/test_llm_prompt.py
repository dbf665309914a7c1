"""Pure LLM-analysis helpers: the prompt, chunking on utterance boundaries, evidence grounding and
the merge of per-chunk outputs."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from pipeline.analysis import prompt
from pipeline.analysis.evidence import QUOTE_CHARS, index, locate, to_evidence
from pipeline.analysis.prompt import (
    build_prompt,
    chunk_utterances,
    merge,
    prompt_hash,
    utterance_line,
)
from pipeline.analysis.taxonomy import default_taxonomy
from schemas.analysis import Evidence, SemanticQuestion
from schemas.common import Role
from schemas.llm import LlmAnalysis, LlmAnswer
from schemas.tenant import ClientContext
from tests.support.analysis_requests import CALL, CONTEXT, request, utterance


def analysis(**fields: Any) -> LlmAnalysis:
    empty: dict[str, Any] = {
        "summary": "",
        "intents": [],
        "topics": [],
        "action_items": [],
        "outcome": "",
        "violations": [],
        "risk_factors": [],
        "answers": [],
    }
    return LlmAnalysis.model_validate(empty | fields)


def cite(utterance_id: str, quote: str, **fields: Any) -> dict[str, Any]:
    return {"utterance_id": utterance_id, "quote": quote} | fields


def finding(code: str, severity: str, utterance_id: str, quote: str) -> dict[str, Any]:
    return cite(utterance_id, quote, code=code, description=f"{code} found", severity=severity)


def answer(qid: str, value: str, utterance_id: str = "", quote: str = "") -> dict[str, Any]:
    return cite(utterance_id, quote, id=qid, answer=value, rationale=f"{value} for {qid}")


# --- prompt -----------------------------------------------------------------------------------


def test_utterance_line_format() -> None:
    u = utterance(2, Role.AGENT, "  Can I   help\nyou? ", start_ms=12_400)

    assert utterance_line(u) == "[u0003 12.4s Agent] Can I help you?"


def test_prompt_sections() -> None:
    call = request()
    prompt = build_prompt(call, chunk=call.transcript.utterances[:2], part=1, parts=1)

    assert "[u0001 0.0s Agent] Thank you for calling" in prompt
    assert "[u0002 4.0s Customer] Hi, my bill doubled" in prompt
    assert "[u0003 " not in prompt  # only the chunk's lines
    assert "part 1 of" not in prompt
    assert CONTEXT.glossary["PTP"] in prompt
    assert "- Acme Energy" in prompt
    assert "[q:disclosure] Was the recording disclosure read? (about: any)" in prompt


def test_prompt_names_the_part_and_the_builtin_taxonomy() -> None:
    call = request(context=ClientContext(), questions=[])
    prompt = build_prompt(call, chunk=call.transcript.utterances, part=2, parts=3)

    assert "This is part 2 of 3" in prompt
    assert all(f"- {intent.name}" in prompt for intent in default_taxonomy())
    assert "(no questions: return an empty answers list)" in prompt
    assert "(not described)" in prompt


def test_prompt_hash_is_short_and_changes_with_the_template(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = prompt_hash()
    assert len(before) == 16
    int(before, 16)
    monkeypatch.setattr(prompt, "INSTRUCTIONS", prompt.INSTRUCTIONS + " Be brief.")
    assert prompt_hash() != before


# --- chunking ---------------------------------------------------------------------------------


def test_chunks_split_on_boundaries_within_the_limit() -> None:
    utterances = [utterance(n, Role.AGENT, f"line {n} " + "word " * (n % 4)) for n in range(12)]

    chunks = chunk_utterances(utterances, max_chars=80)

    assert [u for chunk in chunks for u in chunk] == utterances
    assert len(chunks) > 1
    for chunk in chunks:
        assert sum(len(utterance_line(u)) + 1 for u in chunk) <= 80


def test_an_overlong_utterance_is_its_own_chunk_untruncated() -> None:
    long = utterance(1, Role.CUSTOMER, "very long " * 50)
    utterances = [utterance(0, Role.AGENT, "hi"), long, utterance(2, Role.AGENT, "ok")]

    chunks = chunk_utterances(utterances, max_chars=60)

    assert [[u.id for u in c] for c in chunks] == [["u0001"], ["u0002"], ["u0003"]]
    assert chunks[1][0].text == long.text


def test_no_utterances_no_chunks() -> None:
    assert chunk_utterances([], max_chars=100) == []


def test_a_short_call_is_one_chunk() -> None:
    call = request()

    assert chunk_utterances(call.transcript.utterances, max_chars=60_000) == [
        call.transcript.utterances
    ]


# --- evidence ---------------------------------------------------------------------------------


def test_evidence_keeps_a_real_quote_and_takes_times_from_the_utterance() -> None:
    utterances = index(request().transcript.utterances)

    evidence = to_evidence(" u0002 ", "MY BILL   doubled", utterances)

    assert evidence == Evidence(
        utterance_id="u0002", quote="my bill doubled", start_ms=4000, end_ms=7500
    )


@pytest.mark.parametrize(
    ("quote", "found"),
    [
        ("STRASSE 5", "Straße 5"),
        ("  the\tbig   DOG ", "the big\ndog"),
        ("ig do", "big\ndog"),
        ("cat", None),
        ("   ", None),
    ],
)
def test_locate_respells_the_quote_from_the_text(quote: str, found: str | None) -> None:
    expected = None if found is None else " ".join(found.split())

    assert locate(quote, "  Walk the big\ndog to Straße 5. ") == expected


def test_evidence_replaces_an_invented_quote_with_the_utterance_text() -> None:
    long = utterance(0, Role.AGENT, "word " * 100)
    utterances = index([long])

    evidence = to_evidence("u0001", "something never said", utterances)

    assert evidence is not None
    assert len(evidence.quote) == QUOTE_CHARS
    assert evidence.quote.endswith("…")
    assert long.text.startswith(evidence.quote[:-1])


def test_evidence_for_an_empty_quote_is_the_utterance_text() -> None:
    utterances = index(request().transcript.utterances)

    evidence = to_evidence("u0001", "", utterances)

    assert evidence is not None and evidence.quote == CALL[0][1]


def test_evidence_for_an_unknown_id_is_dropped() -> None:
    assert to_evidence("u0999", "Thank you", index(request().transcript.utterances)) is None


# --- merge ------------------------------------------------------------------------------------


def test_merge_across_chunks() -> None:
    first = analysis(
        summary="The customer calls about a bill.",
        intents=[
            {"name": "Billing_Dispute", "confidence": 0.4},
            {"name": "other", "confidence": 0.3},
        ],
        topics=["Billing", "fees"],
        action_items=["Call back tomorrow"],
        outcome="escalated",
        violations=[finding("no_disclosure", "low", "u0001", "this call is recorded")],
        risk_factors=[finding("churn", "medium", "u0002", "cancel my contract")],
    )
    second = analysis(
        summary="  The agent   checks the account. ",
        intents=[{"name": "billing_dispute", "confidence": 0.9}],
        topics=["billing", "lawyers"],
        action_items=["call back  TOMORROW", "Send a refund"],
        outcome="",
        violations=[
            finding("NO_DISCLOSURE", "high", "u0003", "let me look"),
            finding("no_disclosure", "high", "u0003", "let me look"),
        ],
        risk_factors=[finding("legal_threat", "critical", "u9999", "lawyer")],
    )

    insights = merge([first, second], request(), provider="gemini", model="m")

    assert insights.summary == "The customer calls about a bill. The agent checks the account."
    assert [(i.name, i.confidence) for i in insights.intents] == [
        ("billing_dispute", 0.9),
        ("other", 0.3),
    ]
    assert insights.topics == ["Billing", "fees", "lawyers"]
    assert insights.action_items == ["Call back tomorrow", "Send a refund"]
    assert insights.outcome == "escalated"
    [violation] = insights.violations
    assert (violation.code, violation.severity) == ("no_disclosure", "high")
    assert [e.utterance_id for e in violation.evidence] == ["u0001", "u0003"]
    assert [f.code for f in insights.risk_factors] == ["churn"]  # legal_threat cited nothing real


@pytest.mark.parametrize(
    ("answers", "expected", "cited"),
    [
        (
            [
                answer("q", "na"),
                answer("q", "no", "u0002", "bill"),
                answer("q", "yes", "u0003", "sorry"),
            ],
            "yes",
            ["u0003"],
        ),
        (
            [
                answer("q", "no", "u0001", "thank"),
                answer("q", "na"),
                answer("q", "no", "u0004", "lawyer"),
            ],
            "no",
            ["u0001", "u0004"],
        ),
        ([answer("q", "na"), answer("q", "na")], "na", []),
        ([answer("other", "yes", "u0001", "thank")], "na", []),
    ],
    ids=["yes-wins", "no-beats-na", "all-na", "not-answered"],
)
def test_answers_yes_beats_no_beats_na(
    answers: list[dict[str, Any]], expected: str, cited: list[str]
) -> None:
    parts = [analysis(answers=[a]) for a in answers]
    questions = [SemanticQuestion(id="q", question="?")]

    [result] = merge(parts, request(questions=questions), provider="gemini", model=None).semantic

    assert (result.id, result.answer) == ("q", expected)
    assert [e.utterance_id for e in result.evidence] == cited


def test_llm_answers_are_normalised_or_refused() -> None:
    assert LlmAnswer.model_validate(answer("q", " YES ")).answer == "yes"
    with pytest.raises(ValidationError):
        LlmAnswer.model_validate(answer("q", "maybe"))


def test_the_llm_schema_has_no_defaults() -> None:
    for model in (LlmAnalysis, LlmAnswer):
        assert all(f.is_required() for f in model.model_fields.values())

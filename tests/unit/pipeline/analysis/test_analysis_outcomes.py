"""Action items, outcome and risk factors from phrase patterns, including the negatives."""

from __future__ import annotations

import pytest

from pipeline.analysis import outcomes
from schemas.common import Role
from schemas.transcript import Utterance
from tests.support.analysis_calls import sample_transcript, transcript_from_lines


def _call(*lines: tuple[Role, str]) -> list[Utterance]:
    return transcript_from_lines(lines).utterances


@pytest.mark.parametrize(
    ("line", "actor"),
    [
        ((Role.AGENT, "I'll send you a confirmation email tonight."), Role.AGENT),
        ((Role.AGENT, "We will call you back tomorrow morning."), Role.AGENT),
        ((Role.AGENT, "You'll receive an email with the details."), Role.AGENT),
        ((Role.AGENT, "I will escalate this to our billing team."), Role.AGENT),
        ((Role.AGENT, "I'm going to also process the refund now."), Role.AGENT),
        ((Role.CUSTOMER, "I'll pay the rest on Friday."), Role.CUSTOMER),
    ],
)
def test_commitments_are_action_items_with_the_promising_actor(
    line: tuple[Role, str], actor: Role
) -> None:
    items = outcomes.action_items(_call((Role.CUSTOMER, "Hi there."), line))
    assert [(i.actor, i.text) for i in items] == [(actor, line[1])]
    assert items[0].describe() == f"{actor.value.capitalize()}: {line[1]}"


@pytest.mark.parametrize(
    "text",
    [
        "I won't call you back, sorry.",
        "I will not send anything else.",
        "We can't refund that fee.",
        "You won't receive an email.",
        "Will you call me back?",
        "I have sent the email already.",
        "I'm not going to escalate this.",
        "If this happens again I'll call my lawyer.",
    ],
)
def test_refusals_questions_and_past_actions_are_not_action_items(text: str) -> None:
    assert outcomes.action_items(_call((Role.AGENT, text))) == []


@pytest.mark.parametrize(
    ("lines", "label"),
    [
        ([(Role.AGENT, "Your account has been cancelled as of today.")], "cancelled"),
        ([(Role.AGENT, "Let me transfer you to my supervisor.")], "escalated"),
        ([(Role.CUSTOMER, "I can pay fifty dollars on Friday.")], "payment_promised"),
        ([(Role.AGENT, "A technician will call you back within two hours.")], "callback_scheduled"),
        ([(Role.AGENT, "I have refunded the duplicate charge.")], "resolved"),
        ([(Role.CUSTOMER, "It's still not working after the reset.")], "unresolved"),
        (
            [(Role.CUSTOMER, "It's still not working."), (Role.AGENT, "Okay, it's working now.")],
            "resolved",
        ),
        (
            [(Role.AGENT, "I have fixed it."), (Role.CUSTOMER, "No, it's still not loading.")],
            "unresolved",
        ),
    ],
)
def test_outcome_labels_with_evidence(lines: list[tuple[Role, str]], label: str) -> None:
    utterances = _call(*lines)
    result = outcomes.outcome(utterances)
    assert result is not None and result.label == label
    ids = {u.id for u in utterances}
    assert result.evidence and all(e.utterance_id in ids for e in result.evidence)


@pytest.mark.parametrize(
    "text",
    [
        "I won't call you back.",
        "Your account hasn't been cancelled.",
        "I can't pay anything this month.",
        "It is not fixed yet, I'm afraid",
    ],
)
def test_negated_outcomes_are_not_taken(text: str) -> None:
    result = outcomes.outcome(_call((Role.AGENT, text)))
    assert result is None or result.label == "unresolved"


def test_no_outcome_language_means_no_outcome() -> None:
    assert (
        outcomes.outcome(_call((Role.CUSTOMER, "Hello?"), (Role.AGENT, "Hi, how are you?"))) is None
    )


def test_sample_call_is_resolved_by_the_refund() -> None:
    transcript = sample_transcript()
    result = outcomes.outcome(transcript.utterances)
    assert result is not None and result.label == "resolved"
    assert result.evidence[0].quote == "I can see the duplicate charge, and I have refunded it now."


def test_risk_factors_each_with_evidence() -> None:
    utterances = _call(
        (Role.CUSTOMER, "This is the third time. I want to speak to a supervisor."),
        (Role.AGENT, "I understand."),
        (
            Role.CUSTOMER,
            "If this isn't fixed I'm going to sue you, and I'll report you to the BBB.",
        ),
        (Role.CUSTOMER, "Honestly I'm ready to cancel and switch to another provider."),
        (Role.AGENT, "Let me check the chargeback status for you."),
    )
    findings = outcomes.risk_factors(utterances, triggers=["chargeback", "  "])
    by_code = {f.code: f for f in findings}
    assert set(by_code) == {
        "escalation_request",
        "legal_threat",
        "cancellation_threat",
        "risk_trigger",
    }
    assert by_code["legal_threat"].severity == "high"
    legal = by_code["legal_threat"].evidence[0]
    assert (legal.utterance_id, legal.quote) == (utterances[2].id, utterances[2].text)
    assert (legal.start_ms, legal.end_ms) == (utterances[2].start_ms, utterances[2].end_ms)
    assert by_code["escalation_request"].evidence[0].quote == "I want to speak to a supervisor."
    assert by_code["risk_trigger"].evidence[0].utterance_id == utterances[4].id
    assert "chargeback" in by_code["risk_trigger"].description


def test_no_risk_from_the_agent_negations_or_names() -> None:
    utterances = _call(
        (Role.AGENT, "My manager Sue asked me to check on your supervisor request."),
        (Role.CUSTOMER, "I don't want to cancel, I just want it to work."),
        (Role.CUSTOMER, "My sister Sue recommended you."),
    )
    assert outcomes.risk_factors(utterances, triggers=["refund"]) == []


def test_the_sample_call_has_no_risk_factors() -> None:
    assert outcomes.risk_factors(sample_transcript().utterances) == []

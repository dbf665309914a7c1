"""The role-attribution cascade: channel map, role-word labels, content cues, speaking order."""

from __future__ import annotations

import pytest

from pipeline.rules.roles import (
    CUES,
    attribute_speakers,
    by_channel,
    by_label,
)
from schemas.common import Role

AGENT_FIRST = [
    ("A", "Thank you for calling Acme Bank, my name is Sarah. How can I help you today?"),
    ("B", "Hi, I was charged twice for my monthly fee."),
    ("A", "I'm sorry about that. I can see the duplicate charge."),
]


def test_the_channel_map_is_exact() -> None:
    mapping = {0: Role.AGENT, 1: Role.CUSTOMER}
    assert by_channel(1, mapping).role is Role.CUSTOMER
    assert by_channel(1, mapping).confidence == 1.0
    assert by_channel(2, mapping).role is Role.UNKNOWN
    assert by_channel(2, mapping).confidence == 0.0


@pytest.mark.parametrize(
    ("label", "role"),
    [
        ("Agent", Role.AGENT),
        (" rep ", Role.AGENT),
        ("Caller", Role.CUSTOMER),
        ("customer", Role.CUSTOMER),
    ],
)
def test_role_words_in_labels_decide_with_certainty(label: str, role: Role) -> None:
    found = by_label(label)
    assert found is not None
    assert (found.role, found.confidence) == (role, 1.0)


@pytest.mark.parametrize("label", ["A", "B", "Sarah", "speaker 1"])
def test_anonymous_labels_are_left_to_the_content(label: str) -> None:
    assert by_label(label) is None


def test_the_greeting_speaker_is_the_agent() -> None:
    found = attribute_speakers(AGENT_FIRST, company_names=["Acme Bank"])
    assert found["A"].role is Role.AGENT
    assert found["B"].role is Role.CUSTOMER
    assert 0.9 <= found["A"].confidence <= 0.95
    assert "greeting" in found["A"].cue and "company name" in found["A"].cue


def test_content_beats_speaking_order() -> None:
    turns = [
        ("A", "Hello? Hi, I'm calling about my bill."),
        ("B", "Thank you for calling, how may I help you?"),
        ("A", "I want to cancel my subscription."),
    ]
    found = attribute_speakers(turns)
    assert (found["A"].role, found["B"].role) == (Role.CUSTOMER, Role.AGENT)
    assert found["B"].confidence > 0.85
    assert "reason for call" in found["A"].cue


def test_with_no_cues_the_first_speaker_is_the_agent_weakly() -> None:
    found = attribute_speakers([("A", "Hello."), ("B", "Hi there."), ("A", "Right.")])
    assert (found["A"].role, found["B"].role) == (Role.AGENT, Role.CUSTOMER)
    assert found["A"].confidence == pytest.approx(0.55, abs=0.01)
    assert found["A"].cue.startswith("first speaker")


def test_confidence_grows_with_the_evidence_margin() -> None:
    weak = attribute_speakers([("A", "hello"), ("B", "thank you for holding")])
    strong = attribute_speakers(AGENT_FIRST, company_names=["Acme Bank"])
    assert weak["B"].role is Role.AGENT
    assert 0.55 < weak["B"].confidence < strong["A"].confidence <= 0.95


def test_the_company_name_is_a_cue_only_when_configured() -> None:
    turns = [("A", "Hi."), ("B", "Globex, good morning.")]
    assert attribute_speakers(turns)["A"].role is Role.AGENT  # order only
    with_name = attribute_speakers(turns, company_names=["Globex"])
    assert with_name["B"].role is Role.AGENT
    assert "company name" in with_name["B"].cue


def test_a_labelled_agent_makes_the_other_speaker_the_customer() -> None:
    found = attribute_speakers([("Agent", "Hello"), ("John", "Thank you for calling")])
    assert (found["Agent"].role, found["Agent"].confidence) == (Role.AGENT, 1.0)
    assert found["John"].role is Role.CUSTOMER
    assert 0.5 < found["John"].confidence < 1.0


def test_a_lone_speaker_gets_the_role_their_words_suggest() -> None:
    found = attribute_speakers([("A", "Hi, I'm calling about my account.")])
    assert found["A"].role is Role.CUSTOMER
    assert 0.5 < found["A"].confidence < 1.0


def test_attribution_is_deterministic_and_repetition_does_not_stack() -> None:
    once = attribute_speakers([("A", "how can i help"), ("B", "my bill")])
    many = attribute_speakers([("A", "how can i help " * 5), ("B", "my bill")])
    assert once == many == attribute_speakers([("A", "how can i help"), ("B", "my bill")])


EXAMPLES = {
    "greeting": "Thanks for contacting us",
    "offer of help": "What can I do for you?",
    "introduction": "my name is Priya and I'll be helping you",
    "verification": "Could you confirm the account number on file?",
    "hold": "let me put you on hold",
    "anything else": "Is there anything else I can do?",
    "apology": "I apologize for the wait",
    "account action": "I have credited your account",
    "reason for call": "I am calling because my card was declined",
    "request": "I'd like to dispute a charge",
    "own account": "my statement looks wrong",
    "complaint": "I've been waiting an hour",
    "when refund": "When will I see the refund?",
    "asks for help": "Can you help me please",
}


@pytest.mark.parametrize("name", sorted({c.name for c in CUES}))
def test_every_cue_in_the_table_fires_on_its_example(name: str) -> None:
    text = EXAMPLES[name].lower()
    assert any(c.pattern.search(text) for c in CUES if c.name == name)

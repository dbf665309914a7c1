"""Extractive summary and topics: verbatim quotes only, time order, role labels, length bound."""

from __future__ import annotations

import numpy as np

from pipeline.analysis import summary
from schemas.common import Role
from tests.support.analysis_calls import sample_transcript, transcript_from_lines

CALL = [
    (Role.AGENT, "Thank you for calling Acme, my name is Sam, how can I help you today?"),
    (
        Role.CUSTOMER,
        "My order from last week still hasn't arrived and the tracking page shows an error.",
    ),
    (Role.AGENT, "Okay."),
    (Role.AGENT, "I see the parcel was sent to an old address, I'll send a replacement today."),
    (Role.CUSTOMER, "Thanks."),
    (Role.AGENT, "Thank you for calling, have a great day."),
]


def test_without_vectors_the_issue_and_the_response_are_quoted_in_time_order() -> None:
    utterances = transcript_from_lines(CALL).utterances
    text = summary.summarize(utterances)
    assert text == (
        "Customer: My order from last week still hasn't arrived and the tracking page shows an error. "
        "Agent: I see the parcel was sent to an old address, I'll send a replacement today."
    )


def test_with_vectors_central_turns_win_over_boilerplate() -> None:
    utterances = transcript_from_lines(CALL).utterances
    # Turns 1 and 3 point the same way (the call's subject); the others are orthogonal noise.
    rows = [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0.9, 0.1, 0, 0], [0, 0, 0, 1], [0, 1, 0, 0]]
    vectors = np.asarray(rows, dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    text = summary.summarize(utterances, vectors)
    assert text.startswith("Customer: My order from last week")
    assert "Agent: I see the parcel" in text
    assert "great day" not in text


def test_every_quote_is_verbatim_and_the_length_is_bounded() -> None:
    long = "The router light is red and blinking and nothing loads at all on any device " * 6
    utterances = transcript_from_lines(
        [(Role.CUSTOMER, long.strip()), (Role.AGENT, "I will reset the line from here. " * 30)]
        + CALL * 6
    ).utterances
    text = summary.summarize(utterances, max_chars=600)
    assert 0 < len(text) <= 600
    for part in text.replace("Agent: ", "|").replace("Customer: ", "|").split("|")[1:]:
        quote = part.strip().removesuffix("…")
        assert any(quote in u.text for u in utterances), quote


def test_sample_call_summary_quotes_the_complaint_and_the_refund() -> None:
    text = summary.summarize(sample_transcript().utterances)
    assert "charged twice" in text and "refunded" in text
    assert text.index("Customer:") < text.index("Agent:")


def test_an_empty_call_has_an_empty_summary() -> None:
    assert summary.summarize([]) == ""


def test_topics_are_intent_names_in_words_or_salient_terms() -> None:
    utterances = transcript_from_lines(CALL).utterances
    assert summary.topics(["order_status", "refund_request"], utterances) == [
        "order status",
        "refund request",
    ]
    terms = summary.topics([], sample_transcript().utterances)
    assert terms and all(len(t) >= 4 for t in terms)
    assert "thank" not in terms and "calling" not in terms

"""VaderScorer: real VADER with the call-center lexicon and the multi-word phrase pass."""

from __future__ import annotations

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from pipeline.adapters.vader import VaderScorer
from pipeline.ports import SentimentScorer


@pytest.fixture(scope="module")
def scorer() -> VaderScorer:
    return VaderScorer()


def plain(text: str) -> float:
    return float(SentimentIntensityAnalyzer().polarity_scores(text)["compound"])


def test_implements_the_port(scorer: VaderScorer) -> None:
    port: SentimentScorer = scorer
    assert port.name == "vader+callcenter"
    assert isinstance(port.score("hello"), float)


def test_really_frustrating_is_negative_where_plain_vader_shrugs(scorer: VaderScorer) -> None:
    text = "Yeah, okay, really frustrating."

    assert plain(text) > -0.05  # the miss PROVIDERS.md measured: fillers cancel the complaint
    assert scorer.score(text) <= -0.5
    assert scorer.score("This is really frustrating") < plain("This is really frustrating")


@pytest.mark.parametrize(
    "text",
    [
        "I have been on hold forever",
        "I want to speak to a supervisor",
        "Honestly this call is a waste of time",
        "I was charged twice on my bill",
        "This is unacceptable, I want to cancel",
    ],
)
def test_call_center_complaints_are_negative(scorer: VaderScorer, text: str) -> None:
    assert scorer.score(text) <= -0.3
    assert scorer.score(text) < plain(text)


@pytest.mark.parametrize(
    "text",
    [
        "Perfect, that's all sorted, I appreciate it",
        "Great, it works now, you have been very helpful",
        "Thanks so much, that is resolved",
    ],
)
def test_resolution_is_positive(scorer: VaderScorer, text: str) -> None:
    assert scorer.score(text) >= 0.5


def test_phrases_are_joined_case_insensitively_across_extra_whitespace(
    scorer: VaderScorer,
) -> None:
    assert scorer.join_phrases("I was CHARGED\n  twice!") == "I was CHARGED_twice!"
    assert scorer.join_phrases("on hold forever, really") == "on_hold_forever, really"
    assert scorer.join_phrases("surcharged twice") == "surcharged twice"  # word-bounded


def test_vader_rules_apply_to_phrases(scorer: VaderScorer) -> None:
    charged = scorer.score("I was charged twice")

    assert charged <= -0.4
    assert scorer.score("I was not charged twice") > 0  # negation flips the phrase
    assert scorer.score("I have been ON HOLD FOREVER") < scorer.score("I have been on hold forever")


def test_scripted_agent_lines_stay_neutral(scorer: VaderScorer) -> None:
    assert scorer.score("Hello, how can I help you today?") == 0.0
    assert scorer.score("Okay, yeah, sure, please hold") == 0.0


def test_lexicon_is_per_instance_not_global() -> None:
    VaderScorer()

    fresh = SentimentIntensityAnalyzer().lexicon
    assert fresh["frustrating"] == -1.9
    assert "charged_twice" not in fresh


def test_empty_text_is_neutral(scorer: VaderScorer) -> None:
    assert scorer.score("") == 0.0

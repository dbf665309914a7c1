"""VADER sentiment tuned for call-center speech: the `SentimentScorer` port, offline.

Plain VADER reads "yeah, okay, really frustrating" as nearly neutral; a domain lexicon fixes that.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

# Valences on VADER's -4 … +4 scale. Where VADER already has a word, ours replaces it: these are
# the readings that word has on a support line ("cancel" is a churn signal, "supervisor" an
# escalation, "resolved" the outcome everybody wants).
CALL_CENTER_WORDS: Mapping[str, float] = {
    "frustrating": -2.6,
    "frustrated": -2.6,
    "frustration": -2.4,
    "ridiculous": -2.4,
    "unacceptable": -2.8,
    "cancel": -1.6,
    "cancelled": -1.6,
    "canceled": -1.6,
    "cancellation": -1.6,
    "overcharged": -2.4,
    "double-charged": -2.4,
    "escalate": -1.8,
    "supervisor": -1.2,
    "complaint": -2.0,
    "complain": -1.8,
    "lawyer": -2.2,
    "attorney": -2.2,
    "lawsuit": -2.6,
    "useless": -2.4,
    "unhelpful": -2.0,
    "incompetent": -2.6,
    "joke": -1.2,  # "this is a joke" on a support line is never a compliment
    "resolved": 2.0,
    "sorted": 1.6,
    "fixed": 1.6,
    "appreciate": 2.2,
    "perfect": 2.7,
    "helpful": 2.2,
    # Discourse fillers that VADER counts as praise; on a call they are acknowledgements, and
    # they would otherwise pull every frustrated customer towards neutral.
    "yeah": 0.0,
    "yes": 0.0,
    "ok": 0.0,
    "okay": 0.0,
    "alright": 0.0,
    "sure": 0.0,
    "well": 0.0,
    "like": 0.0,
    "honestly": 0.0,
    "please": 0.0,
    "help": 0.0,  # "how can I help" opens every call
    "care": 0.0,  # "customer care"
}

# Multi-word expressions. VADER splits on whitespace and looks words up one at a time, so each
# phrase is rewritten to one underscore-joined token before scoring ("charged twice" →
# "charged_twice") and that token carries the valence. VADER's own rules then apply to it like to
# any word: a preceding "not" negates it, "really" boosts it, ALL CAPS emphasises it, and the
# phrase replaces its parts' valences (no double count of "waste" in "waste of time").
CALL_CENTER_PHRASES: Mapping[str, float] = {
    "charged twice": -2.2,
    "double charged": -2.2,
    "waste of time": -2.6,
    "on hold forever": -2.4,
    "on hold for hours": -2.2,
    "still waiting": -1.6,
    "still not working": -2.0,
    "sue you": -2.8,
    "going to sue": -2.8,
    "speak to a supervisor": -1.8,
    "speak to your supervisor": -1.8,
    "all sorted": 2.0,
    "works now": 1.8,
    "thanks so much": 2.4,
}


def _token(phrase: str) -> str:
    return "_".join(phrase.split())


def _phrase_pattern(phrases: Mapping[str, float]) -> re.Pattern[str]:
    """One alternation, longest phrase first so 'on hold forever' wins over any shorter prefix."""
    parts = sorted(phrases, key=len, reverse=True)
    body = "|".join(r"\s+".join(map(re.escape, p.split())) for p in parts)
    return re.compile(rf"(?<![\w'])(?:{body})(?![\w'])", re.IGNORECASE)


class VaderScorer:
    """`SentimentScorer`: VADER compound score with the call-center lexicon and phrase pass.

    Stateless after construction and safe to share within a thread; the analyzer (and its 7,500
    word lexicon) is built once per instance. Never raises for a string input.
    """

    name = "vader+callcenter"

    def __init__(self) -> None:
        self._analyzer = SentimentIntensityAnalyzer()
        lexicon: dict[str, float] = self._analyzer.lexicon
        lexicon.update(CALL_CENTER_WORDS)
        lexicon.update({_token(p): v for p, v in CALL_CENTER_PHRASES.items()})
        self._phrases = _phrase_pattern(CALL_CENTER_PHRASES)

    def join_phrases(self, text: str) -> str:
        """`text` with each known phrase joined into its lexicon token, case kept (for ALL CAPS)."""
        return self._phrases.sub(lambda m: _token(m.group(0)), text)

    def score(self, text: str) -> float:
        """Compound sentiment, -1 … 1."""
        scores = self._analyzer.polarity_scores(self.join_phrases(text))
        return float(scores["compound"])

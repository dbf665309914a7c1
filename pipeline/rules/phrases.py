"""Phrase matching for phrase rules: exact (word-bounded), regex and fuzzy (ASR-error tolerant).

Fuzzy compares the phrase with every window of n-1 … n+1 words of an utterance (difflib's ratio
over the lower-cased words), so "collect a dept" still matches "collect a debt".
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from difflib import SequenceMatcher
from typing import NamedTuple

from pipeline.rules.facts import clock, describe_window, in_window, quote_around
from schemas.analysis import Evidence
from schemas.rules import PhraseRule
from schemas.transcript import Utterance

_WORD = re.compile(r"\w+")
_ROLE_NAMES = {"agent": "Agent", "customer": "Customer", "unknown": "An unknown speaker"}


class Hit(NamedTuple):
    """The earliest match of a rule's phrases in one utterance (char offsets into its text)."""

    utterance: Utterance
    phrase: str
    start: int
    end: int
    similarity: float = 1.0

    def evidence(self) -> Evidence:
        u = self.utterance
        quote = quote_around(u.text, self.start, self.end)
        return Evidence(utterance_id=u.id, quote=quote, start_ms=u.start_ms, end_ms=u.end_ms)


def phrase_pattern(phrase: str) -> re.Pattern[str]:
    """Case-insensitive, word-bounded; any run of spaces or punctuation may separate the words,
    so "thank you for calling" matches "Thank you, for  calling!" but not "thank your"."""
    words = _WORD.findall(phrase.lower())
    body = r"[\W_]+".join(map(re.escape, words))
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


@functools.lru_cache(maxsize=4096)
def compiled(phrase: str, *, regex: bool) -> re.Pattern[str]:
    """The pattern for one phrase; re.error for a bad regex (cards are validated on load)."""
    return re.compile(phrase, re.IGNORECASE) if regex else phrase_pattern(phrase)


def _fuzzy(phrase: str, text: str, threshold: float) -> tuple[int, int, float] | None:
    """Best (start, end, similarity) among word windows of the text, earliest on a tie."""
    target = " ".join(_WORD.findall(phrase.lower()))
    n = len(target.split())
    tokens = list(_WORD.finditer(text.lower()))
    best: tuple[int, int, float] | None = None
    matcher = SequenceMatcher(None, autojunk=False)
    matcher.set_seq2(target)
    for i in range(len(tokens)):
        for size in (n - 1, n, n + 1):
            if size < 1 or i + size > len(tokens):
                continue
            matcher.set_seq1(" ".join(t.group() for t in tokens[i : i + size]))
            if matcher.real_quick_ratio() < threshold or matcher.quick_ratio() < threshold:
                continue
            ratio = matcher.ratio()
            if ratio >= threshold and (best is None or ratio > best[2]):
                best = (tokens[i].start(), tokens[i + size - 1].end(), ratio)
    return best


def _first_match(rule: PhraseRule, text: str) -> tuple[str, int, int, float] | None:
    found: list[tuple[int, int, str, float]] = []
    for phrase in rule.phrases:
        if rule.match == "fuzzy":
            hit = _fuzzy(phrase, text, rule.threshold)
            if hit:
                found.append((hit[0], hit[1], phrase, hit[2]))
        elif m := compiled(phrase, regex=rule.match == "regex").search(text):
            found.append((m.start(), m.end(), phrase, 1.0))
    if not found:
        return None
    start, end, phrase, similarity = min(found, key=lambda f: (f[0], -f[3]))
    return phrase, start, end, similarity


def phrase_hits(
    rule: PhraseRule, utterances: Iterable[Utterance], bounds: tuple[float, float]
) -> list[Hit]:
    """One hit per matching utterance of the rule's role inside `bounds`, in time order."""
    hits: list[Hit] = []
    for u in utterances:
        if rule.role not in ("any", u.role) or not in_window(u, bounds):
            continue
        match = _first_match(rule, u.text)
        if match:
            hits.append(Hit(u, *match))
    return hits


def said(hit: Hit) -> str:
    """Rationale for a hit: who said what (how close, for fuzzy), and when."""
    closeness = "" if hit.similarity >= 1.0 else f" ({hit.similarity:.0%} match)"
    who = _ROLE_NAMES.get(hit.utterance.role.value, "Someone")
    return f"{who} said '{hit.phrase}'{closeness} at {clock(hit.utterance.start_ms)}."


def not_said(rule: PhraseRule) -> str:
    """Rationale for no hit: the first three phrases, then how many more."""
    listed = [f"'{p}'" for p in rule.phrases[:3]]
    more = len(rule.phrases) - len(listed)
    phrases = ", ".join(listed) + (f" or {more} similar phrases" if more else "")
    window = describe_window(rule.window)
    if rule.role == "any":
        return f"No one said {phrases}{window}."
    return f"{_ROLE_NAMES[rule.role.value]} did not say {phrases}{window}."


def regex_problem(phrases: Sequence[str]) -> str | None:
    """Why one of `phrases` is not a usable regex, or None."""
    for phrase in phrases:
        try:
            pattern = re.compile(phrase)
        except re.error as exc:
            return f"regex {phrase!r} does not compile: {exc}"
        if pattern.search("") is not None:
            return f"regex {phrase!r} matches the empty string"
    return None

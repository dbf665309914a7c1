"""PCI: find a payment card number or security code spoken in a call and mask it in text and words.

Pure. Digits are followed per speaker across words and segments; the result keeps only a mask and a
`Redaction` (kind, time, a description without the digits).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from pipeline.rules.pci_tokens import (
    CURRENCY_WORDS,
    Kind,
    classify_tokens,
    core,
    luhn_valid,
    normalize,
)
from schemas.transcript import Redaction, Segment, Word

CARD_NUMBER = "card_number"
SECURITY_CODE = "security_code"
MASKS = {CARD_NUMBER: "[card number]", SECURITY_CODE: "[security code]"}
CARD_MIN, CARD_MAX = 13, 19
# Inside a longer run, the likeliest card lengths are tried first (16 for Visa/Mastercard, 15 Amex).
CARD_LENGTHS = (16, 15, 19, 14, 13, 18, 17)
CODE_MIN, CODE_MAX = 3, 4
# A pause longer than this between two digits ends a reading (people pause to find the card).
MAX_GAP_MS = 10_000

Speaker = tuple[str | None, int | None]


class _Context(NamedTuple):
    """Phrases that make a digit run sensitive, and how far back (tokens of anyone, and ms) they count."""

    phrases: tuple[str, ...]
    tokens: int
    ms: int


CARD_CONTEXT = _Context(
    (
        "card number",
        "credit card",
        "debit card",
        "visa",
        "mastercard",
        "master card",
        "amex",
        "american express",
        "card no",
        "long number on the card",
    ),
    tokens=40,
    ms=60_000,
)
CODE_CONTEXT = _Context(
    (
        "security code",
        "cvv",
        "cvc",
        "cvv2",
        "cvc2",
        "cv2",
        "digits on the back",
        "digit code on the back",
        "digits on the front",
        "security number",
    ),
    tokens=12,
    ms=20_000,
)


@dataclass(frozen=True)
class _Token:
    seg: int
    pos: int  # index in the segment's tokens; equal to the word index when the segment has words
    span: tuple[int, int] | None  # characters in the segment's text; None when not found there
    start_ms: int
    end_ms: int
    norm: str
    kind: Kind
    digits: str
    speaker: Speaker


@dataclass(frozen=True)
class _Digit:
    index: int  # into the call's token stream
    digits: str
    interrupted: bool  # the other party said something (not an acknowledgement) just before


@dataclass(frozen=True)
class _Hit:
    kind: str
    indices: tuple[int, ...]
    detail: str


def redact_segments(segments: Sequence[Segment]) -> tuple[list[Segment], list[Redaction]]:
    """New segments with card numbers and security codes masked in text and words, and what was masked.

    The input is not modified. Segments without a finding are returned unchanged (same content).
    """
    per_segment = [_tokens(i, seg) for i, seg in enumerate(segments)]
    stream = list(heapq.merge(*per_segment, key=lambda t: t.start_ms))
    hits = [hit for run in _runs(stream) for hit in _run_hits(run, stream)]
    masked = [
        _mask(seg, _ranges(i, hits, stream), per_segment[i]) for i, seg in enumerate(segments)
    ]
    redactions = [_redaction(hit, stream) for hit in hits]
    redactions.sort(key=lambda r: (r.start_ms, r.end_ms))
    return masked, redactions


def redact_transcript_text(text: str) -> tuple[str, list[str]]:
    """A plain string with its card numbers and security codes masked, and the kinds found."""
    segments, redactions = redact_segments([Segment(start_ms=0, end_ms=0, text=text)])
    return segments[0].text, [r.kind for r in redactions]


def _tokens(seg_index: int, seg: Segment) -> list[_Token]:
    speaker: Speaker = (seg.speaker, seg.channel)
    if seg.words:
        raws = [w.text for w in seg.words]
        starts = _locate(seg.text, raws)
        times = [(w.start_ms, w.end_ms) for w in seg.words]
    else:
        found = list(re.finditer(r"\S+", seg.text))
        raws = [m.group() for m in found]
        starts = [m.start() for m in found]
        times = [_interpolate(seg, m.start(), m.end()) for m in found]
    kinds = classify_tokens(raws)
    spans = [_core_span(raw, at) for raw, at in zip(raws, starts, strict=True)]
    return [
        _Token(seg_index, i, spans[i], *times[i], normalize(raws[i]), *kinds[i], speaker)
        for i in range(len(raws))
    ]


def _interpolate(seg: Segment, start: int, end: int) -> tuple[int, int]:
    # A text-only segment has no word times: place each token by its position in the text.
    length = max(len(seg.text), 1)
    duration = max(seg.end_ms - seg.start_ms, 0)
    return seg.start_ms + duration * start // length, seg.start_ms + duration * end // length


def _core_span(raw: str, at: int | None) -> tuple[int, int] | None:
    """The characters of a token's core in the text, given where the token (stripped) starts."""
    if at is None:
        return None
    offset = at - (len(raw) - len(raw.lstrip()))
    first, last = core(raw)
    return offset + first, offset + last


def _locate(text: str, raws: list[str]) -> list[int | None]:
    """Where each word (stripped) starts in the text, searched in order; None where it is not there."""
    spans: list[int | None] = []
    cursor = 0
    for raw in raws:
        needle = raw.strip()
        found = None
        if needle:
            pattern = r"(?<![\w])" + re.escape(needle) + r"(?![\w])"
            found = re.compile(pattern, re.IGNORECASE).search(text, cursor)
        spans.append(found.start() if found else None)
        if found:
            cursor = found.end()
    return spans


def _runs(stream: list[_Token]) -> list[list[_Digit]]:
    """Digits read by one speaker without a word between them, in the order they were said."""
    open_runs: dict[Speaker, list[_Digit]] = {}
    interrupted: set[Speaker] = set()
    done: list[list[_Digit]] = []
    for index, token in enumerate(stream):
        who = token.speaker
        if token.kind is Kind.DIGITS:
            run = open_runs.get(who)
            if run and token.start_ms - stream[run[-1].index].end_ms > MAX_GAP_MS:
                done.append(open_runs.pop(who))
            open_runs.setdefault(who, []).append(_Digit(index, token.digits, who in interrupted))
            interrupted.discard(who)
        elif token.kind in (Kind.WORD, Kind.ACK):
            if who in open_runs:
                done.append(open_runs.pop(who))
            interrupted.discard(who)
            if token.kind is Kind.WORD:
                interrupted.update(s for s in open_runs if s != who)
    done.extend(open_runs.values())
    return done


def _run_hits(run: list[_Digit], stream: list[_Token]) -> list[_Hit]:
    """Findings in one run. Where the other party spoke inside it (say, asking for the expiry
    date), the pieces are judged first; the whole run then counts only with card context."""
    pieces = _split(run)
    if len(pieces) == 1:
        return _classify(run, stream, need_context=False)
    hits = [h for p in pieces for h in _classify(p, stream, need_context=False)]
    return hits or _classify(run, stream, need_context=True)


def _split(run: list[_Digit]) -> list[list[_Digit]]:
    pieces: list[list[_Digit]] = [[]]
    for digit in run:
        if digit.interrupted and pieces[-1]:
            pieces.append([])
        pieces[-1].append(digit)
    return pieces


def _classify(run: list[_Digit], stream: list[_Token], *, need_context: bool) -> list[_Hit]:
    """A card (Luhn-valid, or any 13+ digits after card context), or a security code after its
    context. `need_context`: a Luhn-valid run counts only after card context too."""
    digits = "".join(d.digits for d in run)
    count = len(digits)
    card_context = _context(stream, run[0].index, CARD_CONTEXT)
    if CARD_MIN <= count <= CARD_MAX and luhn_valid(digits) and (card_context or not need_context):
        return [_hit(CARD_NUMBER, run, f"{count} digits, Luhn-valid")]
    if count > CARD_MIN and not need_context:
        split = _card_within(run, stream)
        if split:
            return split
    if count >= CARD_MIN and card_context:
        detail = f"{count} digits, not Luhn-valid, after card context"
        return [_hit(CARD_NUMBER, run, detail)]
    if CODE_MIN <= count <= CODE_MAX and _is_code(run, stream):
        return [_hit(SECURITY_CODE, run, f"{count} digits after security-code context")]
    return []


def _card_within(run: list[_Digit], stream: list[_Token]) -> list[_Hit]:
    """A Luhn-valid card at the start or end of a longer run (a card read with its code, say)."""
    prefixes = [(run[:n], run[n:]) for n in range(1, len(run))]
    suffixes: list[tuple[list[_Digit], list[_Digit]]] = [(run[n:], []) for n in range(1, len(run))]
    for length in CARD_LENGTHS:
        for card, rest in prefixes + suffixes:
            digits = "".join(d.digits for d in card)
            if len(digits) == length and luhn_valid(digits):
                hit = _hit(CARD_NUMBER, card, f"{length} digits, Luhn-valid")
                return [hit, *_code_after(rest, stream)]
    return []


def _code_after(rest: list[_Digit], stream: list[_Token]) -> list[_Hit]:
    """3-4 digits read on, without a word, right after a card: its security code (or expiry)."""
    count = sum(len(d.digits) for d in rest)
    if CODE_MIN <= count <= CODE_MAX and not _amount_follows(rest, stream):
        return [_hit(SECURITY_CODE, rest, f"{count} digits read right after a card number")]
    return []


def _is_code(run: list[_Digit], stream: list[_Token]) -> bool:
    # "125 dollars" right after a question about the code is still an amount.
    return not _amount_follows(run, stream) and _context(stream, run[0].index, CODE_CONTEXT)


def _amount_follows(run: list[_Digit], stream: list[_Token]) -> bool:
    after = run[-1].index + 1
    return after < len(stream) and stream[after].norm in CURRENCY_WORDS


def _context(stream: list[_Token], before: int, context: _Context) -> bool:
    """Whether one of the phrases was said, by anyone, shortly before token `before`."""
    at = stream[before].start_ms
    recent = stream[max(0, before - context.tokens) : before]
    said = " " + " ".join(t.norm for t in recent if at - t.end_ms <= context.ms) + " "
    return any(f" {phrase} " in said for phrase in context.phrases)


def _hit(kind: str, run: list[_Digit], detail: str) -> _Hit:
    return _Hit(kind, tuple(d.index for d in run), detail)


def _redaction(hit: _Hit, stream: list[_Token]) -> Redaction:
    tokens = [stream[i] for i in hit.indices]
    start = min(t.start_ms for t in tokens)
    end = max(t.end_ms for t in tokens)
    return Redaction(kind=hit.kind, start_ms=start, end_ms=end, detail=hit.detail)


def _ranges(seg_index: int, hits: list[_Hit], stream: list[_Token]) -> list[tuple[int, int, str]]:
    """Token positions [first, last] to mask in one segment, in order, overlaps merged."""
    ranges: list[tuple[int, int, str]] = []
    for hit in hits:
        positions = [stream[i].pos for i in hit.indices if stream[i].seg == seg_index]
        if positions:
            ranges.append((min(positions), max(positions), hit.kind))
    merged: list[tuple[int, int, str]] = []
    for lo, hi, kind in sorted(ranges):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]), merged[-1][2])
        else:
            merged.append((lo, hi, kind))
    return merged


def _mask(seg: Segment, ranges: list[tuple[int, int, str]], tokens: list[_Token]) -> Segment:
    """The segment with each range replaced by its mask, in the text and (as one word) in the words."""
    if not ranges:
        return seg
    words = list(seg.words)
    for lo, hi, kind in reversed(ranges):
        if words:
            # Punctuation around the digits stays: "it's 4111-…-1111." reads "it's [card number]."
            lead, trail = words[lo].text, words[hi].text
            label = lead[: core(lead)[0]] + MASKS[kind] + trail[core(trail)[1] :]
            mask = Word(text=label, start_ms=words[lo].start_ms, end_ms=words[hi].end_ms)
            words[lo : hi + 1] = [mask]
    text = _mask_text(seg.text, ranges, tokens)
    if text is None:
        # Words whose place in the text is unknown: the text is rebuilt so that no digit survives.
        text = " ".join(w.text.strip() for w in words)
    return seg.model_copy(update={"text": text, "words": words})


def _mask_text(text: str, ranges: list[tuple[int, int, str]], tokens: list[_Token]) -> str | None:
    for lo, hi, kind in reversed(ranges):
        first, last = tokens[lo].span, tokens[hi].span
        if first is None or last is None:
            return None
        text = text[: first[0]] + MASKS[kind] + text[last[1] :]
    return text

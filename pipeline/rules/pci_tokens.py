"""How ASR writes spoken digits: each token classified as digits, a filler, an acknowledgement or a word.

Used by `pipeline.rules.pci`; pure, no state. Spelled digits ("four one", "double five", "oh"),
digit groups ("4111-1111") and amounts, dates and times (which are never digits of a card) are told apart here.
"""

from __future__ import annotations

import re
from enum import Enum

UNITS = {
    "zero": "0",
    "oh": "0",
    "o": "0",
    "nought": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
TEENS = {
    "ten": "10",
    "eleven": "11",
    "twelve": "12",
    "thirteen": "13",
    "fourteen": "14",
    "fifteen": "15",
    "sixteen": "16",
    "seventeen": "17",
    "eighteen": "18",
    "nineteen": "19",
}
TENS = {
    "twenty": "2",
    "thirty": "3",
    "forty": "4",
    "fifty": "5",
    "sixty": "6",
    "seventy": "7",
    "eighty": "8",
    "ninety": "9",
}
REPEAT = {"double": 2, "triple": 3}
FILLERS = frozenset({"uh", "um", "umm", "uhm", "er", "erm", "ah", "hmm", "mm"})
# Another speaker saying these while digits are read does not end the reading.
ACKS = frozenset(
    {"ok", "okay", "mhm", "mm-hm", "mm-hmm", "uh-huh", "yes", "yeah", "yep", "right", "sure"}
    | {"go", "ahead", "got", "it", "alright", "thanks", "thank", "you", "sorry", "again"}
)
# A number followed by one of these is an amount, never a security code.
CURRENCY_WORDS = frozenset({"dollars", "dollar", "bucks", "cents", "pounds", "euros", "percent"})
_EDGE = ".,;:!?\"'()[]{}…-–—*"  # noqa: RUF001 - dashes are punctuation around spoken digits
_INTERJECTION_MARK = (",", "!", "?")
_DIGIT_GROUPS = re.compile(r"#?\d+(?:[-.]?\d+)*")
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_DECIMAL = re.compile(r"\d+\.\d{1,2}")
_CURRENCY_SIGN = re.compile(r"^[$€£¥₹]|^[a-z]{0,3}[$€£¥₹]\d|%$")


class Kind(Enum):
    DIGITS = "digits"
    SKIP = "skip"  # punctuation or a filler: neither part of a number nor an end to one
    ACK = "ack"
    WORD = "word"  # anything else, including amounts, dates and times: ends a digit run


def normalize(raw: str) -> str:
    """Lower case without surrounding punctuation: the form context phrases are matched on."""
    return raw.strip().lower().strip(_EDGE)


def core(raw: str) -> tuple[int, int]:
    """Where a token's core starts and ends in it: without whitespace and surrounding punctuation."""
    start = len(raw) - len(raw.lstrip().lstrip(_EDGE))
    end = len(raw.rstrip().rstrip(_EDGE))
    return (start, end) if start < end else (start, start)


def classify_tokens(raws: list[str]) -> list[tuple[Kind, str]]:
    """Kind and digits of each token of one segment, in order (look-ahead stays inside it)."""
    norms = [normalize(raw) for raw in raws]
    out: list[tuple[Kind, str]] = []
    for i, raw in enumerate(raws):
        nxt = norms[i + 1].split("-")[0] if i + 1 < len(norms) else ""
        out.append(_classify(raw, norms[i], nxt))
    return out


def _classify(raw: str, norm: str, nxt: str) -> tuple[Kind, str]:
    if not norm or norm in FILLERS:
        return Kind.SKIP, ""
    numeric = _numeric(raw.strip().lower(), norm)
    if numeric is not None:
        return numeric
    if norm in ("oh", "o") and _interjection(raw.strip()):
        return Kind.WORD, ""  # "Oh, sure": an interjection, not a zero
    parts = [p for p in norm.split("-") if p]
    digits = [_spoken(p, parts[j + 1] if j + 1 < len(parts) else nxt) for j, p in enumerate(parts)]
    if parts and all(d is not None for d in digits):
        return Kind.DIGITS, "".join(d for d in digits if d is not None)
    if norm in ACKS:
        return Kind.ACK, ""
    return Kind.WORD, ""


def _interjection(oh: str) -> bool:
    # "Oh," "oh!" "oh?" and a capitalised "Oh." (a sentence of its own); a lower-case "oh." ends
    # a number read out at the end of a sentence.
    return oh.endswith(_INTERJECTION_MARK) or oh in ("Oh.", "O.")


def _numeric(lowered: str, norm: str) -> tuple[Kind, str] | None:
    """Tokens written with digits: digit groups are digits; amounts and dates end a run."""
    if not any(ch.isdigit() for ch in norm):
        return None
    if _CURRENCY_SIGN.search(lowered) or _THOUSANDS.fullmatch(norm) or _DECIMAL.fullmatch(norm):
        return Kind.WORD, ""
    if "/" in norm or not _DIGIT_GROUPS.fullmatch(norm):
        return Kind.WORD, ""  # 12/25, 3:30, 25th, A123: dates, times, codes with letters
    return Kind.DIGITS, re.sub(r"\D", "", norm)


def _spoken(word: str, nxt: str) -> str | None:
    if word in UNITS:
        return UNITS[word]
    if word in TEENS:
        return TEENS[word]
    if word in TENS:
        # "forty one" is 41, a lone "forty" is 40; "forty oh" is not how anyone says 40.
        unit = UNITS.get(nxt, "0")
        return TENS[word] + ("" if unit != "0" else "0")
    if word in REPEAT:
        digit = UNITS.get(nxt) or (nxt if len(nxt) == 1 and nxt.isdigit() else None)
        return None if digit is None else digit * (REPEAT[word] - 1)
    return None


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        value = int(ch) * (2 if i % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0

"""PCI redaction on calls built word by word: every spoken form of a card, and look-alikes left alone."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import pytest

from pipeline.rules.pci import redact_segments, redact_transcript_text
from schemas.transcript import Redaction, Segment, Word

WORD_MS, WORD_GAP_MS, TURN_GAP_MS = 300, 100, 700
START_MS = 200_000
CARD = "[card number]"
CODE = "[security code]"
LUHN16 = "16 digits, Luhn-valid"
NOT_LUHN16 = "16 digits, not Luhn-valid, after card context"
SPOKEN = {
    "zero": "0",
    "oh": "0",
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


def luhn(digits: str) -> bool:
    # Written independently of the module under test: double every second digit from the right.
    doubled = [int(c) * 2 if i % 2 else int(c) for i, c in enumerate(reversed(digits))]
    return sum(d - 9 if d > 9 else d for d in doubled) % 10 == 0


def build(lines: list[tuple[str, str]], *, with_words: bool = True) -> list[Segment]:
    """One segment per (speaker, text), words 300 ms long and 100 ms apart, turns 700 ms apart."""
    segments, at = [], START_MS
    for speaker, text in lines:
        words = []
        for raw in text.split():
            words.append(Word(text=raw, start_ms=at, end_ms=at + WORD_MS))
            at += WORD_MS + WORD_GAP_MS
        at += TURN_GAP_MS
        segments.append(
            Segment(
                start_ms=words[0].start_ms,
                end_ms=words[-1].end_ms,
                text=text,
                speaker=speaker,
                words=words if with_words else [],
            )
        )
    return segments


@dataclass(frozen=True)
class Case:
    name: str
    lines: list[tuple[str, str]]
    masked: list[str] | None = None  # expected texts; None: unchanged
    found: list[tuple[str, str]] = field(default_factory=list)  # (kind, detail), in time order
    secrets: tuple[str, ...] = ()  # digits that must not survive anywhere


V = "4111111111111111"
C_ = "C"
A_ = "A"
CASES = [
    Case(
        "digit groups",
        [(C_, "my card is 4111 1111 1111 1111 thanks")],
        ["my card is [card number] thanks"],
        [("card_number", LUHN16)],
        (V,),
    ),
    Case(
        "hyphens keep the full stop",
        [(C_, "it's 4111-1111-1111-1111.")],
        ["it's [card number]."],
        [("card_number", LUHN16)],
        (V,),
    ),
    Case(
        "one long token",
        [(C_, "5555555555554444.")],
        ["[card number]."],
        [("card_number", LUHN16)],
        ("5555555555554444",),
    ),
    Case(
        "spelled with commas",
        [(C_, "it is four one one one, one one one one, one one one one, one one one one")],
        ["it is [card number]"],
        [("card_number", LUHN16)],
        (V,),
    ),
    Case(
        "double",
        [
            (
                C_,
                "sure, double five double five double five double five double five double five "
                "double four double four okay",
            )
        ],
        ["sure, [card number] okay"],
        [("card_number", LUHN16)],
        ("5555555555554444",),
    ),
    Case(
        "amex with triple oh",
        [
            (
                C_,
                "the number is three seven eight two eight two two four six three one triple oh five",
            )
        ],
        ["the number is [card number]"],
        [("card_number", "15 digits, Luhn-valid")],
        ("378282246310005",),
    ),
    Case(
        "mixed digits and words",
        [(C_, "4111 one one one one 1111 double one one one")],
        [CARD],
        [("card_number", LUHN16)],
        (V,),
    ),
    Case(
        "pairs of digits",
        [(C_, "41 11 11 11 11 11 11 11 is it")],
        ["[card number] is it"],
        [("card_number", LUHN16)],
        (V,),
    ),
    Case(
        "across two segments",
        [(C_, "it's 4111 1111"), (C_, "1111 1111 thanks")],
        ["it's [card number]", "[card number] thanks"],
        [("card_number", LUHN16)],
        (V,),
    ),
    Case(
        "across an acknowledgement",
        [(C_, "6011 1111"), (A_, "okay"), (C_, "1111 1117")],
        [CARD, "okay", CARD],
        [("card_number", LUHN16)],
        ("6011111111111117",),
    ),
    Case(
        "not Luhn-valid after card number",
        [(C_, "my card number is 4111 1111 1111 1112")],
        ["my card number is [card number]"],
        [("card_number", NOT_LUHN16)],
        ("4111111111111112",),
    ),
    Case(
        "not Luhn-valid after visa asked by the agent",
        [(A_, "is that a visa?"), (C_, "yes it is"), (C_, "4111 1111 1111 1112")],
        ["is that a visa?", "yes it is", CARD],
        [("card_number", NOT_LUHN16)],
        ("4111111111111112",),
    ),
    Case(
        "amex groups",
        [(C_, "3782 822463 10005")],
        [CARD],
        [("card_number", "15 digits, Luhn-valid")],
        ("378282246310005",),
    ),
    Case(
        "nineteen digits",
        [(C_, "number 6011 0000 0000 0000 001 ok")],
        ["number [card number] ok"],
        [("card_number", "19 digits, Luhn-valid")],
        ("6011000000000000001",),
    ),
    Case(
        "thirteen digits",
        [(C_, "it's 4222 2222 22222")],
        ["it's [card number]"],
        [("card_number", "13 digits, Luhn-valid")],
        ("4222222222222",),
    ),
    Case(
        "security code asked by the agent",
        [(A_, "and the security code?"), (C_, "it's 737")],
        ["and the security code?", "it's [security code]"],
        [("security_code", "3 digits after security-code context")],
        ("737",),
    ),
    Case(
        "cvv spelled",
        [(C_, "the CVV is seven three seven")],
        ["the CVV is [security code]"],
        [("security_code", "3 digits after security-code context")],
        ("737",),
    ),
    Case(
        "three digits on the back",
        [(A_, "what are the three digits on the back?"), (C_, "one two three")],
        ["what are the three digits on the back?", CODE],
        [("security_code", "3 digits after security-code context")],
        ("123",),
    ),
    Case(
        "four-digit cvc",
        [(C_, "CVC 7373 ok")],
        ["CVC [security code] ok"],
        [("security_code", "4 digits after security-code context")],
        ("7373",),
    ),
    Case(
        "card then code in one breath",
        [(C_, "card number 4111 1111 1111 1111 737")],
        ["card number [card number] [security code]"],
        [("card_number", LUHN16), ("security_code", "3 digits read right after a card number")],
        (V, "737"),
    ),
    Case(
        "expiry after the agent asks is not part of the card",
        [(C_, "4111 1111 1111 1111"), (A_, "and the expiry date?"), (C_, "12 25")],
        [CARD, "and the expiry date?", "12 25"],
        [("card_number", LUHN16)],
        (V,),
    ),
    Case(
        "agent talks over a visa being read",
        [(C_, "my visa is 4111 1111"), (A_, "let me pull that up"), (C_, "1111 1111")],
        ["my visa is [card number]", "let me pull that up", CARD],
        [("card_number", LUHN16)],
        (V,),
    ),
    Case(
        "oh as an interjection",
        [(C_, "Oh, okay, 4111 1111 1111 1111")],
        ["Oh, okay, [card number]"],
        [("card_number", LUHN16)],
        (V,),
    ),
    Case(
        "oh as a sentence, oh as the last zero",
        [(C_, "Oh. 6011 0000 0000 00 two oh.")],
        ["Oh. [card number]."],
        [("card_number", LUHN16)],
        ("6011000000000020",),
    ),
    Case(
        "agent reads it back",
        [(A_, "so that's 4012 8888 8888 1881, correct?")],
        ["so that's [card number], correct?"],
        [("card_number", LUHN16)],
        ("4012888888881881",),
    ),
    # Look-alikes: nothing is masked.
    Case("phone number", [(C_, "call me back at 555 123 4567")]),
    Case("phone number with country code", [(C_, "1 800 555 0199 is the number")]),
    Case("phone number spelled", [(C_, "five five five one two three four five six seven")]),
    Case("amount with cents", [(C_, "the balance is $1,250.00 today")]),
    Case("amount in words", [(C_, "one thousand two hundred fifty dollars")]),
    Case("dates", [(C_, "due 12/25/2024, that's December 25th 2024")]),
    Case("order number", [(C_, "order number 123456789012")]),
    Case("short code without context", [(C_, "the code is 123")]),
    Case("account number", [(C_, "account number 1234567890")]),
    Case("amount after security code", [(A_, "security code?"), (C_, "125 dollars")]),
    Case("long number without card context", [(C_, "tracking number 1234 5678 9012 3456")]),
    Case("times of day", [(C_, "call me at 3:30 or 9am")]),
    Case("two phone numbers", [(C_, "555 123 4567 or 555 987 6543")]),
    Case(
        # The two would join into 15 Luhn-valid digits: the agent's question keeps them apart.
        "phone then zip code",
        [(C_, "555 123 4567"), (A_, "and your zip code?"), (C_, "9 0 2 1 0")],
    ),
]


def spoken_digits(text: str) -> str:
    out, repeat = [], 1
    for word in re.findall(r"[a-z]+", text.lower()):
        if word in ("double", "triple"):
            repeat = 2 if word == "double" else 3
            continue
        out.append(SPOKEN.get(word, "") * repeat)
        repeat = 1
    return "".join(out)


def assert_no_leak(secret: str, segments: list[Segment], redactions: list[Redaction]) -> None:
    # Times are numbers that a short code can collide with by chance; everything else is searched.
    times = {"start_ms", "end_ms"}
    dump = json.dumps(
        [s.model_dump(mode="json", exclude={*times, "words"}) for s in segments]
        + [w.model_dump(mode="json", exclude=times) for s in segments for w in s.words]
        + [r.model_dump(mode="json", exclude=times) for r in redactions]
    )
    assert secret not in dump
    texts = [s.text for s in segments] + [w.text for s in segments for w in s.words]
    texts += [r.detail for r in redactions]
    pieces = {secret[i : i + 4] for i in range(len(secret) - 3)} if len(secret) > 4 else {secret}
    for number in re.findall(r"\d+", " ".join(texts)):
        assert not any(piece in number for piece in pieces), number
    assert secret not in spoken_digits(" ".join(s.text for s in segments))
    assert secret not in spoken_digits(" ".join(w.text for s in segments for w in s.words))


def test_case_data_is_what_it_claims() -> None:
    assert len(CASES) >= 25
    valid = (V, "5555555555554444", "378282246310005", "6011000000000000001", "6011000000000020")
    assert all(luhn(s) for s in valid)
    assert not luhn("4111111111111112")
    assert luhn("555123456790210")  # the phone + zip case would be a card if joined
    assert not luhn("1234567890123456")


@pytest.mark.parametrize("with_words", [True, False], ids=["words", "text-only"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_redaction_table(case: Case, with_words: bool) -> None:
    segments = build(case.lines, with_words=with_words)
    before = [s.model_copy(deep=True) for s in segments]

    out, redactions = redact_segments(segments)

    assert segments == before  # the input is not modified
    expected = case.masked or [text for _, text in case.lines]
    assert [s.text for s in out] == expected
    if with_words:
        assert [" ".join(w.text for w in s.words) for s in out] == expected
    else:
        assert all(s.words == [] for s in out)
    assert [(r.kind, r.detail) for r in redactions] == case.found
    for secret in case.secrets:
        assert_no_leak(secret, out, redactions)
    if not case.found:
        assert out == segments


def word_times(segments: list[Segment], text: str) -> list[tuple[int, int]]:
    return [(w.start_ms, w.end_ms) for s in segments for w in s.words if w.text == text]


def test_redaction_spans_the_digits_across_segments() -> None:
    segments = build([(A_, "card number please"), (C_, "it's 4111 1111"), (C_, "1111 1111 ok")])
    out, redactions = redact_segments(segments)

    first_start = segments[1].words[1].start_ms
    last_end = segments[2].words[1].end_ms
    assert [(r.start_ms, r.end_ms) for r in redactions] == [(first_start, last_end)]
    # Each segment keeps one mask word covering its own digits.
    assert word_times(out, CARD) == [
        (segments[1].words[1].start_ms, segments[1].words[2].end_ms),
        (segments[2].words[0].start_ms, segments[2].words[1].end_ms),
    ]
    assert [w.text for w in out[2].words] == [CARD, "ok"]


def test_text_only_times_follow_the_position_in_the_text() -> None:
    text = "card 4111 1111 1111 1111"
    out, redactions = redact_segments([Segment(start_ms=10_000, end_ms=12_400, text=text)])
    # 24 characters over 2400 ms: the digits run from character 5 to 24.
    assert [(r.start_ms, r.end_ms) for r in redactions] == [(10_500, 12_400)]
    assert out[0].text == "card [card number]"


def test_a_long_pause_ends_a_reading() -> None:
    def seg(start: int, text: str) -> Segment:
        return Segment(start_ms=start, end_ms=start + 2000, text=text, speaker="C")

    near = [seg(0, "4111 1111"), seg(9_000, "1111 1111")]
    far = [seg(0, "4111 1111"), seg(13_000, "1111 1111")]
    assert [r.kind for r in redact_segments(near)[1]] == ["card_number"]
    assert redact_segments(far) == (far, [])


def test_words_not_found_in_the_text_rebuild_the_text() -> None:
    # The provider formatted the text differently from its words: no digit may survive in either.
    words = [
        Word(text=group, start_ms=i * 500, end_ms=i * 500 + 400)
        for i, group in enumerate(["4111", "1111", "1111", "1111"])
    ]
    segment = Segment(start_ms=0, end_ms=2000, text="4111111111111111", words=words)
    out, redactions = redact_segments([segment])
    assert out[0].text == CARD
    assert [w.text for w in out[0].words] == [CARD]
    assert_no_leak(V, out, redactions)


def test_leading_spaces_of_words_are_kept() -> None:
    # faster-whisper words start with a space.
    raws = [" card", " number", " 4111", " 1111", " 1111", " 1111."]
    words = [Word(text=r, start_ms=i * 400, end_ms=i * 400 + 300) for i, r in enumerate(raws)]
    segment = Segment(start_ms=0, end_ms=2400, text="".join(raws), words=words)
    out, _ = redact_segments([segment])
    assert [w.text for w in out[0].words] == [" card", " number", " [card number]."]
    assert out[0].text == " card number [card number]."


def test_channels_are_speakers() -> None:
    # Stereo: the agent on channel 0 talks between the customer's halves, only saying "mm-hm".
    segments = [
        Segment(start_ms=0, end_ms=1000, text="4111 1111", channel=1),
        Segment(start_ms=1100, end_ms=1500, text="mm-hm", channel=0),
        Segment(start_ms=1600, end_ms=2600, text="1111 1111", channel=1),
    ]
    out, redactions = redact_segments(segments)
    assert [s.text for s in out] == [CARD, "mm-hm", CARD]
    assert len(redactions) == 1


def test_plain_text() -> None:
    text, kinds = redact_transcript_text("visa 4111 1111 1111 1111, cvv 123.")
    assert (text, kinds) == (
        "visa [card number], cvv [security code].",
        ["card_number", "security_code"],
    )
    assert redact_transcript_text("call 555 123 4567") == ("call 555 123 4567", [])

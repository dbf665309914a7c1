"""Calls for rule and scorecard tests: transcript builders, a small lexicon sentiment scorer (a real
SentimentScorer), CallFacts built the way the pipeline builds them, and realistic calls.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.rules.facts import CallFacts
from pipeline.rules.metrics import compute_metrics
from pipeline.rules.sentiment import sentiment_report
from schemas.analysis import Evidence, Finding, Insights, SemanticAnswer
from schemas.common import Role
from schemas.transcript import Redaction, Transcript, Utterance

A, C, U = Role.AGENT, Role.CUSTOMER, Role.UNKNOWN

LEXICON = {
    "thanks": 0.4,
    "thank": 0.4,
    "great": 0.6,
    "good": 0.4,
    "appreciate": 0.5,
    "sorted": 0.3,
    "happy": 0.6,
    "frustrating": -0.6,
    "ridiculous": -0.6,
    "unacceptable": -0.7,
    "angry": -0.7,
    "terrible": -0.8,
    "worst": -0.8,
    "never": -0.2,
    "pareshan": -0.5,  # Hindi: troubled
}


class LexiconScorer:
    """Mean of the lexicon scores of an utterance's words (0.0 when none is known)."""

    name = "test-lexicon"

    def __init__(self, lexicon: Mapping[str, float] = LEXICON) -> None:
        self.lexicon = dict(lexicon)

    def score(self, text: str) -> float:
        known = [self.lexicon[w] for w in re.findall(r"\w+", text.lower()) if w in self.lexicon]
        return round(sum(known) / len(known), 4) if known else 0.0


def utt(
    uid: str,
    role: Role,
    start: int,
    end: int,
    text: str = "okay",
    *,
    role_confidence: float = 1.0,
    confidence: float | None = None,
) -> Utterance:
    return Utterance(
        id=uid,
        speaker=role.value,
        role=role,
        role_confidence=role_confidence,
        start_ms=start,
        end_ms=end,
        text=text,
        confidence=confidence,
    )


def transcript(
    *utterances: Utterance, duration_ms: int | None = None, redactions: Sequence[Redaction] = ()
) -> Transcript:
    end = max((u.end_ms for u in utterances), default=0)
    return Transcript(
        duration_ms=end if duration_ms is None else duration_ms,
        channels=2,
        utterances=list(utterances),
        diarization="channel",
        redactions=list(redactions),
    )


def facts(
    call: Transcript,
    *,
    findings: Sequence[Finding] = (),
    insights: Insights | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> CallFacts:
    """CallFacts as the score stage builds them: real metrics and sentiment of the transcript."""
    return CallFacts(
        transcript=call,
        metrics=compute_metrics(call),
        sentiment=sentiment_report(call, LexiconScorer()),
        insights=insights,
        findings=list(findings),
        metadata=dict(metadata or {}),
    )


def insights(**answers: str) -> Insights:
    """Insights with semantic answers `id=answer` (rationale and evidence are fixed)."""
    semantic = [
        SemanticAnswer(
            id=qid,
            answer=answer,  # type: ignore[arg-type]
            rationale=f"The agent's behaviour answers '{answer}'.",
            evidence=[Evidence(utterance_id="a1", quote="…", start_ms=0, end_ms=1_000)],
        )
        for qid, answer in answers.items()
    ]
    return Insights(provider="test", semantic=semantic)


def finding(code: str, utterance: Utterance, *, severity: str = "high") -> Finding:
    evidence = Evidence(
        utterance_id=utterance.id,
        quote=utterance.text[:60],
        start_ms=utterance.start_ms,
        end_ms=utterance.end_ms,
    )
    return Finding(
        code=code, description=f"{code} detected", severity=severity, evidence=[evidence]
    )


# ---- realistic calls ------------------------------------------------------------------------


def customer_service_call() -> Transcript:
    """A billing call done well: greeting, name, verification, empathy, a polite hold, recap."""
    return transcript(
        utt("a1", A, 0, 6_000, "Good morning, thank you for calling Acme. My name is Priya."),
        utt("c1", C, 6_500, 12_000, "Hi, I was charged twice this month, it's frustrating."),
        utt("a2", A, 12_500, 20_000, "I'm sorry about that. Can you confirm your date of birth?"),
        utt("c2", C, 20_500, 23_000, "Sure, the fourth of May 1980."),
        utt("a3", A, 23_500, 31_000, "Thanks. I can see the duplicate charge on your account."),
        utt("a4", A, 31_500, 36_000, "May I place you on hold for a minute while I fix it?"),
        utt("c3", C, 36_500, 38_000, "Okay."),
        utt("a5", A, 98_000, 106_000, "Thank you for holding. I have refunded the second charge."),
        utt("c4", C, 106_500, 110_000, "Great, I appreciate it."),
        utt(
            "a6", A, 110_500, 120_000, "So to recap, the refund shows in three days. Anything else?"
        ),
        utt("c5", C, 120_500, 123_000, "No, that's all, thanks."),
        utt("a7", A, 123_500, 128_000, "Thank you for calling Acme, have a great day."),
    )


def rude_service_call() -> Transcript:
    """No greeting or name, account details before any verification, rude, no closing."""
    return transcript(
        utt("a1", A, 0, 3_000, "Yeah, what do you want?"),
        utt("c1", C, 3_500, 30_000, "I was charged twice and this is ridiculous, unacceptable."),
        utt("a2", A, 31_000, 38_000, "Your account shows two payments. Calm down, not my problem."),
        utt("c2", C, 38_500, 60_000, "I want to speak to a supervisor or I'll call my lawyer."),
        duration_ms=62_000,
    )


def debt_collection_call(*, miranda: str | None = None, threat: str | None = None) -> Transcript:
    """A compliant US collections call (the mini-Miranda as an ASR might render it)."""
    disclosure = miranda or (
        "This is an attempt to collect a dept and any information obtain will be used for that"
        " purpose."
    )
    return transcript(
        utt(
            "a1",
            A,
            0,
            5_000,
            "Hello, this is John from Delta Recovery. Am I speaking with Maria Lopez?",
        ),
        utt("c1", C, 5_500, 7_000, "Yes, this is Maria."),
        utt("a2", A, 7_500, 15_000, disclosure),
        utt(
            "a3",
            A,
            15_500,
            22_000,
            "I'm calling about your balance of 640 dollars with Metro Card, which is past due.",
        ),
        utt("c2", C, 22_500, 27_000, "I don't owe that, I paid it off last year."),
        utt(
            "a4",
            A,
            27_500,
            36_000,
            "You have the right to dispute it. I'll send you a validation notice with the details.",
        ),
        utt(
            "a5", A, 36_500, 40_000, threat or "Is there a good time to follow up after you get it?"
        ),
        utt("c3", C, 40_500, 44_000, "If it turns out I owe it, I will pay it next month."),
        utt("a6", A, 44_500, 48_000, "Thank you Maria, have a good day."),
    )


def hinglish_collections_call() -> Transcript:
    """A code-mixed Hindi-English EMI collections call: verification first, the disclosure (with
    ASR errors), a promise to pay ("kal tak kar dunga", "pakka karunga") and a PTP noted."""
    return transcript(
        utt(
            "a1",
            A,
            0,
            6_000,
            "Namaste sir, main Rahul bol raha hoon Shriram Finance se. Kya main Amit Sharma se baat kar raha hoon?",
        ),
        utt("c1", C, 6_500, 8_000, "Haan, bol raha hoon."),
        utt(
            "a2",
            A,
            8_500,
            16_000,
            "Sir this is an attempt to collect a debt and any information obtained will be use for that purpose.",
        ),
        utt(
            "a3",
            A,
            16_500,
            24_000,
            "Aapki bike loan ki EMI 4,200 rupees ki overdue hai, pichle mahine se pending amount hai.",
        ),
        utt("c2", C, 24_500, 31_000, "Haan pata hai, salary late aayi thi, thoda pareshan tha."),
        utt("a4", A, 31_500, 36_000, "Samajh sakta hoon sir. Aap payment kab tak kar sakte hain?"),
        utt("c3", C, 36_500, 42_000, "Kal tak kar dunga, pakka karunga. EMI ka paisa ready hai."),
        utt(
            "a5",
            A,
            42_500,
            48_000,
            "Theek hai sir, PTP noted for tomorrow, 4,200 rupees. Dhanyavaad.",
        ),
    )


def pci_call() -> tuple[Transcript, list[Finding]]:
    """A customer reads out a card number (redacted by the PCI detector, which also reports it)."""
    call = transcript(
        utt("a1", A, 0, 4_000, "Hello, thanks for calling, how can I help?"),
        utt(
            "c1", C, 4_500, 14_000, "I want to pay, my card is [CARD_NUMBER] and the code is [CVV]."
        ),
        utt("a2", A, 14_500, 18_000, "Please don't read card details on this line. Thank you."),
        redactions=[
            Redaction(kind="card_number", start_ms=6_000, end_ms=10_000, utterance_id="c1"),
            Redaction(kind="security_code", start_ms=11_000, end_ms=13_000, utterance_id="c1"),
        ],
    )
    c1 = call.utterances[1]
    return call, [finding("card_number", c1, severity="critical"), finding("security_code", c1)]

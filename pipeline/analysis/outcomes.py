"""Action items, the call's outcome and risk factors from phrase patterns (pure), each with evidence.

Commitments must be positive and first-person ("I'll send…", "we will call you back"); "I won't
call you back" or "I will not send" match nothing, because the verb has to follow the modal.
Compliance violations are not derived here: the rule engine evaluates tenant compliance rules.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.analysis.units import sentences, utterance_evidence
from schemas.analysis import Evidence, Finding
from schemas.common import Role
from schemas.transcript import Utterance

_I = re.IGNORECASE
_WILL = r"(?:'ll|\s+will|\s+shall|'m going to|\s+am going to|'re going to|\s+are going to|'m gonna)"
_ADVERBS = r"(?:\s+(?:also|personally|definitely|just|now|then|first|go ahead and|make sure to|try to|be able to))*"
_ACTION_VERBS = (
    r"(?:send|e-?mail|mail|call|ring|text|follow up|escalate|refund|credit|process|schedule|book|"
    r"transfer|ship|reset|update|waive|cancel|pay|get back to|reach out|submit|issue|arrange|"
    r"look into|investigate|contact|set up|have someone)"
)
COMMITMENT = re.compile(rf"\b(?:I|we){_WILL}{_ADVERBS}\s+{_ACTION_VERBS}\b", _I)
DELIVERY = re.compile(
    r"\byou(?:'ll|\s+will|\s+should)(?:\s+(?:also|then|now))?\s+(?:receive|get|see)\s+(?:a|an|the|your)\b",
    _I,
)


_THREAT = re.compile(r"\b(?:lawyers?|attorneys?|sue|police|court|BBB|regulators?)\b", _I)


@dataclass(frozen=True)
class ActionItem:
    actor: Role  # who promised: the speaker of the commitment
    text: str  # the sentence that holds it, verbatim
    utterance: Utterance

    def describe(self) -> str:
        return f"{self.actor.value.capitalize()}: {self.text}"


def action_items(utterances: Sequence[Utterance]) -> list[ActionItem]:
    """Every sentence with a positive commitment ("I'll send…", "you'll receive an email…")."""
    return [
        ActionItem(actor=u.role, text=sentence, utterance=u)
        for u in utterances
        for sentence in sentences(u.text)
        if (COMMITMENT.search(sentence) or DELIVERY.search(sentence))
        and not _THREAT.search(sentence)  # "I'll call my lawyer" is a threat, not a promise
    ]


# label → (pattern, roles whose words count). Decisive labels first: see `outcome`.
OUTCOME_PATTERNS: tuple[tuple[str, re.Pattern[str], frozenset[Role]], ...] = (
    (
        "cancelled",
        re.compile(
            r"\b(?:I've|I have|we've|we have|has been|have been|is now|is)\s+(?:now\s+)?(?:cancell?ed|closed|terminated)\b|"
            r"\bcancellation (?:is|has been) (?:complete|confirmed|processed)",
            _I,
        ),
        frozenset({Role.AGENT}),
    ),
    (
        "escalated",
        re.compile(
            rf"\b(?:I|we){_WILL}\s+(?:transfer|escalate|connect)\s+(?:you|this|your)|\blet me (?:transfer|escalate|connect)\b|"
            r"\b(?:I've|I have|has been|have been)\s+escalated\b|\btransferr?ing you to (?:my|a|the) (?:supervisor|manager|specialist)",
            _I,
        ),
        frozenset({Role.AGENT}),
    ),
    (
        "payment_promised",
        re.compile(
            r"\bI(?:'ll|\s+will|'m going to|\s+am going to|\s+can)\s+(?:\w+\s+)?(?:pay\b|make (?:a|the) payment)|\bpromise to pay\b|"
            r"\b(?:set up|scheduled|arranged)\s+(?:a|the|your)\s+payment",
            _I,
        ),
        frozenset({Role.AGENT, Role.CUSTOMER}),
    ),
    (
        "callback_scheduled",
        re.compile(
            rf"\b(?:I|we|someone|somebody|they|a technician|an agent){_WILL}{_ADVERBS}\s+(?:call|ring|phone)\s+you(?:\s+back)?\b|"
            r"\b(?:schedul\w+|book\w*|set up)\s+(?:a\s+)?call\s*back\b|\bgive you a call\b",
            _I,
        ),
        frozenset({Role.AGENT}),
    ),
    (
        "resolved",
        re.compile(
            r"\b(?:I've|I have|we've|we have)\s+(?:now\s+|just\s+|also\s+)?(?:fixed|resolved|refunded|credited|reset|updated|"
            r"changed|processed|corrected|removed|reversed|waived|sorted|added a credit)\b|"
            r"\b(?:is|it's|that's|are)\s+(?:now\s+)?(?:fixed|resolved|sorted|working(?: again| now)?)\b|\bworks now\b",
            _I,
        ),
        frozenset({Role.AGENT, Role.CUSTOMER}),
    ),
    (
        "unresolved",
        re.compile(
            r"\bstill (?:not|isn't|doesn't|don't|no)\b|\bnot (?:resolved|fixed)\b|\bnothing (?:I|we) can do\b|"
            r"\b(?:isn't|hasn't been|wasn't|haven't been) (?:resolved|fixed)\b|\b(?:can't|cannot|unable to) (?:fix|resolve)\b",
            _I,
        ),
        frozenset({Role.AGENT, Role.CUSTOMER}),
    ),
)


@dataclass(frozen=True)
class Outcome:
    label: str
    evidence: list[Evidence]


def outcome_matches(utterances: Sequence[Utterance]) -> dict[str, list[Evidence]]:
    """Evidence of every outcome label said, by label, in time order."""
    found: dict[str, list[Evidence]] = {}
    for u in utterances:
        for sentence in sentences(u.text):
            for label, pattern, roles in OUTCOME_PATTERNS:
                if u.role in roles and pattern.search(sentence):
                    found.setdefault(label, []).append(utterance_evidence(u, sentence))
    return found


def outcome(utterances: Sequence[Utterance]) -> Outcome | None:
    """cancelled, escalated, payment_promised or callback_scheduled when said (in that order of
    precedence); else resolved or unresolved, whichever was said last; None when nothing was."""
    return choose_outcome(outcome_matches(utterances))


def choose_outcome(found: dict[str, list[Evidence]]) -> Outcome | None:
    """The outcome `outcome` reports from the evidence `outcome_matches` found (also merged from
    several windows of one call)."""
    for label in ("cancelled", "escalated", "payment_promised", "callback_scheduled"):
        if label in found:
            return Outcome(label, found[label])
    final = [(ev[-1].start_ms, label) for label, ev in found.items()]
    if not final:
        return None
    label = max(final)[1]
    return Outcome(label, found[label])


@dataclass(frozen=True)
class RiskPattern:
    code: str
    description: str
    severity: str
    pattern: re.Pattern[str]
    roles: frozenset[Role]


RISK_PATTERNS: tuple[RiskPattern, ...] = (
    RiskPattern(
        "legal_threat",
        "The customer threatened legal or regulatory action",
        "high",
        re.compile(
            r"\b(?:lawyers?|attorneys?|lawsuit|legal action|small claims|BBB|better business bureau|regulators?|"
            r"ombudsman|CFPB|FCC|attorney general)\b|\b(?:to|will|'ll|gonna)\s+sue\b|\bsu(?:e|ing)\s+(?:you|your|the|them|this)\b",
            _I,
        ),
        frozenset({Role.CUSTOMER}),
    ),
    RiskPattern(
        "escalation_request",
        "The customer asked for a supervisor or an escalation",
        "medium",
        re.compile(
            r"\b(?:supervisor|manager|escalate|someone (?:higher up|more senior|in charge))\b", _I
        ),
        frozenset({Role.CUSTOMER}),
    ),
    RiskPattern(
        "cancellation_threat",
        "The customer threatened to cancel or leave",
        "medium",
        re.compile(
            r"\b(?:cancel\w*|close my account|terminate|switch(?:ing)? (?:to|providers?|companies)|"
            r"take my business elsewhere|leav(?:e|ing) (?:you|your company))\b",
            _I,
        ),
        frozenset({Role.CUSTOMER}),
    ),
)
_NEGATION = re.compile(
    r"\b(?:not|don't|do not|won't|never|no need to|didn't)\b(?:\s+\w+){0,2}\s*$", _I
)
MAX_EVIDENCE = 3


def _hits(
    pattern: re.Pattern[str], roles: frozenset[Role] | None, utterances: Sequence[Utterance]
) -> list[Evidence]:
    """Evidence for each sentence where `pattern` matches, not right after a negation
    ("I don't want to cancel")."""
    found: list[Evidence] = []
    for u in utterances:
        if roles is not None and u.role not in roles:
            continue
        for sentence in sentences(u.text):
            match = pattern.search(sentence)
            if match and not _NEGATION.search(sentence[: match.start()]):
                found.append(utterance_evidence(u, sentence))
    return found


def risk_order(triggers: Sequence[str] = ()) -> list[str]:
    """The descriptions of the findings `risk_factors` can report, in the order it reports them."""
    phrases = dict.fromkeys(t.strip() for t in triggers if t.strip())
    return [r.description for r in RISK_PATTERNS] + [_trigger_description(p) for p in phrases]


def _trigger_description(phrase: str) -> str:
    return f"Risk trigger phrase: {phrase!r}"


def risk_factors(utterances: Sequence[Utterance], *, triggers: Sequence[str] = ()) -> list[Finding]:
    """Legal threats, escalation requests and cancellation threats by the customer, and the
    tenant's `risk_triggers` phrases said by anyone: one Finding per kind, at most 3 quotes each."""
    findings: list[Finding] = []
    for risk in RISK_PATTERNS:
        hits = _hits(risk.pattern, risk.roles, utterances)
        if hits:
            findings.append(
                Finding(
                    code=risk.code,
                    description=risk.description,
                    severity=risk.severity,
                    evidence=hits[:MAX_EVIDENCE],
                )
            )
    for phrase in dict.fromkeys(t.strip() for t in triggers if t.strip()):
        words = r"\s+".join(map(re.escape, phrase.split()))
        hits = _hits(re.compile(rf"(?<!\w){words}(?!\w)", _I), None, utterances)
        if hits:
            description = _trigger_description(phrase)
            findings.append(
                Finding(code="risk_trigger", description=description, evidence=hits[:MAX_EVIDENCE])
            )
    return findings

"""Risk score 0-100 of a call, with the factors behind it (each a Finding with evidence).

Weights (summed, capped at 100):
  compliance breach       per failed compliance item or uncovered finding, by severity:
                          low 5, medium 10, high 20, critical 35
  analyzer risk factor    per insights.risk_factors code, by its severity (as above)
  customer sentiment      start→end change ≤ -0.3: 15
  legal threat language   20 (once);  escalation language: 10 (once)
  tenant risk trigger     10 per distinct phrase said (ClientContext.risk_triggers)
  auto-fail               20
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pipeline.rules.facts import CallFacts, number, window_bounds
from pipeline.rules.phrases import Hit, compiled, phrase_hits
from pipeline.rules.validation import walk
from schemas.analysis import Finding
from schemas.common import Role
from schemas.rules import FindingRule, PhraseRule
from schemas.scorecard import ItemScore, Risk, Scorecard

SEVERITY_POINTS = {"low": 5, "medium": 10, "high": 20, "critical": 35}
NEGATIVE_TREND_MAX = -0.3
NEGATIVE_TREND_POINTS = 15
LEGAL_POINTS = 20
ESCALATION_POINTS = 10
TRIGGER_POINTS = 10
AUTO_FAIL_POINTS = 20
MAX_SCORE = 100

LEGAL_LEXICON = (
    "lawyer",
    "attorney",
    "sue",
    "lawsuit",
    "legal action",
    "take you to court",
    "consumer court",
    "cfpb",
    "ombudsman",
    "police complaint",
)
ESCALATION_LEXICON = (
    "supervisor",
    "manager",
    "escalate",
    "file a complaint",
    "cancel my account",
    "close my account",
    "unacceptable",
    "senior se baat",
)


def _points(finding: Finding) -> int:
    return SEVERITY_POINTS.get(finding.severity, SEVERITY_POINTS["medium"])


def _covered_codes(card: Scorecard) -> set[str]:
    """Finding codes some item of the card judges (it speaks for them: no double count)."""
    return {
        code
        for section in card.sections
        for item in section.items
        for rule in walk(item.evaluator)
        if isinstance(rule, FindingRule)
        for code in rule.codes
    }


def _breaches(card: Scorecard, facts: CallFacts, items: Iterable[ItemScore]) -> list[Finding]:
    failed = [
        Finding(
            code=f"item:{i.id}",
            description=f"{i.label}: {i.rationale}",
            severity=i.severity,
            evidence=i.evidence,
        )
        for i in items
        if i.compliance and i.failed
    ]
    covered = _covered_codes(card)
    return failed + [f for f in facts.findings if f.code not in covered]


def _said(facts: CallFacts, phrases: Sequence[str]) -> list[Hit]:
    """Hits by anyone but the agent (agents say "let me get my supervisor")."""
    rule = PhraseRule(type="phrase", phrases=list(phrases))
    heard = [u for u in facts.utterances if u.role != Role.AGENT]
    return phrase_hits(rule, heard, window_bounds(None, facts.duration_ms))


def _language(facts: CallFacts, code: str, lexicon: Sequence[str], severity: str) -> list[Finding]:
    hits = _said(facts, lexicon)
    if not hits:
        return []
    heard = [h.utterance.text for h in hits]
    words = [w for w in lexicon if any(compiled(w, regex=False).search(t) for t in heard)]
    return [
        Finding(
            code=code,
            description=f"Customer language: {', '.join(repr(w) for w in words)}.",
            severity=severity,
            evidence=[h.evidence() for h in hits[:3]],
        )
    ]


def _sentiment(facts: CallFacts) -> list[Finding]:
    change = facts.sentiment.start_to_end.get(Role.CUSTOMER)
    if change is None or change > NEGATIVE_TREND_MAX:
        return []
    description = f"Customer sentiment fell by {number(-change)} from start to end."
    return [Finding(code="negative_sentiment_trend", description=description, severity="medium")]


def _triggers(facts: CallFacts, triggers: Sequence[str]) -> list[Finding]:
    found: list[Finding] = []
    for trigger in dict.fromkeys(t for t in triggers if t.strip()):
        rule = PhraseRule(type="phrase", phrases=[trigger])
        hits = phrase_hits(rule, facts.utterances, window_bounds(None, facts.duration_ms))
        if hits:
            found.append(
                Finding(
                    code="risk_trigger",
                    description=f"Tenant risk trigger '{trigger}' was said.",
                    evidence=[h.evidence() for h in hits[:3]],
                )
            )
    return found


def assess_risk(
    card: Scorecard,
    facts: CallFacts,
    items: Sequence[ItemScore],
    *,
    risk_triggers: Sequence[str] = (),
    auto_failed: bool = False,
) -> Risk:
    """The call's risk score and its factors (see the module docstring for the weights)."""
    weighted: list[tuple[int, Finding]] = [(_points(f), f) for f in _breaches(card, facts, items)]
    seen = {f.code for _, f in weighted}
    analyzer = facts.insights.risk_factors if facts.insights else []
    weighted += [(_points(f), f) for f in analyzer if f.code not in seen]
    weighted += [(NEGATIVE_TREND_POINTS, f) for f in _sentiment(facts)]
    weighted += [(LEGAL_POINTS, f) for f in _language(facts, "legal_threat", LEGAL_LEXICON, "high")]
    weighted += [
        (ESCALATION_POINTS, f) for f in _language(facts, "escalation", ESCALATION_LEXICON, "medium")
    ]
    weighted += [(TRIGGER_POINTS, f) for f in _triggers(facts, risk_triggers)]
    if auto_failed:
        auto = Finding(code="auto_fail", description="The scorecard auto-failed.", severity="high")
        weighted.append((AUTO_FAIL_POINTS, auto))
    total = min(MAX_SCORE, sum(points for points, _ in weighted))
    return Risk(score=total, factors=[f for _, f in weighted])

"""Risk score: each factor with its documented weight, no double counting, the cap at 100."""

from __future__ import annotations

from pipeline.rules import risk
from pipeline.rules.packs import load_pack
from pipeline.rules.scorecard import evaluate
from schemas.analysis import Finding, Insights
from schemas.scorecard import Risk
from tests.support.calls import A, C, customer_service_call, facts, finding, transcript, utt


def factors(artifact_risk: Risk) -> list[str]:
    return [f.code for f in artifact_risk.factors]


def test_a_clean_call_has_no_risk() -> None:
    artifact = evaluate(load_pack("customer_service"), facts(customer_service_call()))

    assert (artifact.risk.score, artifact.risk.factors) == (0, [])


def test_language_sentiment_and_tenant_triggers() -> None:
    call = facts(
        transcript(
            utt("c1", C, 0, 10_000, "Thanks, good morning."),
            utt(
                "a1", A, 10_500, 14_000, "Let me ask my supervisor about the refund."
            ),  # agents may
            utt(
                "c2",
                C,
                40_000,
                50_000,
                "This is unacceptable, I'll call my lawyer and cancel my account.",
            ),
        )
    )

    artifact = evaluate(
        load_pack("customer_service"), call, risk_triggers=["cancel my account", "chargeback"]
    )

    by_code = {f.code: f for f in artifact.risk.factors}
    assert set(by_code) >= {
        "negative_sentiment_trend",
        "legal_threat",
        "escalation",
        "risk_trigger",
    }
    assert [e.utterance_id for e in by_code["legal_threat"].evidence] == ["c2"]
    assert (
        by_code["escalation"].description
        == "Customer language: 'cancel my account', 'unacceptable'."
    )
    language = 15 + 20 + 10 + 10
    breaches = sum(
        risk.SEVERITY_POINTS[f.severity]
        for f in artifact.risk.factors
        if f.code.startswith("item:")
    )
    assert artifact.risk.score == min(100, language + breaches)


def test_findings_count_once_and_covered_codes_are_left_to_the_card() -> None:
    call = transcript(
        utt("a1", A, 0, 3_000, "Hello."), utt("c1", C, 3_000, 9_000, "My card is [CARD].")
    )
    c1 = call.utterances[1]
    found = [
        finding("card_number", c1, severity="critical"),
        finding("calling_hours", c1, severity="high"),
    ]
    analyzer = Insights(
        provider="t",
        risk_factors=[
            Finding(code="calling_hours", description="again", severity="high"),
            Finding(code="churn", description="wants to leave", severity="low"),
        ],
    )

    artifact = evaluate(load_pack("pci"), facts(call, findings=found, insights=analyzer))

    assert factors(artifact.risk) == [
        "item:no_card_data_spoken",
        "calling_hours",
        "churn",
        "auto_fail",
    ]
    assert artifact.risk.score == 35 + 20 + 5 + 20


def test_the_score_is_capped_at_100() -> None:
    call = transcript(utt("a1", A, 0, 3_000, "Hello."))
    many = [finding(f"v{n}", call.utterances[0], severity="critical") for n in range(4)]

    artifact = evaluate(load_pack("customer_service"), facts(call, findings=many))

    assert artifact.risk.score == 100
    assert len(artifact.risk.factors) >= 4

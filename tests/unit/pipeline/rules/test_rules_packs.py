"""Shipped packs on realistic calls (incl. a Hinglish collections call), and which card a tenant's
call is scored on."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.errors import InvalidInput
from pipeline.rules.packs import compose_packs, list_packs, load_pack, resolve_scorecard
from pipeline.rules.scorecard import evaluate, semantic_questions
from schemas.scorecard import ScoreArtifact
from schemas.tenant import TenantConfig
from tests.support.calls import (
    customer_service_call,
    debt_collection_call,
    facts,
    finding,
    hinglish_collections_call,
    pci_call,
    rude_service_call,
)


def answers(artifact: ScoreArtifact) -> dict[str, str]:
    return {i.id: i.answer for s in artifact.sections for i in s.items}


def test_shipped_packs_load_and_ask_no_semantic_questions() -> None:
    assert list_packs() == ("customer_service", "debt_collection", "pci")
    for name in list_packs():
        pack = load_pack(name)
        assert (pack.id, pack.version) == (name, 1)
        assert semantic_questions(pack) == []  # they run without an analyzer
    assert load_pack("pci") is load_pack("pci")  # cached


def test_unknown_pack() -> None:
    with pytest.raises(InvalidInput, match="unknown scorecard pack 'sales'") as raised:
        load_pack("sales")
    assert raised.value.code == "invalid_scorecard"


# ---- customer service -----------------------------------------------------------------------


def test_customer_service_pack_on_a_good_call() -> None:
    artifact = evaluate(load_pack("customer_service"), facts(customer_service_call()))

    assert set(answers(artifact).values()) == {"yes"}
    assert (artifact.normalized, artifact.band, artifact.compliance_score) == (
        1.0,
        "excellent",
        1.0,
    )
    items = {i.id: i for s in artifact.sections for i in s.items}
    assert [e.utterance_id for e in items["verify_before_account"].evidence] == ["a2", "a3"]
    assert [e.utterance_id for e in items["hold_etiquette"].evidence] == ["a4", "a5"]


def test_customer_service_pack_on_a_rude_call() -> None:
    artifact = evaluate(load_pack("customer_service"), facts(rude_service_call()))

    assert answers(artifact) == {
        "greeting": "no",
        "agent_name": "no",
        "verify_before_account": "no",  # "your account" before any verification
        "empathy": "no",
        "hold_etiquette": "na",  # no hold
        "no_rude_language": "no",
        "recap": "no",
        "offer_further_help": "no",
        "closing_thanks": "no",
    }
    assert (artifact.normalized, artifact.band, artifact.compliance_score) == (0.0, "poor", 0.0)
    assert artifact.risk.score > 50


# ---- debt collection -------------------------------------------------------------------------

COMPLIANT_DEBT = {
    "right_party_verification": "yes",
    "mini_miranda": "yes",
    "no_threats_or_abuse": "yes",
    "dispute_handling": "yes",
    "within_7_in_7": "yes",
    "within_calling_hours": "yes",
    "promise_to_pay": "yes",
}


def test_debt_collection_pack_on_a_compliant_call_with_asr_errors() -> None:
    artifact = evaluate(load_pack("debt_collection"), facts(debt_collection_call()))

    assert answers(artifact) == COMPLIANT_DEBT
    assert (artifact.normalized, artifact.auto_failed, artifact.risk.score) == (1.0, False, 0)


@pytest.mark.parametrize(
    ("change", "item"),
    [
        ({"miranda": "I'm calling from Delta Recovery about an account."}, "mini_miranda"),
        (
            {"threat": "If you don't pay we will garnish your wages by tomorrow."},
            "no_threats_or_abuse",
        ),
        (
            {"threat": "Pay now or the police will come and you could go to jail."},
            "no_threats_or_abuse",
        ),
    ],
)
def test_debt_collection_auto_fails(change: dict[str, Any], item: str) -> None:
    artifact = evaluate(load_pack("debt_collection"), facts(debt_collection_call(**change)))

    assert answers(artifact)[item] == "no"
    assert (artifact.auto_failed, artifact.auto_failed_items, artifact.band) == (
        True,
        [item],
        "fail",
    )


def test_debt_collection_cross_call_findings() -> None:
    call = debt_collection_call()
    found = [
        finding("reg_f_7_in_7", call.utterances[0]),
        finding("calling_hours", call.utterances[0]),
    ]

    artifact = evaluate(load_pack("debt_collection"), facts(call, findings=found))

    assert {k: v for k, v in answers(artifact).items() if k.startswith("within")} == {
        "within_7_in_7": "no",
        "within_calling_hours": "no",
    }
    assert artifact.auto_failed is False
    assert artifact.compliance_score == pytest.approx(10 / 12, abs=1e-4)
    assert {f.code for f in artifact.risk.factors} == {
        "item:within_7_in_7",
        "item:within_calling_hours",
    }


def test_hinglish_collections_call_scored_by_the_debt_pack() -> None:
    artifact = evaluate(load_pack("debt_collection"), facts(hinglish_collections_call()))

    assert answers(artifact) == {**COMPLIANT_DEBT, "dispute_handling": "na"}
    items = {i.id: i for s in artifact.sections for i in s.items}
    assert items["right_party_verification"].rationale.startswith(
        "Agent said 'se baat kar raha' at 0:00 (first)."
    )
    assert (
        items["promise_to_pay"].rationale
        == "Customer said 'kal tak kar dunga' at 0:36. Agent said 'ptp' at 0:42."
    )
    assert [e.utterance_id for e in items["promise_to_pay"].evidence] == ["c3", "a5"]
    assert "99% match" in items["mini_miranda"].rationale  # "will be use for that purpose"
    assert (artifact.normalized, artifact.band, artifact.auto_failed) == (1.0, "excellent", False)


# ---- pci -------------------------------------------------------------------------------------


def test_pci_pack_fails_a_call_with_card_data() -> None:
    call, found = pci_call()

    spoken = evaluate(load_pack("pci"), facts(call, findings=found))
    clean = evaluate(load_pack("pci"), facts(call))

    assert answers(spoken) == {"no_card_data_spoken": "no"}
    assert (spoken.auto_failed, spoken.band, spoken.compliance_score) == (True, "fail", 0.0)
    item = spoken.sections[0].items[0]
    assert (item.severity, item.compliance, item.auto_fail) == ("critical", True, "card")
    assert [e.utterance_id for e in item.evidence] == ["c1", "c1"]
    assert (clean.auto_failed, clean.band) == (False, "pass")


# ---- which card ------------------------------------------------------------------------------


def tenant_card(card_id: str, **options: Any) -> dict[str, Any]:
    item = {
        "id": f"{card_id}_hi",
        "label": "hi",
        "evaluator": {"type": "phrase", "phrases": ["hi"]},
    }
    return {
        "id": card_id,
        "version": 1,
        "name": card_id,
        "sections": [{"id": "s", "label": "S", "items": [item]}],
        **options,
    }


@pytest.mark.parametrize(
    ("config", "call_type", "expected"),
    [
        (
            {
                "scorecards": {"sales": tenant_card("sales"), "default": tenant_card("d")},
                "packs": ["pci"],
            },
            "sales",
            "sales",
        ),
        (
            {"scorecards": {"x": tenant_card("renewals", call_types=["renewal"])}},
            "renewal",
            "renewals",
        ),
        (
            {"scorecards": {"sales": tenant_card("sales"), "default": tenant_card("d")}},
            "support",
            "d",
        ),
        ({"scorecards": {"default": tenant_card("d")}, "packs": ["pci"]}, None, "d"),
        ({"scorecards": {"sales": tenant_card("sales")}, "packs": ["pci"]}, "support", "pci"),
        ({"packs": ["debt_collection", "pci"]}, "collections", "packs:debt_collection+pci"),
        ({}, "anything", "customer_service"),
        ({}, None, "customer_service"),
    ],
)
def test_resolve_scorecard_precedence(
    config: dict[str, Any], call_type: str | None, expected: str
) -> None:
    card = resolve_scorecard(TenantConfig.model_validate(config), call_type=call_type)

    assert card.id == expected


def test_composed_packs_keep_every_section_under_its_pack() -> None:
    card = compose_packs(["customer_service", "pci", "customer_service"])

    assert (card.id, card.version) == ("packs:customer_service+pci", 2)
    assert [s.id for s in card.sections][-2:] == ["customer_service.closing", "pci.pci"]
    assert compose_packs(["pci"]) is load_pack("pci")


def test_a_tenant_card_is_validated_when_resolved() -> None:
    bad = tenant_card("d")
    bad["sections"][0]["items"][0]["evaluator"] = {
        "type": "metric",
        "path": "by_role.agent.talk",
        "max": 1,
    }

    with pytest.raises(InvalidInput, match=r"sections\[0\].items\[0\].evaluator: unknown metric"):
        resolve_scorecard(
            TenantConfig.model_validate({"scorecards": {"default": bad}}), call_type=None
        )

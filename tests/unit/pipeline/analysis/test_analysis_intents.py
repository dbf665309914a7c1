"""Intents by exemplar similarity: the pure scoring on hand-made vectors, and the measured accuracy
of the default taxonomy with the real bundled model on a labelled set."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.analysis import intents
from pipeline.analysis.taxonomy import default_taxonomy
from pipeline.analysis.taxonomy import taxonomy as taxonomy_for
from pipeline.analysis.units import text_units
from schemas.common import Role
from schemas.tenant import ClientContext, IntentDef
from tests.support.analysis_calls import shared_analyzer, transcript_from_lines
from tests.support.analysis_labels import LABELLED_INTENTS


def _unit(*values: float) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_default_taxonomy_is_the_call_center_one() -> None:
    names = [i.name for i in default_taxonomy()]
    assert {
        "billing_question",
        "payment_arrangement",
        "cancel_service",
        "technical_support",
        "complaint",
        "account_update",
        "order_status",
        "sales_inquiry",
    } <= set(names)
    assert all(3 <= len(i.examples) <= 5 for i in default_taxonomy())


def test_tenant_intents_replace_the_default_and_fall_back_to_description_or_name() -> None:
    context = ClientContext(
        intents=[
            IntentDef(name="loan_payoff", examples=["How much to pay off my loan?"]),
            IntentDef(name="card_lost", description="Reporting a lost card"),
            IntentDef(name="fraud_alert"),
        ]
    )
    taxonomy = taxonomy_for(context)
    assert [i.name for i in taxonomy] == ["loan_payoff", "card_lost", "fraud_alert"]
    assert intents.exemplars(taxonomy) == (
        ["How much to pay off my loan?", "Reporting a lost card", "fraud alert"],
        [0, 1, 2],
    )
    assert taxonomy_for(ClientContext()) == default_taxonomy()


def test_scores_use_the_mean_of_an_intents_two_best_exemplars() -> None:
    exemplar_vectors = np.stack([_unit(1, 0, 0), _unit(1, 1, 0), _unit(0, 0, 1), _unit(0, 1, 0)])
    scores = intents.intent_scores(np.stack([_unit(1, 0, 0)]), exemplar_vectors, [0, 0, 0, 1])
    assert scores.shape == (1, 2)
    assert scores[0, 0] == pytest.approx((1.0 + 0.7071) / 2, abs=1e-3)  # 0.0 (third) is not counted
    assert scores[0, 1] == pytest.approx(0.0)


def test_calibration_is_linear_between_floor_and_ceiling_and_clipped() -> None:
    assert intents.calibrate(0.1) == 0.0
    assert intents.calibrate(0.5) == pytest.approx(0.5)
    assert intents.calibrate(0.9) == 1.0


def test_detection_is_multi_label_above_threshold_within_margin_strongest_first() -> None:
    scores = np.array([[0.70, 0.10, 0.50, 0.41], [0.20, 0.30, 0.60, 0.20]], dtype=np.float32)
    found = intents.detect_intents(scores, ["a", "b", "c", "d"], threshold=0.42, margin=0.15)
    assert [(m.name, m.unit) for m in found] == [("a", 0), ("c", 1)]  # d: under the threshold
    assert found[0].confidence == intents.calibrate(0.70)
    assert intents.detect_intents(scores, ["a", "b", "c", "d"], margin=0.05)[0].name == "a"
    assert len(intents.detect_intents(scores, ["a", "b", "c", "d"], margin=0.05)) == 1
    assert intents.detect_intents(np.zeros((0, 4), dtype=np.float32), ["a", "b", "c", "d"]) == []


def test_intents_are_read_from_customer_units_of_three_words_or_more() -> None:
    transcript = transcript_from_lines(
        [
            (Role.AGENT, "I want to cancel my service."),
            (Role.CUSTOMER, "Okay."),
            (Role.CUSTOMER, "My bill is wrong."),
        ]
    )
    units = text_units(transcript.utterances)
    assert [units[i].text for i in intents.intent_units(units)] == ["My bill is wrong."]


def test_measured_accuracy_on_the_labelled_set() -> None:
    analyzer = shared_analyzer()
    taxonomy = default_taxonomy()
    texts, owners = intents.exemplars(taxonomy)
    scores = intents.intent_scores(
        analyzer.embed([t for t, _ in LABELLED_INTENTS]), analyzer.embed(texts), owners
    )
    predicted = intents.classify(scores, [i.name for i in taxonomy])
    correct = sum(p == label for p, (_, label) in zip(predicted, LABELLED_INTENTS, strict=True))
    labels = {label for _, label in LABELLED_INTENTS}
    print(f"\nintent accuracy: {correct}/{len(LABELLED_INTENTS)} over {len(labels)} intents")
    assert len(LABELLED_INTENTS) >= 20 and len(labels) >= 6
    assert correct >= 27  # measured 28/30


def test_acknowledgements_carry_no_intent() -> None:
    analyzer = shared_analyzer()
    taxonomy = default_taxonomy()
    texts, owners = intents.exemplars(taxonomy)
    small_talk = [
        "Okay, thank you",
        "Yes that's right",
        "Jane Porter, 12 Elm Street.",
        "Sure, it's 4 4 1 9 0 2.",
        "No, that's everything. Thanks for your help.",
    ]
    scores = intents.intent_scores(analyzer.embed(small_talk), analyzer.embed(texts), owners)
    assert intents.detect_intents(scores, [i.name for i in taxonomy]) == []

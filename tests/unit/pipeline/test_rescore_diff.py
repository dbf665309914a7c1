"""What a rescore reports: per-item changes between two scores of the same call."""

from __future__ import annotations

from schemas.scorecard import ItemScore, ScoreArtifact, SectionScore


def card(card_id: str, items: dict[str, tuple[str, float]]) -> ScoreArtifact:
    scored = [
        ItemScore(id=i, label=i, answer=a, points=p, potential=1, rationale="")
        for i, (a, p) in items.items()
    ]
    section = SectionScore(id="s", label="s", score=0, potential=0, normalized=None, items=scored)
    return ScoreArtifact(
        scorecard_id=card_id,
        scorecard_version=1,
        score=0,
        potential=0,
        normalized=None,
        sections=[section],
    )


def test_changed_added_and_removed_items_are_reported_and_unchanged_ones_are_not() -> None:
    from pipeline.rescore import diff, summary

    old = card("a", {"greeting": ("yes", 1), "recap": ("no", 0), "gone": ("yes", 1)})
    new = card("b", {"greeting": ("yes", 1), "recap": ("yes", 1), "mini_miranda": ("no", 0)})
    changes = {c.item_id: c for c in diff(old, new)}
    assert set(changes) == {"recap", "mini_miranda", "gone"}
    assert (changes["recap"].change, changes["recap"].old_answer, changes["recap"].new_answer) == (
        "changed",
        "no",
        "yes",
    )
    assert changes["mini_miranda"].change == "added" and changes["gone"].change == "removed"
    assert summary(new).scorecard == "b@1"

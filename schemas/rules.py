"""Rule trees a scorecard item is judged by: phrase, sentiment, interruption, non-talk, metric,
semantic and finding rules, combined with any_of / all_of / when / order. Tenant-authored: strict.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from schemas.common import Role, Strict

RoleOrAny = Role | Literal["any"]


class Window(Strict):
    """Part of the call a rule looks at: the first/last `seconds`, or the first/last `percent`.

    An utterance is in the window when any part of it is (edges included).
    """

    anchor: Literal["first", "last"]
    seconds: float | None = Field(default=None, gt=0)
    percent: float | None = Field(default=None, gt=0, le=100)

    @model_validator(mode="after")
    def _one_size(self) -> Window:
        if (self.seconds is None) == (self.percent is None):
            raise ValueError("a window needs exactly one of seconds or percent")
        return self


class _Base(Strict):
    negate: bool = False  # the rule holds when its condition is absent (N/A stays N/A)


class PhraseRule(_Base):
    """Any of `phrases` said by `role` (in `window`).

    exact: case-insensitive and word-bounded; punctuation between the words is ignored.
    regex: each phrase is a Python regex searched case-insensitively.
    fuzzy: word-window similarity ≥ `threshold` (difflib ratio), tolerant to ASR errors.
    """

    type: Literal["phrase"]
    phrases: list[str] = Field(min_length=1)
    match: Literal["exact", "regex", "fuzzy"] = "exact"
    threshold: float = Field(default=0.85, gt=0, le=1)
    role: RoleOrAny = "any"
    window: Window | None = None


class SentimentRule(_Base):
    """`role`'s mean sentiment in `window` (measure=mean) or its start→end change (measure=change)
    within [min, max]."""

    type: Literal["sentiment"]
    role: RoleOrAny = Role.CUSTOMER
    measure: Literal["mean", "change"] = "mean"
    window: Window | None = None
    min: float | None = None
    max: float | None = None


class InterruptionRule(_Base):
    """`role` interrupted more than `above` times (metrics.by_role[role].interruptions)."""

    type: Literal["interruption"]
    role: Role = Role.AGENT
    above: int = Field(default=0, ge=0)


class NonTalkRule(_Base):
    """At least `count` silences of `min_gap_ms` or more, or total silence share above `share`."""

    type: Literal["non_talk"]
    min_gap_ms: int | None = Field(default=None, gt=0)
    count: int = Field(default=1, ge=1)
    share: float | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="after")
    def _one_measure(self) -> NonTalkRule:
        if (self.min_gap_ms is None) == (self.share is None):
            raise ValueError("a non_talk rule needs exactly one of min_gap_ms or share")
        return self


class MetricRule(_Base):
    """A CallMetrics value at dotted `path` (e.g. "by_role.agent.talk_ratio") within [min, max]."""

    type: Literal["metric"]
    path: str
    min: float | None = None
    max: float | None = None


class SemanticRule(_Base):
    """A yes/no question the analyzer answers (insights.semantic, matched by `id`)."""

    type: Literal["semantic"]
    id: str = Field(min_length=1, max_length=80)
    question: str = Field(min_length=1)
    role: RoleOrAny = "any"


class FindingRule(_Base):
    """A finding (violation or risk factor found by others) with one of `codes` exists."""

    type: Literal["finding"]
    codes: list[str] = Field(min_length=1)


class AnyOf(_Base):
    """Holds when any child holds; N/A children are ignored; all N/A → N/A."""

    type: Literal["any_of"]
    rules: list[Rule] = Field(min_length=1)


class AllOf(_Base):
    """Holds when no child fails and one holds; N/A children are ignored; all N/A → N/A."""

    type: Literal["all_of"]
    rules: list[Rule] = Field(min_length=1)


class When(_Base):
    """`then`, judged only when `condition` holds (N/A otherwise): 'if a hold happened, …'."""

    type: Literal["when"]
    condition: Rule
    then: Rule


class Order(_Base):
    """`first` is found before the first hit of `then` (N/A when `then` never happens)."""

    type: Literal["order"]
    first: Rule
    then: Rule


Rule = Annotated[
    PhraseRule
    | SentimentRule
    | InterruptionRule
    | NonTalkRule
    | MetricRule
    | SemanticRule
    | FindingRule
    | AnyOf
    | AllOf
    | When
    | Order,
    Field(discriminator="type"),
]

for _model in (AnyOf, AllOf, When, Order):
    _model.model_rebuild()

"""Scorecard packs shipped with the project (pipeline/rules/packs/*.json), and which card a tenant's
call is scored on: its card for the call type, its default card, its enabled packs, or ours.
"""

from __future__ import annotations

import functools
from importlib import resources

from pipeline.errors import InvalidInput
from pipeline.rules.scorecard import INVALID_SCORECARD, parse_scorecard, validate_scorecard
from schemas.scorecard import Scorecard
from schemas.tenant import TenantConfig

FALLBACK_PACK = "customer_service"
DEFAULT_KEY = "default"


def _pack_dir() -> resources.abc.Traversable:
    return resources.files("pipeline.rules").joinpath("packs")


@functools.cache
def list_packs() -> tuple[str, ...]:
    """Names of the shipped packs, sorted."""
    return tuple(
        sorted(
            p.name.removesuffix(".json") for p in _pack_dir().iterdir() if p.name.endswith(".json")
        )
    )


@functools.cache
def load_pack(name: str) -> Scorecard:
    """The shipped pack `name`, validated once per process; callers must not mutate it.

    Raises InvalidInput(code="invalid_scorecard") for a name that is not shipped.
    """
    if name not in list_packs():
        raise InvalidInput(
            f"unknown scorecard pack {name!r} (shipped: {', '.join(list_packs())})",
            code=INVALID_SCORECARD,
        )
    return parse_scorecard(_pack_dir().joinpath(f"{name}.json").read_text("utf-8"))


def compose_packs(names: list[str]) -> Scorecard:
    """One card holding the sections of the packs `names`, in order (duplicates dropped).

    id "packs:<a>+<b>", version the sum of the packs' versions (stable while they are), section
    ids prefixed "<pack>." (packs may share them), the first pack's bands and review policy.
    """
    unique = list(dict.fromkeys(names))
    packs = [load_pack(name) for name in unique]
    if len(packs) == 1:
        return packs[0]
    card = Scorecard(
        id="packs:" + "+".join(unique),
        version=sum(p.version for p in packs),
        name=" + ".join(p.name for p in packs),
        sections=[
            section.model_copy(update={"id": f"{p.id}.{section.id}"})
            for p in packs
            for section in p.sections
        ],
        bands=packs[0].bands,
        review=packs[0].review,
    )
    validate_scorecard(card)  # packs must not share section or item ids
    return card


def resolve_scorecard(config: TenantConfig, *, call_type: str | None) -> Scorecard:
    """The card a call is scored on, first found: the tenant's card keyed by `call_type`, a tenant
    card listing `call_type` in its call_types, the tenant's "default" card, the enabled packs
    composed, the customer-service pack. Raises InvalidInput for an unusable card or pack."""
    cards = config.scorecards
    card = cards.get(call_type) if call_type else None
    if card is None and call_type:
        card = next((c for c in cards.values() if call_type in c.call_types), None)
    card = card or cards.get(DEFAULT_KEY)
    if card is not None:
        validate_scorecard(card)
        return card
    if config.packs:
        return compose_packs(config.packs)
    return load_pack(FALLBACK_PACK)

"""The intent taxonomy a call is classified against: the tenant's, else the built-in one.

Plain data (no model code), so the LLM prompt and the local analyzer share one list.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from schemas.tenant import ClientContext, IntentDef


@cache
def default_taxonomy() -> tuple[IntentDef, ...]:
    """The built-in call-center taxonomy (billing_question, cancel_service, …)."""
    raw = resources.files("pipeline.analysis").joinpath("default_intents.json").read_text()
    return tuple(IntentDef.model_validate(item) for item in json.loads(raw))


def taxonomy(context: ClientContext) -> tuple[IntentDef, ...]:
    return tuple(context.intents) if context.intents else default_taxonomy()

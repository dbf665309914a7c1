"""resolve_options pins `analysis_mode="batch"` only for batch items of a tenant that opted into
Gemini's Batch API and whose analyzer is Gemini; one-off jobs and other analyzers never get it."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.db.batch_models import Batch
from pipeline.settings import Settings
from pipeline.submission import Submitter, resolve_options
from schemas.api import JobOptionsIn
from schemas.common import InputKind


def submitter(**config: Any) -> Submitter:
    return Submitter.of("ten_x", config, 3)


def batch() -> Batch:
    return Batch(id="bat_x", tenant_id="ten_x", name="night", meta={}, channel_map=None)


def mode(settings: Settings, who: Submitter, *, in_batch: bool) -> str | None:
    options = resolve_options(
        settings,
        who,
        JobOptionsIn(),
        kind=InputKind.TRANSCRIPT,
        batch=batch() if in_batch else None,
    )
    return options.analysis_mode


OPTED_IN = {"batches": {"gemini_batch": True}, "providers": {"analyzer": "gemini"}}


def test_a_batch_item_of_an_opted_in_gemini_tenant_is_pinned_to_batch_mode() -> None:
    options = resolve_options(
        Settings(), submitter(**OPTED_IN), JobOptionsIn(), kind=InputKind.TRANSCRIPT, batch=batch()
    )
    assert (options.analyzer, options.analysis_mode) == ("gemini", "batch")
    # Pinned in the envelope: it survives the queue and any re-drive.
    assert options.model_dump(mode="json")["analysis_mode"] == "batch"


def test_one_off_jobs_of_the_same_tenant_stay_synchronous() -> None:
    assert mode(Settings(), submitter(**OPTED_IN), in_batch=False) is None


@pytest.mark.parametrize(
    ("config", "deployment_analyzer", "expected"),
    [
        ({"batches": {"gemini_batch": True}}, "gemini", "batch"),  # the deployment's Gemini
        ({"batches": {"gemini_batch": True}}, "local", None),  # nothing to batch locally
        ({"batches": {"gemini_batch": True}, "providers": {"analyzer": "local"}}, "gemini", None),
        ({"providers": {"analyzer": "gemini"}}, "gemini", None),  # not opted in (the default)
    ],
)
def test_only_gemini_and_only_when_opted_in(
    config: dict[str, Any], deployment_analyzer: str, expected: str | None
) -> None:
    settings = Settings(analyzer=deployment_analyzer)  # type: ignore[arg-type]
    assert mode(settings, submitter(**config), in_batch=True) == expected

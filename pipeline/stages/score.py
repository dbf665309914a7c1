"""Score: evaluate the scorecard on the transcript and metrics, with evidence for every item."""

from __future__ import annotations

from pipeline import artifacts
from pipeline.context import Context
from pipeline.rules import RULES_VERSION
from pipeline.rules.scorecard import evaluate, load_default_scorecard
from pipeline.stages import StageOutput
from schemas.analysis import AnalysisArtifact
from schemas.common import Stage
from schemas.envelope import JobEnvelope
from schemas.transcript import Transcript


def run(envelope: JobEnvelope, ctx: Context) -> StageOutput:
    transcript = artifacts.load(ctx.blobs, envelope, Stage.DIARIZE, Transcript)
    analysis = artifacts.load(ctx.blobs, envelope, Stage.ANALYZE, AnalysisArtifact)
    card = load_default_scorecard()
    score = evaluate(card, transcript, analysis.metrics)
    return StageOutput(score, provider="rules", model=f"{card.id}@{card.version}/{RULES_VERSION}")

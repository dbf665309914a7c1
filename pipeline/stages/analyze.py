"""Analyze: call metrics and lexicon sentiment over the role-attributed transcript."""

from __future__ import annotations

from pipeline import artifacts
from pipeline.context import Context
from pipeline.rules.metrics import compute_metrics
from pipeline.rules.sentiment import sentiment_report
from pipeline.stages import StageOutput
from schemas.analysis import AnalysisArtifact
from schemas.common import Stage
from schemas.envelope import JobEnvelope
from schemas.transcript import Transcript


def run(envelope: JobEnvelope, ctx: Context) -> StageOutput:
    transcript = artifacts.load(ctx.blobs, envelope, Stage.DIARIZE, Transcript)
    scorer = ctx.sentiment
    artifact = AnalysisArtifact(
        metrics=compute_metrics(transcript),
        sentiment=sentiment_report(transcript, scorer),
        insights=None,  # summary, intents and findings come with an analyzer provider
    )
    return StageOutput(artifact, provider=scorer.name)

"""Analyze: call metrics, lexicon sentiment, and the job's analyzer (local or Gemini) over the
role-attributed transcript, told the tenant's client context and the scorecard's questions."""

from __future__ import annotations

from pipeline import artifacts
from pipeline.context import Context
from pipeline.db.tenant_config import config_for_job
from pipeline.ports import AnalysisRequest
from pipeline.rules.metrics import compute_metrics
from pipeline.rules.packs import resolve_scorecard
from pipeline.rules.scorecard import semantic_questions
from pipeline.rules.sentiment import sentiment_report
from pipeline.stages import StageOutput
from schemas.analysis import AnalysisArtifact, SemanticQuestion
from schemas.common import Stage
from schemas.envelope import JobEnvelope
from schemas.tenant import TenantConfig
from schemas.transcript import Transcript


def run(envelope: JobEnvelope, ctx: Context) -> StageOutput:
    transcript = artifacts.load(ctx.blobs, envelope, Stage.DIARIZE, Transcript)
    metrics = compute_metrics(transcript)
    sentiment = sentiment_report(transcript, ctx.sentiment)
    with ctx.sessions() as session:
        versioned = config_for_job(session, envelope)
    analyzer = ctx.analyzer(envelope.options.analyzer_name)
    insights = analyzer.analyze(
        AnalysisRequest(
            transcript=transcript,
            metrics=metrics,
            sentiment=sentiment,
            context=versioned.config.context,
            questions=questions_for(versioned.config, call_type=envelope.options.call_type),
            call_type=envelope.options.call_type,
        )
    )
    artifact = AnalysisArtifact(
        metrics=metrics, sentiment=sentiment, insights=insights, config_version=versioned.version
    )
    return StageOutput(artifact, provider=analyzer.name, model=analyzer.model)


def questions_for(config: TenantConfig, *, call_type: str | None) -> list[SemanticQuestion]:
    """The yes/no questions the job's scorecard asks the analyzer (its semantic rules)."""
    return semantic_questions(resolve_scorecard(config, call_type=call_type))

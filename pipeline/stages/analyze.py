"""Analyze: call metrics, lexicon sentiment, and the job's analyzer (local or Gemini) over the
role-attributed transcript, told the tenant's client context and the scorecard's questions. In batch
mode (Gemini's Batch API) it submits once, then re-checks without holding a worker (NotReady)."""

from __future__ import annotations

from pipeline import artifacts, provider_webhooks
from pipeline.context import Context
from pipeline.db import provider_checks
from pipeline.db.models import utcnow
from pipeline.db.session import transaction
from pipeline.db.tenant_config import config_for_job
from pipeline.errors import NotReady
from pipeline.ports import AnalysisRequest
from pipeline.rules.metrics import compute_metrics
from pipeline.rules.packs import resolve_scorecard
from pipeline.rules.scorecard import semantic_questions
from pipeline.rules.sentiment import sentiment_report
from pipeline.stages import StageOutput
from schemas.analysis import AnalysisArtifact, Insights, SemanticQuestion
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
    request = AnalysisRequest(
        transcript=transcript,
        metrics=metrics,
        sentiment=sentiment,
        context=versioned.config.context,
        questions=questions_for(versioned.config, call_type=envelope.options.call_type),
        call_type=envelope.options.call_type,
    )
    analyzer = ctx.analyzer(envelope.options.analyzer_name)
    if batched(envelope, request):
        insights = _from_batch(envelope, ctx, request)
    else:
        insights = analyzer.analyze(request)
    artifact = AnalysisArtifact(
        metrics=metrics, sentiment=sentiment, insights=insights, config_version=versioned.version
    )
    return StageOutput(artifact, provider=analyzer.name, model=analyzer.model)


def batched(envelope: JobEnvelope, request: AnalysisRequest) -> bool:
    """Through the provider's batch API: pinned so at intake, on Gemini, with something said."""
    options = envelope.options
    return (
        options.analysis_mode == "batch"
        and options.analyzer_name == "gemini"
        and bool(request.transcript.utterances)
    )


def _from_batch(envelope: JobEnvelope, ctx: Context, request: AnalysisRequest) -> Insights:
    """Submit once (the batch's name is kept on the step), then check; NotReady while it runs."""
    analyzer = ctx.batch_analyzer(envelope.options.analyzer_name)
    with transaction(ctx.sessions) as session:
        submitted = provider_checks.submission(session, envelope.job_id, Stage.ANALYZE)
    if submitted is None:
        ref = analyzer.submit_batch(request)
        # Committed before anything else can fail, so a re-run checks instead of paying twice.
        with transaction(ctx.sessions) as session:
            submitted = provider_checks.record_submission(
                session, envelope.job_id, Stage.ANALYZE, ref=ref
            )
        insights = None  # a batch is never done the moment it is created
    else:
        insights = analyzer.check_batch(submitted.ref, request)
    if insights is None:
        delay = provider_webhooks.next_check_delay(
            (utcnow() - submitted.submitted_at).total_seconds(),
            schedule=ctx.settings.gemini_batch_poll_schedule_s,
            long_wait_s=_long_wait(ctx),
        )
        raise NotReady("the Gemini batch is still running", retry_after_s=delay)
    return insights


def _long_wait(ctx: Context) -> float:
    """After the schedule, check as often as its last step (a batch may take up to 24 h)."""
    schedule = ctx.settings.gemini_batch_poll_schedule_s
    return schedule[-1] if schedule else ctx.settings.provider_recheck_s


def questions_for(config: TenantConfig, *, call_type: str | None) -> list[SemanticQuestion]:
    """The yes/no questions the job's scorecard asks the analyzer (its semantic rules)."""
    return semantic_questions(resolve_scorecard(config, call_type=call_type))

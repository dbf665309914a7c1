"""Persist: assemble the versioned CallResult, store it, and complete the job in one transaction."""

from __future__ import annotations

from sqlalchemy.orm import Session

from pipeline import artifacts
from pipeline.context import Context
from pipeline.db import jobs
from pipeline.db.models import Job, utcnow
from pipeline.errors import PermanentError
from pipeline.rules import RULES_VERSION
from pipeline.stages import StageOutput
from schemas.analysis import AnalysisArtifact
from schemas.common import Stage
from schemas.envelope import JobEnvelope
from schemas.result import CallInfo, CallResult, Provenance, StageProvenance
from schemas.scorecard import ScoreArtifact
from schemas.transcript import RawTranscript, Transcript


def run(envelope: JobEnvelope, ctx: Context) -> StageOutput:
    with ctx.sessions() as session, session.begin():
        job = jobs.lock_job(session, envelope.job_id)
        if job is None:
            raise PermanentError("the job no longer exists", code="job_missing")
        result = build_result(session, envelope, ctx, job)
        jobs.complete_job(
            session,
            job,
            schema_version=result.schema_version,
            body=result.model_dump(mode="json"),
            settings=ctx.settings,
            cost_usd=result.provenance.estimated_cost_usd,
            saved_usd=result.provenance.batch_saved_usd,
        )
    return StageOutput(result, provider="database")


def build_result(session: Session, envelope: JobEnvelope, ctx: Context, job: Job) -> CallResult:
    """The job's CallResult, all from its stage artifacts and step rows (persist and rescore)."""
    transcript = artifacts.load(ctx.blobs, envelope, Stage.DIARIZE, Transcript)
    analysis = artifacts.load(ctx.blobs, envelope, Stage.ANALYZE, AnalysisArtifact)
    score = artifacts.load(ctx.blobs, envelope, Stage.SCORE, ScoreArtifact)
    provenance = _provenance(session, envelope, ctx, analysis=analysis, score=score)
    return CallResult(
        call=CallInfo(
            job_id=job.id, external_id=job.external_id, call_type=job.call_type, metadata=job.meta
        ),
        language=transcript.language,
        duration_ms=transcript.duration_ms,
        channels=transcript.channels,
        transcript=transcript.utterances,
        metrics=analysis.metrics,
        sentiment=analysis.sentiment,
        analysis=analysis.insights,
        score=score,
        provenance=provenance,
        created_at=utcnow(),
    )


def _provenance(
    session: Session,
    envelope: JobEnvelope,
    ctx: Context,
    *,
    analysis: AnalysisArtifact,
    score: ScoreArtifact,
) -> Provenance:
    raw = artifacts.load(ctx.blobs, envelope, Stage.TRANSCRIBE, RawTranscript)
    insights = analysis.insights
    stages = [
        StageProvenance(
            stage=step.stage,
            provider=step.provider,
            model=step.model,
            duration_ms=step.duration_ms,
            attempts=step.attempts,
        )
        for step in jobs.steps_of(session, envelope.job_id)
        if step.stage != Stage.PERSIST.value
    ]
    return Provenance(
        stages=stages,
        rules_version=RULES_VERSION,
        config_version=score.config_version,
        scorecard=f"{score.scorecard_id}@{score.scorecard_version}",
        audio_seconds=raw.audio_seconds,
        analyzer=insights.provider if insights else None,
        analyzer_model=insights.model if insights else None,
        analyzer_calls=insights.calls if insights else 0,
        prompt_hash=insights.prompt_hash if insights else None,
        input_tokens=insights.input_tokens if insights else 0,
        output_tokens=insights.output_tokens if insights else 0,
        estimated_cost_usd=insights.estimated_cost_usd if insights else 0.0,
        batch_saved_usd=insights.batch_saved_usd if insights else 0.0,
    )

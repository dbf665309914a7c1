"""Re-scoring a completed call from its stored artifacts with the tenant's current configuration.

No transcription is repeated: score (and, when asked, analyze) runs again on the diarized
transcript, the job's result is updated in place, and the rescore row keeps the old and new scores
and what changed per item.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline import artifacts
from pipeline.context import Context
from pipeline.db.models import Job, JobResult, utcnow
from pipeline.db.rescore_models import Rescore
from pipeline.db.session import transaction
from pipeline.db.tenant_config import load_config
from pipeline.errors import PermanentError
from pipeline.stages import analyze, score
from schemas.analysis import AnalysisArtifact
from schemas.common import Stage
from schemas.envelope import JobEnvelope
from schemas.rescore import ItemChange, ScoreSummary
from schemas.result import CallResult
from schemas.scorecard import ScoreArtifact

TERMINAL = ("completed", "failed")


def run_rescore(ctx: Context, rescore_id: str) -> None:
    """Run one rescore; a finished one is left alone (safe to redeliver). Raises PipelineError."""
    with transaction(ctx.sessions) as session:
        row = _lock(session, rescore_id)
        if row is None or row.status in TERMINAL:
            return
        row.status = "running"
        job = session.get(Job, row.job_id)
        if job is None:
            raise PermanentError("the job no longer exists", code="job_missing")
        envelope = _envelope(job)
        reanalyze = row.reanalyze
    analysis = _analysis(envelope, ctx, reanalyze=reanalyze)
    new = score.run(envelope, ctx).artifact
    assert isinstance(new, ScoreArtifact)
    artifacts.save(ctx.blobs, artifacts.artifact_key(envelope, Stage.SCORE), new)
    with transaction(ctx.sessions) as session:
        _complete(session, rescore_id, new=new, analysis=analysis if reanalyze else None)


def fail_rescore(ctx: Context, rescore_id: str, *, code: str, message: str) -> None:
    with transaction(ctx.sessions) as session:
        row = _lock(session, rescore_id)
        if row is not None and row.status not in TERMINAL:
            row.status, row.error_code, row.error_message = "failed", code, message
            row.completed_at = utcnow()


def _analysis(envelope: JobEnvelope, ctx: Context, *, reanalyze: bool) -> AnalysisArtifact:
    if not reanalyze:
        return artifacts.load(ctx.blobs, envelope, Stage.ANALYZE, AnalysisArtifact)
    fresh = analyze.run(envelope, ctx).artifact
    assert isinstance(fresh, AnalysisArtifact)
    artifacts.save(ctx.blobs, artifacts.artifact_key(envelope, Stage.ANALYZE), fresh)
    return fresh


def _complete(
    session: Session, rescore_id: str, *, new: ScoreArtifact, analysis: AnalysisArtifact | None
) -> None:
    row = _lock(session, rescore_id)
    if row is None or row.status in TERMINAL:
        return
    stored = session.get(JobResult, row.job_id)
    if stored is None:
        raise PermanentError("the job has no result to re-score", code="job_not_completed")
    result = CallResult.model_validate(stored.body)
    row.old_score = summary(result.score).model_dump(mode="json")
    row.new_score = summary(new).model_dump(mode="json")  # the whole new score is in the result
    row.changes = {"items": [c.model_dump(mode="json") for c in diff(result.score, new)]}
    # Score always reads the tenant's current configuration: that is the version that re-scored.
    row.config_version = load_config(session, row.tenant_id).version
    row.status, row.completed_at = "completed", utcnow()
    stored.body = _updated(result, new, analysis, config_version=row.config_version)


def _updated(
    result: CallResult,
    new: ScoreArtifact,
    analysis: AnalysisArtifact | None,
    *,
    config_version: int | None,
) -> dict[str, Any]:
    provenance = result.provenance.model_copy(
        update={
            "scorecard": f"{new.scorecard_id}@{new.scorecard_version}",
            "config_version": config_version,
        }
    )
    update: dict[str, Any] = {"score": new, "provenance": provenance}
    if analysis is not None:
        update |= {
            "metrics": analysis.metrics,
            "sentiment": analysis.sentiment,
            "analysis": analysis.insights,
        }
    return result.model_copy(update=update).model_dump(mode="json")


def summary(card: ScoreArtifact) -> ScoreSummary:
    return ScoreSummary(
        scorecard=f"{card.scorecard_id}@{card.scorecard_version}",
        score=card.score,
        potential=card.potential,
        normalized=card.normalized,
        band=card.band,
        auto_failed=card.auto_failed,
        compliance_score=card.compliance_score,
        needs_review=card.needs_review,
    )


def diff(old: ScoreArtifact, new: ScoreArtifact) -> list[ItemChange]:
    """Per-item differences: answers or points that changed, items added or removed."""
    before = {i.id: i for s in old.sections for i in s.items}
    after = {i.id: i for s in new.sections for i in s.items}
    changes: list[ItemChange] = []
    for item_id in [*after, *(i for i in before if i not in after)]:
        was, now = before.get(item_id), after.get(item_id)
        if was and now and (was.answer, was.points) == (now.answer, now.points):
            continue
        label = now.label if now else was.label if was else item_id
        changes.append(
            ItemChange(
                item_id=item_id,
                label=label,
                change="added" if was is None else "removed" if now is None else "changed",
                old_answer=was.answer if was else None,
                new_answer=now.answer if now else None,
                old_points=was.points if was else None,
                new_points=now.points if now else None,
            )
        )
    return changes


def _envelope(job: Job) -> JobEnvelope:
    envelope = JobEnvelope.model_validate(job.envelope)
    # Artifacts at their conventional keys (the stored envelope is the one the chain started with).
    keys = {s.value: artifacts.artifact_key(envelope, s) for s in (Stage.TRANSCRIBE, Stage.DIARIZE)}
    return envelope.model_copy(update={"artifacts": keys})


def _lock(session: Session, rescore_id: str) -> Rescore | None:
    return session.scalars(
        select(Rescore).where(Rescore.id == rescore_id).with_for_update()
    ).one_or_none()

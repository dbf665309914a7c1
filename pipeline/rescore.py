"""Re-scoring a completed call from its stored artifacts with the tenant's current configuration.

No transcription is repeated: score (and, when asked, analyze) runs again on the diarized
transcript, the job's result is updated in place, and the rescore row keeps the old and new scores
and what changed per item.
"""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline import artifacts
from pipeline.context import Context
from pipeline.db.models import Job, JobResult, utcnow
from pipeline.db.rescore_models import Rescore
from pipeline.db.session import transaction
from pipeline.db.tenant_config import load_config
from pipeline.errors import PermanentError
from pipeline.stages import analyze, persist, score
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
        envelope = _envelope(session, row)
        reanalyze = row.reanalyze
    if reanalyze:
        _save(ctx, envelope, Stage.ANALYZE, analyze.run(envelope, ctx).artifact)
    _save(ctx, envelope, Stage.SCORE, score.run(envelope, ctx).artifact)
    with transaction(ctx.sessions) as session:
        _complete(session, ctx, envelope, rescore_id)


def fail_rescore(ctx: Context, rescore_id: str, *, code: str, message: str) -> None:
    with transaction(ctx.sessions) as session:
        row = _lock(session, rescore_id)
        if row is not None and row.status not in TERMINAL:
            row.status, row.error_code, row.error_message = "failed", code, message
            row.completed_at = utcnow()


def _envelope(session: Session, row: Rescore) -> JobEnvelope:
    """The job's envelope, pinned to the tenant's configuration version current now."""
    job = session.get(Job, row.job_id)
    if job is None:
        raise PermanentError("the job no longer exists", code="job_missing")
    envelope = JobEnvelope.model_validate(job.envelope)
    version = load_config(session, row.tenant_id).version
    options = envelope.options.model_copy(update={"config_version": version})
    return envelope.model_copy(update={"options": options})


def _save(ctx: Context, envelope: JobEnvelope, stage: Stage, artifact: BaseModel) -> None:
    artifacts.save(ctx.blobs, artifacts.artifact_key(envelope, stage), artifact)


def _complete(session: Session, ctx: Context, envelope: JobEnvelope, rescore_id: str) -> None:
    """Record old and new scores and the changes, and rebuild the job's result from artifacts."""
    row = _lock(session, rescore_id)
    stored = session.get(JobResult, envelope.job_id)
    job = session.get(Job, envelope.job_id)
    if row is None or row.status in TERMINAL or job is None:
        return
    if stored is None:
        raise PermanentError("the job has no result to re-score", code="job_not_completed")
    old = CallResult.model_validate(stored.body).score
    result = persist.build_result(session, envelope, ctx, job)
    row.old_score = summary(old).model_dump(mode="json")
    row.new_score = summary(result.score).model_dump(mode="json")  # the whole score: the result
    row.changes = {"items": [c.model_dump(mode="json") for c in diff(old, result.score)]}
    row.config_version = result.score.config_version
    row.status, row.completed_at = "completed", utcnow()
    stored.body = result.model_dump(mode="json")


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


def _lock(session: Session, rescore_id: str) -> Rescore | None:
    return session.scalars(
        select(Rescore).where(Rescore.id == rescore_id).with_for_update()
    ).one_or_none()

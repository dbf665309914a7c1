"""Score: evaluate the tenant's scorecard for the call type on the call, with evidence for every
item, a separate compliance score, review flags and a risk score."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from pipeline import artifacts
from pipeline.context import Context
from pipeline.db.contacts import prior_contacts
from pipeline.db.models import Job
from pipeline.db.tenant_config import config_for_job
from pipeline.rules import RULES_VERSION
from pipeline.rules.contact_policy import check_contact, contact_from_metadata
from pipeline.rules.facts import CallFacts
from pipeline.rules.findings import redaction_findings
from pipeline.rules.packs import resolve_scorecard
from pipeline.rules.scorecard import evaluate
from pipeline.stages import StageOutput
from schemas.analysis import AnalysisArtifact, Finding
from schemas.common import Stage
from schemas.envelope import JobEnvelope
from schemas.transcript import Transcript

CONTACT_WINDOW_DAYS = 7


def run(envelope: JobEnvelope, ctx: Context) -> StageOutput:
    transcript = artifacts.load(ctx.blobs, envelope, Stage.DIARIZE, Transcript)
    analysis = artifacts.load(ctx.blobs, envelope, Stage.ANALYZE, AnalysisArtifact)
    with ctx.sessions() as session:
        versioned = config_for_job(session, envelope)
        job = session.get(Job, envelope.job_id)
        metadata = dict(job.meta) if job is not None else {}
        history = _contact_findings(session, envelope, metadata)
    config = versioned.config
    card = resolve_scorecard(config, call_type=envelope.options.call_type)
    insights = analysis.insights
    facts = CallFacts(
        transcript=transcript,
        metrics=analysis.metrics,
        sentiment=analysis.sentiment,
        insights=insights,
        findings=[
            *(insights.violations if insights else []),
            *(insights.risk_factors if insights else []),
            *redaction_findings(transcript.redactions, transcript.utterances),
            *history,
        ],
        metadata=metadata,
    )
    score = evaluate(card, facts, risk_triggers=config.context.risk_triggers)
    score.config_version = versioned.version
    return StageOutput(score, provider="rules", model=f"{card.id}@{card.version}/{RULES_VERSION}")


def _contact_findings(
    session: Session, envelope: JobEnvelope, metadata: dict[str, Any]
) -> list[Finding]:
    """Reg F / FDCPA checks across the consumer's calls, when the job's metadata names them."""
    call = contact_from_metadata(envelope.job_id, metadata)
    if call is None:
        return []
    history = prior_contacts(
        session,
        tenant_id=envelope.tenant_id,
        consumer_id=call.consumer_id,
        before=call.started_at,
        days=CONTACT_WINDOW_DAYS + 1,  # 7 local days can exceed 168 h across a DST change
        exclude_job_id=envelope.job_id,
    )
    return check_contact(call, history, window_days=CONTACT_WINDOW_DAYS)

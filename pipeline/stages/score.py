"""Score: evaluate the tenant's scorecard for the call type on the call, with evidence for every
item, a separate compliance score, review flags and a risk score."""

from __future__ import annotations

from pipeline import artifacts
from pipeline.context import Context
from pipeline.db.tenant_config import load_config
from pipeline.rules import RULES_VERSION
from pipeline.rules.facts import CallFacts
from pipeline.rules.packs import resolve_scorecard
from pipeline.rules.scorecard import evaluate
from pipeline.stages import StageOutput
from schemas.analysis import AnalysisArtifact
from schemas.common import Stage
from schemas.envelope import JobEnvelope
from schemas.transcript import Transcript


def run(envelope: JobEnvelope, ctx: Context) -> StageOutput:
    transcript = artifacts.load(ctx.blobs, envelope, Stage.DIARIZE, Transcript)
    analysis = artifacts.load(ctx.blobs, envelope, Stage.ANALYZE, AnalysisArtifact)
    with ctx.sessions() as session:
        config = load_config(session, envelope.tenant_id).config
    card = resolve_scorecard(config, call_type=envelope.options.call_type)
    insights = analysis.insights
    facts = CallFacts(
        transcript=transcript,
        metrics=analysis.metrics,
        sentiment=analysis.sentiment,
        insights=insights,
        # For now only the analyzer's findings; the PCI detector's and contact-policy checks join here.
        findings=[*insights.violations, *insights.risk_factors] if insights else [],
    )
    score = evaluate(card, facts, risk_triggers=config.context.risk_triggers)
    return StageOutput(score, provider="rules", model=f"{card.id}@{card.version}/{RULES_VERSION}")

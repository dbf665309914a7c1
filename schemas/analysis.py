"""Artifact of the analyze stage: call metrics, sentiment and (when an analyzer runs) AI analysis."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.common import Message, Role


class Evidence(Message):
    utterance_id: str
    quote: str
    start_ms: int
    end_ms: int | None = None


class RoleMetrics(Message):
    talk_ms: int = 0
    talk_ratio: float = 0.0
    utterances: int = 0
    words: int = 0
    words_per_minute: float | None = None
    interruptions: int = 0  # times this role started talking over the other
    longest_monologue_ms: int = 0


class NonTalk(Message):
    total_ms: int = 0
    ratio: float = 0.0
    instances: list[Evidence] = Field(default_factory=list)  # gaps ≥ the threshold; quote empty
    threshold_ms: int = 0


class CallMetrics(Message):
    duration_ms: int
    by_role: dict[Role, RoleMetrics]
    non_talk: NonTalk
    longest_monologue: Evidence | None = None
    longest_monologue_role: Role | None = None
    longest_monologue_ms: int = 0


class UtteranceSentiment(Message):
    utterance_id: str
    role: Role
    score: float  # compound, -1 … 1
    label: str  # positive | neutral | negative


class SentimentReport(Message):
    provider: str
    utterances: list[UtteranceSentiment]
    by_role: dict[Role, float]
    by_quarter: list[float | None]  # mean compound per quarter of the call (None: nobody spoke)
    by_role_quarter: dict[Role, list[float | None]]
    start_to_end: dict[Role, float]  # last quarter minus first quarter, per role


class Intent(Message):
    name: str
    confidence: float
    evidence: list[Evidence] = Field(default_factory=list)  # what the customer said


class Finding(Message):
    """A compliance violation or risk factor, always with evidence."""

    code: str
    description: str
    severity: str = "medium"
    evidence: list[Evidence] = Field(default_factory=list)


class SemanticQuestion(Message):
    """A yes/no question about the call that a scorecard item or rule asks the analyzer."""

    id: str
    question: str
    role: Role | Literal["any"] = "any"  # whose behaviour the question is about


class SemanticAnswer(Message):
    id: str
    answer: Literal["yes", "no", "na"]
    rationale: str = ""
    confidence: float | None = None
    evidence: list[Evidence] = Field(default_factory=list)


class Insights(Message):
    """Summary, intents and findings from an analyzer (Gemini or the local one)."""

    provider: str
    model: str | None = None
    summary: str = ""
    intents: list[Intent] = Field(default_factory=list)
    topics: list[str] = Field(default_factory=list)
    action_items: list[str] = Field(default_factory=list)
    outcome: str | None = None
    outcome_evidence: list[Evidence] = Field(default_factory=list)
    violations: list[Finding] = Field(default_factory=list)
    risk_factors: list[Finding] = Field(default_factory=list)
    semantic: list[SemanticAnswer] = Field(default_factory=list)  # answers to SemanticQuestions
    input_tokens: int = 0
    output_tokens: int = 0
    estimated_cost_usd: float = 0.0
    batch_saved_usd: float = 0.0  # what the synchronous API would have cost more (Batch API)
    calls: int = 0  # provider requests made (chunks, retries on invalid output)
    prompt_hash: str | None = None  # which prompt template produced this (LLM analyzers)


class AnalysisArtifact(Message):
    metrics: CallMetrics
    sentiment: SentimentReport
    insights: Insights | None = None
    config_version: int | None = None  # the tenant configuration the analyzer was told

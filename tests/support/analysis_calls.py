"""Role-attributed transcripts and analysis requests for analyzer tests, built the way the pipeline
builds them (text turns → segments → the diarize stage's label attribution)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from pipeline.adapters.local_analysis import LocalAnalyzer
from pipeline.adapters.vader import VaderScorer
from pipeline.ports import AnalysisRequest
from pipeline.rules.metrics import compute_metrics
from pipeline.rules.sentiment import sentiment_report
from pipeline.stages.diarize import attribute
from pipeline.transcript_text import turns_to_segments
from schemas.analysis import SemanticQuestion
from schemas.api import TranscriptTurn
from schemas.common import Role
from schemas.tenant import ClientContext
from schemas.transcript import RawTranscript, Transcript

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def transcript_from_turns(turns: Sequence[TranscriptTurn]) -> Transcript:
    segments = turns_to_segments(list(turns))
    raw = RawTranscript(
        duration_ms=max(s.end_ms for s in segments),
        channels=1,
        segments=segments,
        provider="text",
    )
    return attribute(raw, channel_map={})


def transcript_from_lines(lines: Sequence[tuple[Role, str]]) -> Transcript:
    """Consecutive lines of one role stay separate utterances (gaps exceed the merge gap)."""
    turns, clock = [], 0
    for role, text in lines:
        end = clock + 400 * len(text.split())
        turns.append(TranscriptTurn(speaker=role.value, text=text, start_ms=clock, end_ms=end))
        clock = end + 2_000
    return transcript_from_turns(turns)


def sample_transcript() -> Transcript:
    """samples/transcript.json as the diarize stage sees it."""
    body = json.loads((SAMPLES / "transcript.json").read_text())
    return transcript_from_turns([TranscriptTurn.model_validate(t) for t in body["transcript"]])


def analysis_request(
    transcript: Transcript,
    *,
    context: ClientContext | None = None,
    questions: Sequence[SemanticQuestion] = (),
) -> AnalysisRequest:
    return AnalysisRequest(
        transcript=transcript,
        metrics=compute_metrics(transcript),
        sentiment=sentiment_report(transcript, VaderScorer()),
        context=context or ClientContext(),
        questions=list(questions),
    )


@cache
def shared_analyzer() -> LocalAnalyzer:
    """One loaded model per test process, shared by the analysis test modules."""
    return LocalAnalyzer()

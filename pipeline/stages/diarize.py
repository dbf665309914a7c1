"""Diarize: who spoke when, and in which role (agent/customer), with a confidence for each turn.

Stereo audio: one speaker per channel, roles from the job's channel map (exact). Text transcripts:
roles from the speaker labels. Mono audio: no separation yet, so turns are honestly `unknown`, 0.0.
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline import artifacts
from pipeline.context import Context
from pipeline.stages import StageOutput
from schemas.common import Role, Stage
from schemas.envelope import JobEnvelope
from schemas.transcript import RawTranscript, Segment, Transcript, Utterance

MERGE_GAP_MS = 1000
Labeler = Callable[[Segment], tuple[str, Role, float]]
_ROLE_WORDS = {
    Role.AGENT: {"agent", "rep", "representative", "advisor", "operator", "csr"},
    Role.CUSTOMER: {"customer", "caller", "client", "consumer"},
}


def run(envelope: JobEnvelope, ctx: Context) -> StageOutput:
    raw = artifacts.load(ctx.blobs, envelope, Stage.TRANSCRIBE, RawTranscript)
    transcript = attribute(raw, channel_map=envelope.options.channel_map)
    return StageOutput(transcript, provider=f"local-{transcript.diarization}")


def attribute(raw: RawTranscript, *, channel_map: dict[int, Role]) -> Transcript:
    label: Labeler
    if any(s.channel is not None for s in raw.segments):
        method, label = "channel", lambda s: _by_channel(s, channel_map)
    elif any(s.speaker for s in raw.segments):
        method, label = "labels", _by_label
    else:
        method, label = "none", lambda _s: ("speaker", Role.UNKNOWN, 0.0)
    utterances = _merge(sorted(raw.segments, key=lambda s: (s.start_ms, s.end_ms)), label)
    return Transcript(
        language=raw.language,
        duration_ms=raw.duration_ms,
        channels=raw.channels,
        utterances=utterances,
        diarization=method,
    )


def _by_channel(segment: Segment, channel_map: dict[int, Role]) -> tuple[str, Role, float]:
    channel = segment.channel if segment.channel is not None else -1
    role = channel_map.get(channel, Role.UNKNOWN)
    return f"channel-{channel}", role, 1.0 if role is not Role.UNKNOWN else 0.0


def _by_label(segment: Segment) -> tuple[str, Role, float]:
    speaker = (segment.speaker or "unknown").strip()
    word = speaker.lower()
    for role, names in _ROLE_WORDS.items():
        if word in names:
            return role.value, role, 1.0
    return speaker, Role.UNKNOWN, 0.0


def _merge(segments: list[Segment], label: Labeler) -> list[Utterance]:
    """One utterance per segment, joining a speaker's consecutive segments split by short pauses."""
    utterances: list[Utterance] = []
    for segment in segments:
        speaker, role, confidence = label(segment)
        last = utterances[-1] if utterances else None
        if last and last.speaker == speaker and segment.start_ms - last.end_ms < MERGE_GAP_MS:
            last.text = f"{last.text} {segment.text.strip()}"
            last.end_ms = max(last.end_ms, segment.end_ms)
            last.words.extend(segment.words)
            continue
        utterances.append(
            Utterance(
                id=f"u{len(utterances) + 1:04d}",
                speaker=speaker,
                role=role,
                role_confidence=confidence,
                start_ms=segment.start_ms,
                end_ms=segment.end_ms,
                text=segment.text.strip(),
                confidence=segment.confidence,
                words=list(segment.words),
            )
        )
    return utterances

"""Diarize: who spoke when, and in which role (agent/customer), with a confidence for each turn.

Stereo audio: one speaker per channel, roles from the job's channel map (exact). Speaker-labelled
transcripts (our mono separator's "A"/"B", a provider's labels, names in a text transcript): roles
from the cascade in `pipeline.rules.roles` (role words, then what each speaker says, then order).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from pipeline import artifacts
from pipeline.context import Context
from pipeline.db.tenant_config import config_for_job
from pipeline.media import check_channel_map
from pipeline.rules import roles
from pipeline.rules.findings import covering_utterance
from pipeline.stages import StageOutput
from schemas.common import Role, Stage
from schemas.envelope import JobEnvelope
from schemas.transcript import RawTranscript, Redaction, Segment, Transcript, Utterance

MERGE_GAP_MS = 1000
# Transcripts from an in-process transcriber got their speaker labels from our own separator.
LOCAL_PROVIDER_PREFIX = "local-"
Labeler = Callable[[Segment], tuple[str, Role, float]]


def run(envelope: JobEnvelope, ctx: Context) -> StageOutput:
    raw = artifacts.load(ctx.blobs, envelope, Stage.TRANSCRIBE, RawTranscript)
    names: list[str] = []
    if _method(raw) == "channel":
        # Intake checks WAV headers; other formats show their channels only once decoded. Raises
        # InvalidInput (invalid_channel_map) rather than attributing every turn to `unknown`.
        check_channel_map(envelope.options.channel_map, channels=raw.channels)
    elif _method(raw) in ("labels", "clustered"):
        with ctx.sessions() as session:
            names = config_for_job(session, envelope).config.context.company_names
    transcript = attribute(raw, channel_map=envelope.options.channel_map, company_names=names)
    return StageOutput(transcript, provider=f"local-{transcript.diarization}")


def attribute(
    raw: RawTranscript, *, channel_map: dict[int, Role], company_names: Sequence[str] = ()
) -> Transcript:
    """Role-attributed utterances from a raw transcript. Pure: no I/O, deterministic."""
    segments = sorted(raw.segments, key=lambda s: (s.start_ms, s.end_ms))
    method = _method(raw)
    label: Labeler
    if method == "channel":
        label = partial(_by_channel, channel_map=channel_map)
    elif method in ("labels", "clustered"):
        label = _speaker_labeler(segments, company_names)
    else:
        label = _unlabelled
    utterances = _merge(segments, label)
    return Transcript(
        language=raw.language,
        duration_ms=raw.duration_ms,
        channels=raw.channels,
        utterances=utterances,
        diarization=method,
        redactions=[_anchored(r, utterances) for r in raw.redactions],
    )


def _anchored(redaction: Redaction, utterances: Sequence[Utterance]) -> Redaction:
    """The redaction with the id of the utterance it was spoken in (evidence cites utterances)."""
    spoken_in = covering_utterance(redaction, utterances)
    return redaction.model_copy(update={"utterance_id": spoken_in.id if spoken_in else None})


def _method(raw: RawTranscript) -> str:
    if any(s.channel is not None for s in raw.segments):
        return "channel"
    if any(s.speaker for s in raw.segments):
        return "clustered" if raw.provider.startswith(LOCAL_PROVIDER_PREFIX) else "labels"
    return "none"


def _unlabelled(_segment: Segment) -> tuple[str, Role, float]:
    return "speaker", Role.UNKNOWN, 0.0


def _by_channel(segment: Segment, *, channel_map: dict[int, Role]) -> tuple[str, Role, float]:
    found = roles.by_channel(segment.channel, channel_map)
    channel = segment.channel if segment.channel is not None else -1
    return f"channel-{channel}", found.role, found.confidence


def _speaker_labeler(segments: Sequence[Segment], company_names: Sequence[str]) -> Labeler:
    """Attribute every labelled speaker once, over the whole call; unlabelled turns stay unknown."""
    turns = [(s.speaker.strip(), s.text) for s in segments if s.speaker and s.speaker.strip()]
    found = roles.attribute_speakers(turns, company_names=company_names)

    def label(segment: Segment) -> tuple[str, Role, float]:
        speaker = (segment.speaker or "").strip()
        if not speaker:
            return "unknown", Role.UNKNOWN, 0.0
        attribution = found.get(speaker, roles.UNKNOWN)
        # A role-word label ("Agent", "caller") is shown as the role; other labels as given.
        shown = attribution.role.value if roles.by_label(speaker) else speaker
        return shown, attribution.role, attribution.confidence

    return label


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

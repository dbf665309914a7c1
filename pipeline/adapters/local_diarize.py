"""Offline speaker separation for mono calls: the `SpeakerSeparator` port on resemblyzer + KMeans.

Whisper's word timestamps (it ran with its VAD) cut the speech into short chunks; resemblyzer's
bundled voice encoder embeds each chunk; KMeans splits the chunks by voice. Vendor errors stay here.
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.adapters.local_asr import SAMPLE_RATE, Samples, decode_tracks
from pipeline.errors import InvalidInput, ProviderRejected, TransientError
from schemas.transcript import RawTranscript, Segment, Word

PROVIDER = "local-resemblyzer"
MAX_CHUNK_MS = 1500  # short enough that a turn change inside one chunk costs little time
GAP_MS = 200  # a pause this long ends a chunk: speakers change hands in pauses
MIN_FIT_MS = 500  # shorter chunks embed noisily: they join the nearest cluster, never shape it
MIN_FIT_CHUNKS = 4  # fewer than this: too little speech to tell two voices apart
WINDOW_SAMPLES = 25_600  # resemblyzer's partial utterance: 160 frames of 10 ms
LABELS = "ABCDEFGHIJ"

Embeddings = npt.NDArray[np.float32]


@dataclass(frozen=True)
class _Unit:
    """The smallest stretch that gets one speaker: a word, or a segment that has no words."""

    segment: int
    word: int | None
    start_ms: int
    end_ms: int


@dataclass
class _Chunk:
    units: list[int]
    start_ms: int
    end_ms: int


class ResemblyzerSeparator:
    """Separates the voices of a mono call on the CPU; no network, no credentials, deterministic.

    The voice encoder is loaded on first use and again if the process has forked since, because
    torch's thread pools do not survive a fork (Celery prefork workers).
    """

    name = PROVIDER

    def __init__(self) -> None:
        self._encoder: Any = None
        self._loaded_in_pid: int | None = None
        self._lock = threading.Lock()

    def separate(self, audio: Path, raw: RawTranscript, *, speakers: int = 2) -> RawTranscript:
        """Label every segment "A" (first to speak), "B", …, split where the speaker changes.

        Everything is "A" when there is too little speech to cluster. Raises InvalidAudio when the
        audio cannot be decoded, InvalidInput for an unusable speaker count, TransientError when
        the encoder cannot load or memory runs out, ProviderRejected when embedding fails.
        """
        if not 1 <= speakers <= len(LABELS):
            raise InvalidInput(f"speakers must be 1..{len(LABELS)}, not {speakers}")
        units = _units(raw.segments)
        if not units:
            return raw
        chunks = _chunks(units)
        clusters = [0] * len(chunks)
        if speakers > 1 and _fit_count(chunks) >= max(MIN_FIT_CHUNKS, speakers):
            samples = _mono(decode_tracks(audio))
            clusters = _cluster(self._embed(samples, chunks), chunks, speakers)
        by_unit = {u: c for chunk, c in zip(chunks, clusters, strict=True) for u in chunk.units}
        names = _names(clusters)
        labels = [names[by_unit[i]] for i in range(len(units))]
        return raw.model_copy(update={"segments": _relabel(raw.segments, units, labels)})

    def _embed(self, samples: Samples, chunks: list[_Chunk]) -> Embeddings:
        encoder, resemblyzer = self._loaded()
        signal = resemblyzer.normalize_volume(samples, -30, increase_only=True)
        try:
            rows = [encoder.embed_utterance(_window(signal, c)) for c in chunks]
        except MemoryError as exc:
            raise TransientError("not enough memory to separate speakers") from exc
        except Exception as exc:  # torch/librosa raise open-ended RuntimeError/ValueError
            raise ProviderRejected(f"speaker embedding failed: {type(exc).__name__}") from exc
        return np.asarray(rows, dtype=np.float32)

    def _loaded(self) -> tuple[Any, Any]:
        with self._lock:
            if self._encoder is None or self._loaded_in_pid != os.getpid():
                self._encoder = _load_encoder()
                self._loaded_in_pid = os.getpid()
            return self._encoder, _resemblyzer()


def _resemblyzer() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with warnings.catch_warnings():
        # resemblyzer 0.1.4 imports scipy.ndimage.morphology, deprecated in SciPy: not ours to fix.
        warnings.simplefilter("ignore", DeprecationWarning)
        import resemblyzer  # type: ignore[import-untyped]
    return resemblyzer


def _load_encoder() -> Any:
    try:
        return _resemblyzer().VoiceEncoder("cpu", verbose=False)
    except MemoryError as exc:
        raise TransientError("not enough memory to load the voice encoder") from exc
    except Exception as exc:  # a missing or corrupt bundled model is a deployment fault
        raise TransientError(f"voice encoder failed to load: {type(exc).__name__}") from exc


def _units(segments: list[Segment]) -> list[_Unit]:
    units: list[_Unit] = []
    for s_index, segment in enumerate(segments):
        if not segment.words:
            units.append(_Unit(s_index, None, segment.start_ms, segment.end_ms))
        for w_index, word in enumerate(segment.words):
            units.append(_Unit(s_index, w_index, word.start_ms, word.end_ms))
    return units


def _chunks(units: list[_Unit]) -> list[_Chunk]:
    """Consecutive units joined while no pause separates them and the chunk stays short."""
    order = sorted(range(len(units)), key=lambda i: (units[i].start_ms, i))
    chunks: list[_Chunk] = []
    for i in order:
        unit = units[i]
        last = chunks[-1] if chunks else None
        if (
            last is not None
            and unit.start_ms - last.end_ms < GAP_MS
            and unit.end_ms - last.start_ms <= MAX_CHUNK_MS
        ):
            last.units.append(i)
            last.end_ms = max(last.end_ms, unit.end_ms)
        else:
            chunks.append(_Chunk([i], unit.start_ms, unit.end_ms))
    return chunks


def _fit_count(chunks: list[_Chunk]) -> int:
    return sum(1 for c in chunks if c.end_ms - c.start_ms >= MIN_FIT_MS)


def _mono(tracks: list[Samples]) -> Samples:
    if len(tracks) == 1:
        return tracks[0]
    mixed: Samples = np.stack(tracks).mean(axis=0, dtype=np.float32)
    return mixed


def _window(signal: Samples, chunk: _Chunk) -> Samples:
    """The chunk's audio repeated to one full encoder window: zero padding would let silence,
    not the voice, dominate the embedding of a short chunk."""
    start = chunk.start_ms * SAMPLE_RATE // 1000
    piece = signal[start : max(start + 1, chunk.end_ms * SAMPLE_RATE // 1000)]
    if piece.size == 0:
        piece = np.zeros(1, dtype=np.float32)
    repeats = -(-WINDOW_SAMPLES // piece.size)
    return np.tile(piece, repeats)[:WINDOW_SAMPLES]


def _cluster(embeddings: Embeddings, chunks: list[_Chunk], speakers: int) -> list[int]:
    """KMeans fitted on the longer chunks (reliable voices); every chunk gets its nearest centre."""
    from sklearn.cluster import KMeans  # type: ignore[import-untyped]

    fit = [i for i, c in enumerate(chunks) if c.end_ms - c.start_ms >= MIN_FIT_MS]
    distinct = np.unique(embeddings[fit].round(5), axis=0)
    if len(distinct) < speakers:
        return [0] * len(chunks)
    try:
        model = KMeans(n_clusters=speakers, n_init=10, random_state=0).fit(embeddings[fit])
        return [int(c) for c in model.predict(embeddings)]
    except MemoryError as exc:
        raise TransientError("not enough memory to cluster speakers") from exc
    except ValueError as exc:
        raise ProviderRejected(f"speaker clustering failed: {exc}") from exc


def _names(clusters: list[int]) -> dict[int, str]:
    """Cluster ids to "A", "B", … in order of first speech (chunks are in time order)."""
    names: dict[int, str] = {}
    for cluster in clusters:
        names.setdefault(cluster, LABELS[len(names)])
    return names


def _relabel(segments: list[Segment], units: list[_Unit], labels: list[str]) -> list[Segment]:
    """Each segment with its speaker, split into runs of words that share one speaker."""
    runs: dict[int, list[tuple[str, list[Word]]]] = {}
    for unit, label in zip(units, labels, strict=True):
        seg_runs = runs.setdefault(unit.segment, [])
        word = None if unit.word is None else segments[unit.segment].words[unit.word]
        if not seg_runs or seg_runs[-1][0] != label:
            seg_runs.append((label, []))
        if word is not None:
            seg_runs[-1][1].append(word)
    out: list[Segment] = []
    for index, segment in enumerate(segments):
        seg_runs = runs[index]
        if len(seg_runs) == 1:
            out.append(segment.model_copy(update={"speaker": seg_runs[0][0]}))
            continue
        out.extend(_piece(segment, label, words) for label, words in seg_runs)
    out.sort(key=lambda s: (s.start_ms, s.end_ms))
    return out


def _piece(segment: Segment, speaker: str, words: list[Word]) -> Segment:
    return segment.model_copy(
        update={
            "start_ms": words[0].start_ms,
            "end_ms": words[-1].end_ms,
            "text": " ".join(w.text for w in words),
            "speaker": speaker,
            "words": list(words),
        }
    )

"""Mono speaker separation for real: synthetic two-voice calls → Whisper → resemblyzer + KMeans →
the diarize role cascade, scored against the true timeline; and the committed samples/mono.wav."""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.adapters.local_asr import WhisperTranscriber
from pipeline.adapters.local_diarize import ResemblyzerSeparator
from pipeline.errors import InvalidAudio, InvalidInput
from pipeline.ports import SpeakerSeparator
from pipeline.stages.diarize import attribute
from schemas.common import Role
from schemas.transcript import RawTranscript, Segment, Transcript, Word
from tests.support.synth import (
    CUSTOMER_FIRST,
    MISSING,
    NEEDS_TOOLS,
    SUPPORT_CALL,
    TruthTurn,
    role_at,
    synth_call,
)

pytestmark = pytest.mark.skipif(bool(MISSING), reason=NEEDS_TOOLS)

SAMPLES = Path(__file__).resolve().parents[4] / "samples"
CHANNEL_MAP = {0: Role.AGENT, 1: Role.CUSTOMER}


@dataclass(frozen=True)
class Run:
    raw: RawTranscript
    separated: RawTranscript
    transcript: Transcript
    truth: list[TruthTurn]


@pytest.fixture(scope="module")
def transcriber() -> WhisperTranscriber:
    return WhisperTranscriber()


@pytest.fixture(scope="module")
def separator() -> ResemblyzerSeparator:
    return ResemblyzerSeparator()


def _run(
    transcriber: WhisperTranscriber,
    separator: ResemblyzerSeparator,
    path: Path,
    truth: list[TruthTurn],
    *,
    company: str,
) -> Run:
    raw = transcriber.transcribe(path, language=None)
    started = time.perf_counter()
    separated = separator.separate(path, raw)
    elapsed = time.perf_counter() - started
    print(f"\n{path.name}: separation {elapsed:.2f} s, RTF {elapsed * 1000 / raw.duration_ms:.3f}")
    transcript = attribute(separated, channel_map=CHANNEL_MAP, company_names=[company])
    return Run(raw, separated, transcript, truth)


@pytest.fixture(scope="module")
def support(
    tmp_path_factory: pytest.TempPathFactory,
    transcriber: WhisperTranscriber,
    separator: ResemblyzerSeparator,
) -> Run:
    call = synth_call(SUPPORT_CALL, tmp_path_factory.mktemp("support"))
    return _run(transcriber, separator, call.path, call.truth, company="Northwind Telecom")


@pytest.fixture(scope="module")
def customer_first(
    tmp_path_factory: pytest.TempPathFactory,
    transcriber: WhisperTranscriber,
    separator: ResemblyzerSeparator,
) -> Run:
    call = synth_call(CUSTOMER_FIRST, tmp_path_factory.mktemp("customer-first"))
    return _run(transcriber, separator, call.path, call.truth, company="Northwind Telecom")


@pytest.fixture(scope="module")
def sample(transcriber: WhisperTranscriber, separator: ResemblyzerSeparator) -> Run:
    with (SAMPLES / "script.tsv").open() as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    truth = [TruthTurn(r["role"], int(r["start_ms"]), int(r["end_ms"]), r["text"]) for r in rows]
    return _run(transcriber, separator, SAMPLES / "mono.wav", truth, company="Acme Bank")


def role_accuracy(transcript: Transcript, truth: Sequence[TruthTurn]) -> float:
    """Share of the true speech time (10 ms steps) covered by an utterance of the right role."""
    right = total = 0
    for turn in truth:
        for ms in range(turn.start_ms, turn.end_ms, 10):
            total += 1
            covering = [u for u in transcript.utterances if u.start_ms <= ms < u.end_ms]
            right += any(u.role.value == role_at(truth, ms) for u in covering)
    return right / total


@pytest.mark.parametrize(
    # Measured: 0.936, 0.912, 0.962 at first; 0.936, 0.880, 0.940 on a machine set up fresh on
    # 2026-12-04 (same code, newer installed packages). The rest is mostly Whisper's word-time edges.
    ("name", "threshold"),
    [("support", 0.92), ("customer_first", 0.86), ("sample", 0.93)],
)
def test_roles_match_the_true_timeline(
    name: str, threshold: float, request: pytest.FixtureRequest
) -> None:
    run: Run = request.getfixturevalue(name)
    accuracy = role_accuracy(run.transcript, run.truth)
    print(f"\n{name}: {accuracy:.3f} of speech time has the right role")
    assert accuracy >= threshold
    assert run.transcript.diarization == "clustered"
    assert {u.role for u in run.transcript.utterances} == {Role.AGENT, Role.CUSTOMER}
    assert all(0.0 < u.role_confidence < 1.0 for u in run.transcript.utterances)


def test_content_cues_beat_speaking_order(customer_first: Run) -> None:
    turns = customer_first.transcript.utterances
    reason = next(u for u in turns if "calling about" in u.text.lower())
    assert reason.role is Role.CUSTOMER  # the customer opened the call: order alone would fail
    greeting = next(u for u in turns if "how may i" in u.text.lower())
    assert greeting.role is Role.AGENT
    # Content decided, not order: speaking order alone gives ~0.55.
    assert min(u.role_confidence for u in turns) > 0.8


def test_labels_run_in_order_of_first_speech(support: Run) -> None:
    speakers = [s.speaker for s in support.separated.segments]
    assert speakers[0] == "A"
    assert set(speakers) == {"A", "B"}


def test_words_text_and_times_survive_separation(support: Run) -> None:
    before = [w for s in support.raw.segments for w in s.words]
    after = [w for s in support.separated.segments for w in s.words]
    assert sorted(after, key=lambda w: w.start_ms) == sorted(before, key=lambda w: w.start_ms)
    assert len(support.separated.segments) >= len(support.raw.segments)
    for segment in support.separated.segments:
        assert segment.speaker in ("A", "B")
        assert segment.text == segment.text.strip() != ""
    assert support.separated.provider == support.raw.provider  # provenance stays the ASR's


def test_separation_is_deterministic(
    support: Run, separator: ResemblyzerSeparator, tmp_path: Path
) -> None:
    call = synth_call(SUPPORT_CALL, tmp_path)
    again = ResemblyzerSeparator().separate(call.path, support.raw)
    assert again == support.separated


def test_too_little_speech_is_all_one_speaker(
    separator: ResemblyzerSeparator, tmp_path: Path
) -> None:
    call = synth_call([("agent", "Hello there.")], tmp_path)
    word = Word(text="Hello", start_ms=300, end_ms=700)
    raw = RawTranscript(
        duration_ms=call.duration_ms,
        channels=1,
        segments=[Segment(start_ms=300, end_ms=1000, text="Hello there.", words=[word])],
        provider="local-whisper",
    )
    separated = separator.separate(call.path, raw)
    assert [s.speaker for s in separated.segments] == ["A"]


def test_it_is_a_separator_and_rejects_bad_input(
    separator: ResemblyzerSeparator, support: Run, tmp_path: Path
) -> None:
    port: SpeakerSeparator = separator
    assert port.name == "local-resemblyzer"
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF but not really audio" * 10)
    with pytest.raises(InvalidAudio):
        separator.separate(junk, support.raw)
    with pytest.raises(InvalidInput):
        separator.separate(junk, support.raw, speakers=0)

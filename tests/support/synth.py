"""Deterministic synthetic two-voice calls (espeak-ng + sox) with their true speaker timeline.

Each turn is rendered by espeak-ng in its role's voice, trimmed of edge silence, and the turns are
joined with short pauses into one 16 kHz mono WAV, so the truth timeline is exact to the sample.
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

RATE = 16_000
PAUSE_MS = 450  # between turns: a natural hand-over, long enough for a VAD to see
LEAD_MS = 300
# Pitch matters: without -p the two variants sound alike to the voice encoder (measured ~0.87-0.92
# of speech time separated, against ~0.99 with these pitches).
VOICES = {
    "agent": ("-v", "en-us+m3", "-s", "160", "-p", "40"),
    "customer": ("-v", "en-gb+f4", "-s", "150", "-p", "70"),
}
# -R: repeatable (fixed seeds), -D: no dither, so the output depends only on the input.
SOX = ("sox", "-R", "-D")
# The synthesizers are Debian packages, not Python ones: `.ci/run` installs them; on a laptop
# without them the tests that speak are skipped with this reason rather than failing.
MISSING = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
NEEDS_TOOLS = f"needs {' and '.join(MISSING)} (apt install espeak-ng sox)"
PCM = ("-r", str(RATE), "-b", "16", "-e", "signed-integer", "-c", "1")


@dataclass(frozen=True)
class TruthTurn:
    role: str  # "agent" | "customer"
    start_ms: int
    end_ms: int
    text: str


@dataclass(frozen=True)
class SynthCall:
    path: Path
    truth: list[TruthTurn]

    @property
    def duration_ms(self) -> int:
        return self.truth[-1].end_ms + PAUSE_MS


# A support call the way most start: the agent greets with the company name.
SUPPORT_CALL: list[tuple[str, str]] = [
    (
        "agent",
        "Thank you for calling Northwind Telecom, my name is David. How can I help you today?",
    ),
    ("customer", "Hi David. I'm calling about my bill, I was charged twice for the same month."),
    ("agent", "I'm sorry to hear that. Can you confirm your account number for me, please?"),
    ("customer", "Sure, it is four five seven two nine one."),
    ("agent", "Thank you. Let me put you on hold for a moment while I look into your account."),
    ("customer", "Okay, no problem."),
    ("agent", "Thanks for holding. I can see the duplicate charge, and I have refunded it now."),
    ("customer", "Great. When will I get the money back?"),
    ("agent", "Within three business days. Is there anything else I can help you with?"),
    ("customer", "No, that's everything. Thanks for your help."),
    ("agent", "You're welcome. Thank you for calling Northwind Telecom, have a great day."),
]

# The customer speaks first, so speaking order points the wrong way: content cues must decide.
CUSTOMER_FIRST: list[tuple[str, str]] = [
    ("customer", "Hello? Hi, I'm calling about my bill. I want to cancel my subscription."),
    ("agent", "Thank you for calling Northwind Telecom, this is Mark. How may I help you?"),
    ("customer", "I just said, I want to cancel. My account keeps getting charged every month."),
    (
        "agent",
        "I understand. Can you verify your date of birth and the last four digits of the card?",
    ),
    (
        "customer",
        "It's the third of March, nineteen eighty, and the last four are two two one nine.",
    ),
    ("agent", "Thank you. Please bear with me while I pull up the subscription."),
    ("customer", "Fine. I have been waiting for this for weeks."),
    ("agent", "I have cancelled it today, and you will not be charged again."),
    ("customer", "Good. That is all I needed."),
]


def synth_call(script: Sequence[tuple[str, str]], dest: Path) -> SynthCall:
    """Render `script` [(role, text)] to `dest`/call.wav; returns it with the truth timeline."""
    work = dest / "turns"
    work.mkdir(parents=True, exist_ok=True)
    silence = _silence(work / "pause.wav", PAUSE_MS)
    parts: list[Path] = [_silence(work / "lead.wav", LEAD_MS)]
    truth: list[TruthTurn] = []
    clock_ms = LEAD_MS
    for index, (role, text) in enumerate(script):
        turn = _render(work, index, role, text)
        length_ms = _samples(turn) * 1000 // RATE
        truth.append(TruthTurn(role, clock_ms, clock_ms + length_ms, text))
        clock_ms += length_ms + PAUSE_MS
        parts.extend([turn, silence])
    out = dest / "call.wav"
    subprocess.run([*SOX, *map(str, parts), *PCM, str(out)], check=True)
    return SynthCall(out, truth)


def _render(work: Path, index: int, role: str, text: str) -> Path:
    """One turn in its role's voice, edge silence trimmed, cut to whole milliseconds."""
    raw, trimmed = work / f"raw-{index:02d}.wav", work / f"turn-{index:02d}.wav"
    subprocess.run(["espeak-ng", *VOICES[role], "-w", str(raw), text], check=True)
    trim = ("silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse")
    subprocess.run([*SOX, str(raw), *PCM, str(trimmed), *trim], check=True)
    whole_ms = _samples(trimmed) * 1000 // RATE
    cut = work / f"cut-{index:02d}.wav"
    subprocess.run(
        [*SOX, str(trimmed), str(cut), "trim", "0", f"{whole_ms * RATE // 1000}s"], check=True
    )
    return cut


def _silence(path: Path, ms: int) -> Path:
    samples = ms * RATE // 1000
    # The null input needs the rate too, or `trim` counts samples at sox's default 48 kHz.
    subprocess.run([*SOX, *PCM, "-n", *PCM, str(path), "trim", "0", f"{samples}s"], check=True)
    return path


def _samples(path: Path) -> int:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes()


def role_at(truth: Sequence[TruthTurn], ms: int) -> str | None:
    """The role speaking at `ms` by the truth timeline, None in a pause."""
    for turn in truth:
        if turn.start_ms <= ms < turn.end_ms:
            return turn.role
    return None

"""What the fake AssemblyAI server says a completed transcript contains, built from a script.

A script is a list of (speaker, text) turns, spoken one after the other with plausible word
timings; speakers are numbered by first appearance ("A"/"B" or channel "1"/"2").
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

DEFAULT_SCRIPT: tuple[tuple[str, str], ...] = (
    ("agent", "Thank you for calling, how can I help you today?"),
    ("customer", "Hi, my internet has been down since yesterday."),
    ("agent", "I am sorry to hear that. Let me check your line."),
    ("customer", "Thanks, I really need it for work."),
)


def completed_content(
    config: dict[str, Any], *, script: Sequence[tuple[str, str]], detected_language: str
) -> dict[str, Any]:
    """Words, utterances and metadata of a completed transcript, deterministic from the script."""
    multichannel = bool(config.get("multichannel"))
    labels = bool(config.get("speaker_labels")) and not multichannel
    turns = _timed_turns(script)
    words: list[dict[str, Any]] = []
    utterances: list[dict[str, Any]] = []
    for speaker_index, turn_words in turns:
        tag = _tags(speaker_index, multichannel=multichannel, labels=labels)
        tagged = [{**w, **tag} for w in turn_words]
        words.extend(tagged)
        text = " ".join(w["text"] for w in tagged)
        start, end = tagged[0]["start"], tagged[-1]["end"]
        confidence = round(sum(w["confidence"] for w in tagged) / len(tagged), 4)
        utterances.append(
            {"text": text, "start": start, "end": end, "confidence": confidence, **tag}
        )
        utterances[-1]["words"] = tagged
    words.sort(key=lambda w: w["start"])
    last_end = max((w["end"] for w in words), default=0)
    detected = config.get("language_detection") and not config.get("language_code")
    models = config.get("speech_models") or ["universal"]
    return {
        "text": " ".join(w["text"] for w in words),
        "words": words,
        "utterances": utterances if (multichannel or labels) else None,
        "confidence": round(sum(w["confidence"] for w in words) / max(len(words), 1), 4),
        "audio_duration": (last_end + 999) // 1000 + 1,  # whole seconds, an int like the real API
        "language_code": detected_language if detected else config.get("language_code", "en_us"),
        "language_confidence": 0.97 if detected else None,
        "audio_channels": 2 if multichannel else None,
        "speech_model_used": models[0],
    }


def _tags(speaker_index: int, *, multichannel: bool, labels: bool) -> dict[str, str]:
    if multichannel:
        channel = str(speaker_index + 1)
        return {"channel": channel, "speaker": channel}
    if labels:
        return {"speaker": chr(ord("A") + speaker_index)}
    return {}


def _timed_turns(script: Sequence[tuple[str, str]]) -> list[tuple[int, list[dict[str, Any]]]]:
    """(speaker index, words with start/end ms and confidence) per turn, one after the other."""
    speakers: dict[str, int] = {}
    clock = 500
    turns: list[tuple[int, list[dict[str, Any]]]] = []
    counter = itertools.count()
    for speaker, text in script:
        index = speakers.setdefault(speaker, len(speakers))
        words = []
        for token in text.split():
            end = clock + 200 + 30 * len(token)
            confidence = round(0.9 + (next(counter) % 10) / 100, 2)
            words.append({"text": token, "start": clock, "end": end, "confidence": confidence})
            clock = end + 60
        if words:
            turns.append((index, words))
        clock += 400
    return turns

"""Turn a submitted text transcript into timed segments the rest of the pipeline understands."""

from __future__ import annotations

import re

from pipeline.errors import InvalidInput
from schemas.api import TranscriptTurn
from schemas.transcript import Segment

_LABEL = re.compile(r"^\s*([A-Za-z][\w .'-]{0,40}?)\s*:\s*(.*)$")
MS_PER_WORD = 400  # ~150 words per minute, a typical conversational pace
GAP_MS = 300


def parse_text(text: str) -> list[TranscriptTurn]:
    """`Agent: …` / `Customer: …` lines to turns; a line without a label continues the last turn."""
    turns: list[TranscriptTurn] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        match = _LABEL.match(line)
        if match and match.group(2).strip():
            turns.append(
                TranscriptTurn(speaker=match.group(1).strip(), text=match.group(2).strip())
            )
        elif turns:
            last = turns[-1]
            turns[-1] = TranscriptTurn(speaker=last.speaker, text=f"{last.text} {line.strip()}")
        else:
            raise InvalidInput("the transcript must start with a 'Speaker: text' line")
    if not turns:
        raise InvalidInput("the transcript is empty")
    return turns


def turns_to_segments(turns: list[TranscriptTurn]) -> list[Segment]:
    """Segments with the given times, or times estimated from word counts where none were given."""
    segments: list[Segment] = []
    clock = 0
    for turn in turns:
        start = turn.start_ms if turn.start_ms is not None else clock
        estimated = start + max(1, len(turn.text.split())) * MS_PER_WORD
        end = turn.end_ms if turn.end_ms is not None and turn.end_ms >= start else estimated
        segments.append(Segment(start_ms=start, end_ms=end, text=turn.text, speaker=turn.speaker))
        clock = end + GAP_MS
    return segments

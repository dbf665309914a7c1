"""How the analyze stage's local work grows with transcript size: metrics, lexicon sentiment and the
local analyzer on generated calls of 10, 50, 100 and 200 KB (JSON), timed on this machine.

Prints, per size: utterances, wall seconds, CPU seconds (this process, all threads: on a shared
machine wall time also counts others' load), CPU seconds per KB and the process's peak RSS so far.
The figures and the limits derived from them are in docs/limits.md.

    .venv/bin/python bench/analysis_scaling.py                   # windows as configured
    .venv/bin/python bench/analysis_scaling.py --window 0        # the whole call at once
    .venv/bin/python bench/analysis_scaling.py --sizes 10 400
"""

from __future__ import annotations

import argparse
import json
import resource
import time

from _support import ROOT  # noqa: F401  (puts the repository on sys.path)

from pipeline.adapters.local_analysis import LocalAnalyzer
from pipeline.adapters.vader import VaderScorer
from pipeline.ports import AnalysisRequest
from pipeline.rules.metrics import compute_metrics
from pipeline.rules.sentiment import sentiment_report
from pipeline.settings import get_settings
from schemas.common import Role
from schemas.tenant import ClientContext
from tests.support.analysis_calls import transcript_from_lines
from tests.support.analysis_labels import REALISTIC_CALL


def call_lines(kilobytes: int) -> list[tuple[Role, str]]:
    """The realistic call repeated until its JSON turns reach `kilobytes` KB."""
    lines: list[tuple[Role, str]] = []
    size = 0
    while size < kilobytes * 1024:
        role, text = REALISTIC_CALL[len(lines) % len(REALISTIC_CALL)]
        lines.append((role, text))
        size += len(json.dumps({"speaker": role.value, "text": text})) + 2
    return lines


def measure(analyzer: LocalAnalyzer, kilobytes: int) -> tuple[int, float, float]:
    transcript = transcript_from_lines(call_lines(kilobytes))
    started, cpu = time.perf_counter(), time.process_time()
    metrics = compute_metrics(transcript)
    sentiment = sentiment_report(transcript, VaderScorer())
    request = AnalysisRequest(
        transcript=transcript, metrics=metrics, sentiment=sentiment, context=ClientContext()
    )
    analyzer.analyze(request)
    wall = time.perf_counter() - started
    return len(transcript.utterances), wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 100, 200])
    parser.add_argument(
        "--window", type=int, default=None, help="utterances per window (0: whole call)"
    )
    args = parser.parse_args()
    window = get_settings().analysis_window_utterances if args.window is None else args.window
    analyzer = LocalAnalyzer(window_utterances=window)
    started = time.perf_counter()
    measure(analyzer, 1)  # load the model once, outside the figures
    print(f"model load and warm-up: {time.perf_counter() - started:.1f} s; window {window}")
    print(f"{'KB':>6} {'utterances':>10} {'wall s':>8} {'CPU s':>8} {'CPU s/KB':>8} {'RSS MB':>7}")
    for kilobytes in args.sizes:
        count, wall, cpu = measure(analyzer, kilobytes)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{kilobytes:>6} {count:>10} {wall:>8.1f} {cpu:>8.1f} {cpu / kilobytes:>8.3f} {peak:>7.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()

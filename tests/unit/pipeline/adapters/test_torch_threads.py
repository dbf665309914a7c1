"""Local models get the configured torch thread count in their process (not one per core)."""

from __future__ import annotations

import subprocess
import sys


def test_the_local_analyzer_runs_on_the_configured_threads() -> None:
    # A fresh process: torch's thread count is per process and the test runner's may be set.
    code = (
        "import torch; from pipeline.settings import Settings;"
        "from pipeline.adapters.providers import analyzer_from_settings;"
        "before = torch.get_num_threads();"
        "analyzer_from_settings(Settings(torch_threads=1), 'local');"
        "print(before, torch.get_num_threads())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = map(int, out.stdout.split())
    assert after == 1
    assert before >= 1

"""The tenant option `dedupe` as HTTP sees it: the header naming the job a duplicate returned.

The rule itself (match by content hash or external_id) lives in pipeline/submission.py.
"""

from __future__ import annotations

from pipeline.submission import DuplicateJob

DUPLICATE_OF = "Callintel-Duplicate-Of"

__all__ = ["DUPLICATE_OF", "DuplicateJob"]

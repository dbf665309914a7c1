"""Rule engine over schemas: call metrics, sentiment, rules, scorecards v2, packs and risk.

`RULES_VERSION` is recorded in a result's provenance; bump it whenever a rule changes an outcome.
"""

from __future__ import annotations

RULES_VERSION = "2026.11.4"

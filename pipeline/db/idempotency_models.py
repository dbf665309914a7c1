"""idempotency_models (being written)."""

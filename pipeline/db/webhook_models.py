"""webhook_models (being written)."""

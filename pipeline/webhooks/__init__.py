"""Webhooks, the domain half: endpoints, events, the SSRF policy and durable delivery (no Flask/Celery)."""

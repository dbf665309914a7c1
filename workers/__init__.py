"""Celery: the app, the base task policy, thin stage tasks, the chain and maintenance (beat) tasks."""

"""The domain: stages, rules, ports and adapters. Imports neither Flask nor Celery."""

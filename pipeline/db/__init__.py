"""Persistence: SQLAlchemy 2.0 models, engine/session helpers and Alembic migrations."""

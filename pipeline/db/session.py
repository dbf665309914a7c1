"""Engines and sessions. Build engines per process (after fork): a pooled connection never crosses fork."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with `pool_pre_ping` (a restarted database costs one failed ping, not a 500).

    PostgreSQL only: `make run` and the tests start an embedded one when no server is given
    (docs/embedded-services.md says why one engine).
    """
    if not url.startswith("postgresql"):
        raise ValueError(
            "DATABASE_URL must be a PostgreSQL URL (postgresql+psycopg://user@host:port/db); "
            "`make run` starts an embedded PostgreSQL when DATABASE_URL is not set"
        )
    if "poolclass" in kwargs:
        return create_engine(url, **kwargs)
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session], *, durable: bool = True) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception.

    `durable=False` lets PostgreSQL acknowledge the commit before its WAL reaches disk: for
    bookkeeping whose loss in a crash only means redoing idempotent work (stage start/finish
    marks), never for results or job creation. A lost commit is never a corrupt one.
    """
    with factory() as session, session.begin():
        if not durable:
            session.execute(text("SET LOCAL synchronous_commit TO OFF"))
        yield session

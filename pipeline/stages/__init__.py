"""The five pipeline stages. Each `run(envelope, ctx)` reads earlier artifacts and returns its own."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel


@dataclass(frozen=True)
class StageOutput:
    artifact: BaseModel
    provider: str | None = None
    model: str | None = None

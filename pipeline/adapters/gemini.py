"""Gemini behind the Analyzer port: one client per instance, one request per transcript chunk,
structured JSON output validated here, and every SDK or transport error translated at this boundary.

Retries: none in the SDK. Celery retries TransientError (429, 5xx, timeouts); invalid model output
is asked for again here, at most `output_attempts` requests per chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import httpx2
from google import genai
from google.genai import errors, types
from pydantic import ValidationError

from pipeline.analysis.prompt import build_prompt, chunk_utterances, merge, prompt_hash
from pipeline.errors import PermanentError, PipelineError, ProviderRejected, TransientError
from pipeline.metrics import provider_call
from pipeline.ports import AnalysisRequest
from schemas.analysis import Insights, SemanticAnswer
from schemas.llm import LlmAnalysis

INVALID_OUTPUT = "analyzer_invalid_output"
# The SDK sends with httpx2 by default and with httpx when GOOGLE_GENAI_HTTP_CLIENT=httpx.
_TIMEOUTS = (httpx.TimeoutException, httpx2.TimeoutException, TimeoutError)
# Everything else the transport can raise: the connection failed or broke mid-request.
_TRANSPORT = (httpx.TransportError, httpx2.TransportError, ConnectionError)
# The SDK raised while reading a reply (not JSON, an interrupted continuation): the next try may work.
_GARBLED = (errors.UnknownApiResponseError, errors.ContinuationInterruptedError)


def _api_error(exc: errors.APIError) -> PipelineError:
    """Branch on the HTTP code, not the class: a pickled ClientError comes back as APIError."""
    code = exc.code if isinstance(exc.code, int) else 0
    label = f"Gemini answered {code} {exc.status or ''}".rstrip()
    if code == 429:
        return TransientError(f"{label}: rate limited", code="provider_rate_limited")
    if code == 408:
        return TransientError(f"{label}: request timeout", code="provider_timeout")
    if code >= 500 or code == 0:
        return TransientError(f"{label}: provider unavailable", code="provider_unavailable")
    if code in (401, 403) or _bad_key(exc):
        return ProviderRejected(f"{label}: the API key was refused", code="provider_auth")
    return ProviderRejected(f"{label}: request refused", code="provider_rejected")


def _bad_key(exc: errors.APIError) -> bool:
    """Google answers a bad key with 400 INVALID_ARGUMENT, not 401: look at the message/reason."""
    message = exc.message if isinstance(exc.message, str) else ""
    return "api key" in message.lower() or "API_KEY_INVALID" in str(exc.details)


def translate_error(exc: BaseException) -> PipelineError:
    """The PipelineError for anything calling Gemini raised. Messages carry codes and class names
    only: never the key, the prompt or the provider's free text (which may echo the prompt)."""
    if isinstance(exc, PipelineError):
        return exc
    if isinstance(exc, errors.APIError):
        return _api_error(exc)
    name = type(exc).__name__
    if isinstance(exc, _TIMEOUTS):
        return TransientError(f"Gemini timed out ({name})", code="provider_timeout")
    if isinstance(exc, (*_TRANSPORT, *_GARBLED, httpx.HTTPError, httpx2.HTTPError)):
        return TransientError(f"Gemini unreachable ({name})", code="provider_unavailable")
    return PermanentError(f"Gemini call failed ({name})", code="analyzer_error")


@dataclass
class _Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    calls: int = 0

    def add(self, usage: types.GenerateContentResponseUsageMetadata | None) -> None:
        self.calls += 1
        if usage is not None:
            self.input_tokens += usage.prompt_token_count or 0
            # Thinking tokens are billed at the output price.
            self.output_tokens += (usage.candidates_token_count or 0) + (
                usage.thoughts_token_count or 0
            )


class GeminiAnalyzer:
    """Analyzer on the Gemini API. Build one per process and keep it: the client owns the
    connection pool, and a dropped client closes connections a later call would use."""

    name = "gemini"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None,
        model: str,
        timeout_s: float,
        output_attempts: int,
        chunk_chars: int,
        usd_per_mtok_in: float,
        usd_per_mtok_out: float,
        batch_discount: float = 0.5,
    ) -> None:
        self.model = model
        self._attempts = max(1, output_attempts)
        self._chunk_chars = chunk_chars
        self._prices = (usd_per_mtok_in, usd_per_mtok_out)
        self._batch_price = batch_discount
        # No retry_options: the SDK must not retry under Celery's retries.
        options = types.HttpOptions(base_url=base_url, timeout=round(timeout_s * 1000))
        self._client = genai.Client(api_key=api_key, http_options=options)
        self._config = types.GenerateContentConfig(
            response_mime_type="application/json", response_schema=LlmAnalysis, temperature=0
        )

    def close(self) -> None:
        """Close the client's connections (a process keeps its analyzer; tests close theirs)."""
        self._client.close()

    def analyze(self, request: AnalysisRequest) -> Insights:
        """One request per chunk of the transcript, merged. Raises TransientError (retry later),
        ProviderRejected, or PermanentError(analyzer_invalid_output)."""
        prompts = self._prompts(request)
        if not prompts:  # nothing was said: there is nothing to ask the model about
            return self._unanswered(request)
        usage = _Usage()
        parts = [self._analyze_part(prompt, usage) for prompt in prompts]
        return self._insights(parts, request, usage)

    def _prompts(self, request: AnalysisRequest) -> list[str]:
        """The prompts of the request, one per chunk: the same for the synchronous and batch paths."""
        chunks = chunk_utterances(request.transcript.utterances, max_chars=self._chunk_chars)
        return [
            build_prompt(request, chunk=chunk, part=n, parts=len(chunks))
            for n, chunk in enumerate(chunks, start=1)
        ]

    def _unanswered(self, request: AnalysisRequest) -> Insights:
        unanswered = [SemanticAnswer(id=q.id, answer="na") for q in request.questions]
        return Insights(provider=self.name, model=self.model, semantic=unanswered)

    def _insights(
        self, parts: list[LlmAnalysis], request: AnalysisRequest, usage: _Usage, *, price: float = 1
    ) -> Insights:
        """Merged parts with usage and cost; `price` < 1 is a discount (the Batch API's)."""
        insights = merge(parts, request, provider=self.name, model=self.model)
        full = (usage.input_tokens * self._prices[0] + usage.output_tokens * self._prices[1]) / 1e6
        cost = round(full * price, 8)
        return insights.model_copy(
            update={
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "calls": usage.calls,
                "estimated_cost_usd": cost,
                "batch_saved_usd": round(full - cost, 8) if price < 1 else 0.0,
                "prompt_hash": prompt_hash(),
            }
        )

    def _analyze_part(self, prompt: str, usage: _Usage) -> LlmAnalysis:
        """Ask until the reply validates, `output_attempts` requests at most."""
        for _ in range(self._attempts):
            response = self._generate(prompt)
            usage.add(response.usage_metadata)
            try:
                # Validate the text ourselves: response.parsed turns invalid JSON into None.
                return LlmAnalysis.model_validate_json(response.text or "")
            except ValidationError:
                continue
        raise PermanentError(
            f"Gemini output failed validation {self._attempts} times", code=INVALID_OUTPUT
        )

    def _generate(self, prompt: str) -> types.GenerateContentResponse:
        with provider_call(self.name, "generate"):
            try:
                return self._client.models.generate_content(
                    model=self.model, contents=prompt, config=self._config
                )
            except Exception as exc:  # the port boundary: only pipeline errors leave this adapter
                raise translate_error(exc) from exc

    # The Batch API (docs/batches.md, "Nightly economy"): the same prompts and config as `analyze`,
    # one inlined request per chunk, answered within 24 h at the batch price.

    def submit_batch(self, request: AnalysisRequest) -> str:
        """Create a batch job for the request's prompts; its name ("batches/…") is returned."""
        prompts = self._prompts(request)
        if not prompts:
            raise PermanentError("nothing to analyze in a batch", code="analyzer_error")
        inlined = [
            types.InlinedRequest(contents=prompt, config=self._config, metadata={"part": str(n)})
            for n, prompt in enumerate(prompts, start=1)
        ]
        with provider_call(self.name, "batch_submit"):
            try:
                job = self._client.batches.create(model=self.model, src=inlined)
            except Exception as exc:  # the port boundary: only pipeline errors leave this adapter
                raise translate_error(exc) from exc
        if not job.name:
            raise TransientError("Gemini created a batch without a name", code=BATCH_GARBLED)
        return job.name

    def check_batch(self, name: str, request: AnalysisRequest) -> Insights | None:
        """One status request: the insights when the batch succeeded, None while it waits or runs.

        A batch that failed, was cancelled or expired raises ProviderRejected; an answer that does
        not validate is PermanentError(analyzer_invalid_output) (a batch is not asked twice).
        """
        with provider_call(self.name, "batch_check"):
            try:
                job = self._client.batches.get(name=name)
            except Exception as exc:  # the port boundary: only pipeline errors leave this adapter
                raise translate_error(exc) from exc
        state = job.state
        if state in _BATCH_ENDED:
            raise ProviderRejected(f"Gemini batch ended {state.value}", code=_BATCH_ENDED[state])
        if state is not types.JobState.JOB_STATE_SUCCEEDED:
            return None
        usage = _Usage()
        parts = [
            _batch_part(answer, usage) for answer in _answers(job, len(self._prompts(request)))
        ]
        return self._insights(parts, request, usage, price=self._batch_price)


BATCH_GARBLED = "gemini_batch_garbled"
_BATCH_ENDED = {
    types.JobState.JOB_STATE_FAILED: "gemini_batch_failed",
    types.JobState.JOB_STATE_CANCELLED: "gemini_batch_cancelled",
    types.JobState.JOB_STATE_EXPIRED: "gemini_batch_expired",
}


def _answers(job: types.BatchJob, expected: int) -> list[types.InlinedResponse]:
    """The inlined answers of a succeeded batch, one per prompt, in the prompts' order."""
    answers = list(job.dest.inlined_responses or []) if job.dest else []
    if len(answers) != expected:
        raise ProviderRejected(
            f"Gemini batch answered {len(answers)} of {expected} requests", code=BATCH_GARBLED
        )
    return sorted(answers, key=_part_number)


def _part_number(answer: types.InlinedResponse) -> int:
    """The chunk an answer belongs to (the metadata we sent); 0 keeps Google's order."""
    part = str((answer.metadata or {}).get("part", ""))
    return int(part) if part.isdigit() else 0


def _batch_part(answer: types.InlinedResponse, usage: _Usage) -> LlmAnalysis:
    """Validated like the synchronous path (the text, never `.parsed`, which batches leave empty)."""
    if answer.error is not None or answer.response is None:
        code = answer.error.code if answer.error else None
        raise ProviderRejected(
            f"Gemini refused a batch request ({code})", code="gemini_batch_item_failed"
        )
    usage.add(answer.response.usage_metadata)
    try:
        return LlmAnalysis.model_validate_json(answer.response.text or "")
    except ValidationError as exc:
        raise PermanentError("Gemini batch output failed validation", code=INVALID_OUTPUT) from exc

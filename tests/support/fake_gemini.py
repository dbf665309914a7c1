"""A fake Gemini REST server on 127.0.0.1 that the real google-genai SDK talks to.

It speaks `POST /{v1,v1beta}/models/{model}:generateContent`, checks `x-goog-api-key` (a bad key gets
Google's 400 INVALID_ARGUMENT), and by default answers VALID structured output derived from the
prompt: it cites the first transcript line it sees and answers "yes" to every `[q:<id>]` question.
Scripted steps replace the next replies: INVALID_JSON, SCHEMA_INVALID, `status(429)`, `delay(2.0)`,
`reply({...})`. Thread-safe and concurrent (one thread per connection, keep-alive, big backlog).

The Batch API as the SDK speaks it (Developer API, not Vertex): `POST /v1beta/models/{model}:
batchGenerateContent` with `{"batch": {"inputConfig": {"requests": {"requests": [{"request": …,
"metadata": …}]}}}}` answers a long-running operation named `batches/{id}`, and `GET /v1beta/
batches/{id}` reports `metadata.state` (BATCH_STATE_*); a succeeded one carries
`metadata.output.inlinedResponses.inlinedResponses`. A scripted step applies to the create request
(`status(429)`); `batch_plan(...)` decides how the next batch created goes: how many status checks
find it pending, then its final state and the answers' text.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.http_server import serving

API_KEY = "fake-gemini-key"
PATH = re.compile(r"^/(v1|v1beta)/models/([^/:]+):generateContent$")
BATCH_CREATE = re.compile(r"^/(v1|v1beta)/models/([^/:]+):batchGenerateContent$")
BATCH_GET = re.compile(r"^/(v1|v1beta)/(batches/[^/:?]+)$")
BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
UTTERANCE = re.compile(r"^\[([^\s\]]+) [\d.]+s [^\]]+\] (.*)$", re.MULTILINE)
QUESTION = re.compile(r"^\[q:([^\]]+)\]", re.MULTILINE)
FIRST_INTENT = re.compile(r"^INTENT TAXONOMY:\n- ([^\s:]+)", re.MULTILINE)
BAD_KEY_BODY = {
    "error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ],
    }
}
STATUS_TEXT = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    403: ("PERMISSION_DENIED", "Permission denied."),
    404: ("NOT_FOUND", "Model not found."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: ("INTERNAL", "An internal error has occurred."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
}


@dataclass(frozen=True)
class Step:
    """One scripted reply: an HTTP status, a model text, and/or a delay before answering."""

    status: int = 200
    text: str | None = None  # None: the default valid answer
    delay_s: float = 0.0


INVALID_JSON = Step(text='{"summary": "unterminated')
SCHEMA_INVALID = Step(text=json.dumps({"summary": 42, "intents": "billing"}))


def status(code: int) -> Step:
    return Step(status=code)


def delay(seconds: float) -> Step:
    return Step(delay_s=seconds)


def reply(payload: dict[str, Any] | str) -> Step:
    return Step(text=payload if isinstance(payload, str) else json.dumps(payload))


@dataclass(frozen=True)
class BatchPlan:
    """How one batch job goes: `pending_checks` status requests find it pending (then running),
    the next ones find `final` (BATCH_STATE_SUCCEEDED, _FAILED, _CANCELLED, _EXPIRED)."""

    pending_checks: int = 1
    final: str = "BATCH_STATE_SUCCEEDED"
    text: str | None = None  # None: the default valid answer to each inlined request


@dataclass
class FakeBatch:
    name: str
    model: str
    requests: list[dict[str, Any]]  # the inlined requests as sent ({"request": …, "metadata": …})
    plan: BatchPlan
    checks: int = 0

    @property
    def prompts(self) -> list[str]:
        return [r["request"]["contents"][0]["parts"][0]["text"] for r in self.requests]


@dataclass(frozen=True)
class Recorded:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any

    @property
    def prompt(self) -> str:
        text: str = self.body["contents"][0]["parts"][0]["text"]
        return text

    @property
    def model(self) -> str:
        match = PATH.match(self.path) or BATCH_CREATE.match(self.path)
        return match.group(2) if match else ""


@dataclass(frozen=True)
class Usage:
    prompt: int = 1000
    candidates: int = 200
    thoughts: int = 50


def valid_answer(prompt: str) -> dict[str, Any]:
    """Schema-valid output grounded in the prompt: real ids, exact quotes, every question."""
    lines = UTTERANCE.findall(prompt)
    questions = QUESTION.findall(prompt)
    intent = FIRST_INTENT.search(prompt)
    if not lines:
        answers = [_answer(q, "na", "", "") for q in questions]
        return _analysis("No speech.", [], [], answers, intent)
    (first_id, first_text), (last_id, last_text) = lines[0], lines[-1]
    first_quote, last_quote = _quote(first_text), _quote(last_text)
    violation = _finding("missing_disclosure", "high", first_id, first_quote)
    risk = _finding("churn_risk", "medium", last_id, last_quote)
    answers = [_answer(q, "yes", first_id, first_quote) for q in questions]
    summary = f"Part from {first_id} to {last_id}, {len(lines)} utterances."
    return _analysis(summary, [violation], [risk], answers, intent)


def _quote(text: str) -> str:
    return " ".join(text.split()[:6])


def _finding(code: str, severity: str, utterance_id: str, quote: str) -> dict[str, Any]:
    return {
        "code": code,
        "description": f"{code} seen in {utterance_id}",
        "severity": severity,
        "utterance_id": utterance_id,
        "quote": quote,
    }


def _answer(question_id: str, answer: str, utterance_id: str, quote: str) -> dict[str, Any]:
    rationale = f"{answer} because of {utterance_id or 'nothing'}"
    return {
        "id": question_id,
        "answer": answer,
        "rationale": rationale,
        "utterance_id": utterance_id,
        "quote": quote,
    }


def _analysis(
    summary: str,
    violations: list[dict[str, Any]],
    risks: list[dict[str, Any]],
    answers: list[dict[str, Any]],
    intent: re.Match[str] | None,
) -> dict[str, Any]:
    return {
        "summary": summary,
        "intents": [{"name": intent.group(1) if intent else "general_inquiry", "confidence": 0.8}],
        "topics": ["billing"],
        "action_items": ["Send a follow-up email"],
        "outcome": "resolved",
        "violations": violations,
        "risk_factors": risks,
        "answers": answers,
    }


def error_body(code: int) -> dict[str, Any]:
    name, message = STATUS_TEXT.get(code, ("UNKNOWN", "Error."))
    return {"error": {"code": code, "message": message, "status": name}}


@dataclass
class FakeGemini:
    api_key: str = API_KEY
    latency_s: float = 0.0  # every reply waits this long (benchmarks: many slow calls at once)
    usage: Usage = field(default_factory=Usage)
    model_version: str = "gemini-fake-001"
    requests: list[Recorded] = field(default_factory=list)
    connections: int = 0
    batches: dict[str, FakeBatch] = field(default_factory=dict)
    _plans: deque[BatchPlan] = field(default_factory=deque)
    _script: deque[Step] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "the fake is not running"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def queue(self, step: Step, *, times: int = 1) -> None:
        """The next `times` replies (after any already queued) follow `step`."""
        with self._lock:
            self._script.extend([step] * times)

    def batch_plan(self, plan: BatchPlan, *, times: int = 1) -> None:
        """The next `times` batches created (after any already planned) follow `plan`."""
        with self._lock:
            self._plans.extend([plan] * times)

    @property
    def prompts(self) -> list[str]:
        """Prompts of synchronous requests (batch prompts: `batches[name].prompts`)."""
        with self._lock:
            return [r.prompt for r in self.requests if PATH.match(r.path)]

    def record(self, request: Recorded) -> Step | None:
        """Store the request; the scripted step to answer it with (None when the key is bad)."""
        with self._lock:
            self.requests.append(request)
            if request.headers.get("x-goog-api-key") != self.api_key:
                return None
            return self._script.popleft() if self._script else Step()

    def count_connection(self) -> None:
        with self._lock:
            self.connections += 1

    def wait(self, seconds: float) -> None:
        if seconds > 0:
            self._stop.wait(seconds)

    def answer(self, step: Step, prompt: str) -> tuple[int, dict[str, Any]]:
        self.wait(self.latency_s + step.delay_s)
        if step.status != 200:
            return step.status, error_body(step.status)
        text = step.text if step.text is not None else json.dumps(valid_answer(prompt))
        return 200, self._generate_response(text)

    def _generate_response(self, text: str) -> dict[str, Any]:
        u = self.usage
        candidate = {
            "content": {"parts": [{"text": text}], "role": "model"},
            "finishReason": "STOP",
        }
        return {
            "candidates": [candidate],
            "usageMetadata": {
                "promptTokenCount": u.prompt,
                "candidatesTokenCount": u.candidates,
                "thoughtsTokenCount": u.thoughts,
                "totalTokenCount": u.prompt + u.candidates + u.thoughts,
            },
            "modelVersion": self.model_version,
        }

    def create_batch(self, model: str, body: Any) -> tuple[int, dict[str, Any]]:
        try:
            inlined = body["batch"]["inputConfig"]["requests"]["requests"]
            ok = bool(inlined) and all(_well_formed(r["request"]) for r in inlined)
        except (KeyError, TypeError):
            ok = False
        if not ok:
            return 400, error_body(400)
        with self._lock:
            name = f"batches/fake{len(self.batches) + 1:04d}"
            plan = self._plans.popleft() if self._plans else BatchPlan()
            self.batches[name] = FakeBatch(name, f"models/{model}", inlined, plan)
            return 200, self._operation(self.batches[name], "BATCH_STATE_PENDING")

    def get_batch(self, name: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            batch = self.batches.get(name)
            if batch is None:
                return 404, error_body(404)
            batch.checks += 1
            if batch.checks <= batch.plan.pending_checks:
                state = "BATCH_STATE_PENDING" if batch.checks == 1 else "BATCH_STATE_RUNNING"
                return 200, self._operation(batch, state)
            return 200, self._operation(batch, batch.plan.final)

    def _operation(self, batch: FakeBatch, state: str) -> dict[str, Any]:
        """The long-running operation Google answers for a batch (create and get alike)."""
        metadata: dict[str, Any] = {
            "@type": BATCH_TYPE,
            "model": batch.model,
            "name": batch.name,
            "createTime": "2026-12-04T20:00:00Z",
            "updateTime": "2026-12-04T20:00:01Z",
            "batchStats": {"requestCount": str(len(batch.requests))},
            "state": state,
        }
        operation: dict[str, Any] = {"name": batch.name, "metadata": metadata}
        if state == "BATCH_STATE_SUCCEEDED":
            output = {"inlinedResponses": {"inlinedResponses": self._batch_answers(batch)}}
            metadata["output"] = output
            operation |= {"done": True, "response": {"@type": BATCH_TYPE + "Output", **output}}
        elif state in ("BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED"):
            operation |= {"done": True}
        return operation

    def _batch_answers(self, batch: FakeBatch) -> list[dict[str, Any]]:
        answers = []
        for request, prompt in zip(batch.requests, batch.prompts, strict=True):
            text = batch.plan.text or json.dumps(valid_answer(prompt))
            answer = {"response": self._generate_response(text)}
            if "metadata" in request:
                answer["metadata"] = request["metadata"]
            answers.append(answer)
        return answers

    @contextmanager
    def running(self) -> Iterator[FakeGemini]:
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        with serving(self._server, stop=self._stop):
            yield self


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # a benchmark opens hundreds of connections at once


def _handler(owner: FakeGemini) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like Google: shows whether a client is reused
        timeout = 60  # an idle keep-alive connection is closed eventually

        def setup(self) -> None:
            super().setup()
            owner.count_connection()

        def do_GET(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            step = owner.record(Recorded(self.path, headers, None))
            if step is None:
                return self._send(400, BAD_KEY_BODY)
            match = BATCH_GET.match(self.path)
            if match is None:
                return self._send(404, error_body(404))
            owner.wait(owner.latency_s + step.delay_s)
            if step.status != 200:
                return self._send(step.status, error_body(step.status))
            return self._send(*owner.get_batch(match.group(2)))

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            body = json.loads(raw or b"null")
            step = owner.record(Recorded(self.path, headers, body))
            if step is None:
                return self._send(400, BAD_KEY_BODY)
            batch = BATCH_CREATE.match(self.path)
            if batch is not None:
                owner.wait(owner.latency_s + step.delay_s)
                if step.status != 200:
                    return self._send(step.status, error_body(step.status))
                return self._send(*owner.create_batch(batch.group(2), body))
            if not PATH.match(self.path):
                return self._send(404, error_body(404))
            if not _well_formed(body):
                return self._send(400, error_body(400))
            code, payload = owner.answer(step, body["contents"][0]["parts"][0]["text"])
            return self._send(code, payload)

        def _send(self, code: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up (its timeout): nothing to answer
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _well_formed(body: Any) -> bool:
    """What the real API insists on for our calls: a text prompt and a JSON response type."""
    try:
        text = body["contents"][0]["parts"][0]["text"]
        mime = body["generationConfig"]["responseMimeType"]
    except (KeyError, IndexError, TypeError):
        return False
    return isinstance(text, str) and mime == "application/json"


@contextmanager
def fake_gemini(
    *, api_key: str = API_KEY, latency_s: float = 0.0, usage: Usage | None = None
) -> Iterator[FakeGemini]:
    fake = FakeGemini(api_key=api_key, latency_s=latency_s, usage=usage or Usage())
    with fake.running() as running:
        yield running

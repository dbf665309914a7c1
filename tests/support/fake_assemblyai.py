"""A fake AssemblyAI REST server on 127.0.0.1 (v2 upload, transcript submit and get) for the real SDK.

Usage: `with FakeAssemblyAI(api_key="k", script=TURNS, complete_after_s=0) as fake: fake.url`.
Transcripts are built deterministically from `script`, a list of (speaker, text) turns: speakers are
numbered by first appearance, "A"/"B" with speaker_labels, channel "1"/"2" with multichannel, and
neither option gives words only (no utterances), as the real API does.

Faults, keyed by route ("upload" = POST /v2/upload, "submit" = POST /v2/transcript,
"get" = GET /v2/transcript/{id}):
- `fail_next(route, status=503, times=1)`: the next `times` requests get that HTTP status.
- `hang_next(route, times=1)`: the next `times` requests get no answer for `hang_s` seconds.
- `error_next(message, times=1)`: the next `times` submitted transcripts end in status "error".
- `complete_now(transcript_id)`: finish a transcript at once (tests need no sleeping).
A transcript reports "queued" for `queued_s` (default: half of `complete_after_s`), then "processing".

Every request is recorded (`requests`); uploaded bytes are kept by upload URL (`uploads`). A
transcript with `webhook_url` is announced there when it finishes, as AssemblyAI does:
`{"transcript_id", "status"}` with the requested auth header; attempts land in `webhook_deliveries`.
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from tests.support.fake_assemblyai_content import DEFAULT_SCRIPT, completed_content

ROUTES = ("upload", "submit", "get")
AUTH_ERROR = "Authentication error, API token missing/invalid"
_STATUS_ERRORS = {
    400: "Invalid request",
    401: AUTH_ERROR,
    403: "Forbidden",
    429: "Too Many Requests: rate limit exceeded",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    json: Any  # the parsed JSON body, None for uploads and GETs


@dataclass(frozen=True)
class WebhookDelivery:
    url: str
    headers: dict[str, str]
    payload: dict[str, str]
    status: int | None  # the receiver's HTTP status, None when it could not be reached


@dataclass
class _Fault:
    status: int | None  # None: hang
    times: int


@dataclass
class _Job:
    id: str
    config: dict[str, Any]
    submitted: float  # time.monotonic()
    due: float  # when it completes (or errors)
    error: str | None
    announced: bool = False  # the completion webhook was sent


class FakeAssemblyAI:
    """A thread-safe fake of AssemblyAI's async transcription API; see the module docstring."""

    def __init__(
        self,
        *,
        api_key: str = "test-aai-key",
        script: Sequence[tuple[str, str]] = DEFAULT_SCRIPT,
        complete_after_s: float = 0.0,
        queued_s: float | None = None,
        detected_language: str = "en",
        hang_s: float = 10.0,
    ) -> None:
        self.api_key = api_key
        self.script = list(script)
        self.complete_after_s = complete_after_s
        self.queued_s = complete_after_s / 2 if queued_s is None else queued_s
        self.detected_language = detected_language
        self.hang_s = hang_s
        self.uploads: dict[str, bytes] = {}
        self._requests: list[RecordedRequest] = []
        self._deliveries: list[WebhookDelivery] = []
        self._jobs: dict[str, _Job] = {}
        self._faults: dict[str, list[_Fault]] = {route: [] for route in ROUTES}
        self._errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self._webhooks = _WebhookScheduler(self._announce)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        with self._lock:
            return list(self._deliveries)

    def fail_next(self, route: str, *, status: int, times: int = 1) -> None:
        self._add_fault(route, _Fault(status=status, times=times))

    def hang_next(self, route: str, *, times: int = 1) -> None:
        self._add_fault(route, _Fault(status=None, times=times))

    def error_next(self, message: str, *, times: int = 1) -> None:
        with self._lock:
            self._errors.extend([message] * times)

    def complete_now(self, transcript_id: str) -> None:
        with self._lock:
            job = self._jobs[transcript_id]
            job.due = min(job.due, time.monotonic())
        if job.config.get("webhook_url"):
            self._webhooks.schedule(job.due, job.id)

    def __enter__(self) -> FakeAssemblyAI:
        self._thread.start()
        self._webhooks.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()  # releases hanging handlers
        self._webhooks.stop()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    # --- used by the handler ------------------------------------------------------------------

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def take_fault(self, route: str) -> _Fault | None:
        with self._lock:
            queue = self._faults[route]
            if not queue:
                return None
            fault = queue[0]
            fault.times -= 1
            if fault.times <= 0:
                queue.pop(0)
            return fault

    def wait_hang(self) -> None:
        self._stop.wait(self.hang_s)

    def store_upload(self, data: bytes) -> str:
        upload_url = f"https://cdn.assemblyai.com/upload/{uuid.uuid4().hex}"
        with self._lock:
            self.uploads[upload_url] = data
        return upload_url

    def submit(self, config: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            error = self._errors.pop(0) if self._errors else None
            now = time.monotonic()
            job = _Job(str(uuid.uuid4()), config, now, now + self.complete_after_s, error)
            self._jobs[job.id] = job
        if config.get("webhook_url"):
            self._webhooks.schedule(job.due, job.id)
        return {**_config_echo(job), "status": "queued"}

    def render(self, transcript_id: str) -> dict[str, Any] | None:
        """The transcript as GET /v2/transcript/{id} shows it now; None if unknown."""
        with self._lock:
            job = self._jobs.get(transcript_id)
        if job is None:
            return None
        now = time.monotonic()
        body = _config_echo(job)
        if now < job.due:
            body["status"] = "queued" if now < job.submitted + self.queued_s else "processing"
        elif job.error is not None:
            body.update(status="error", error=job.error)
        else:
            body.update(
                status="completed",
                **completed_content(
                    job.config, script=self.script, detected_language=self.detected_language
                ),
            )
        return body

    def _add_fault(self, route: str, fault: _Fault) -> None:
        if route not in ROUTES:
            raise ValueError(f"route must be one of {ROUTES}, not {route!r}")
        with self._lock:
            self._faults[route].append(fault)

    def _announce(self, transcript_id: str) -> None:
        """Send the completion webhook once, when the transcript is really finished."""
        with self._lock:
            job = self._jobs[transcript_id]
            if job.announced or time.monotonic() < job.due:
                return
            job.announced = True
        delivery = _deliver(*_webhook(job, job.config["webhook_url"]))
        with self._lock:
            self._deliveries.append(delivery)


def _config_echo(job: _Job) -> dict[str, Any]:
    """The request options the real API echoes back (never the webhook auth header value)."""
    echoed = {k: v for k, v in job.config.items() if k != "webhook_auth_header_value"}
    echoed.update(id=job.id, error=None, text=None, words=None, utterances=None)
    echoed["webhook_auth"] = bool(job.config.get("webhook_auth_header_name"))
    return echoed


def _webhook(job: _Job, url: str) -> tuple[str, dict[str, str], dict[str, str]]:
    headers = {"Content-Type": "application/json"}
    name, value = (
        job.config.get("webhook_auth_header_name"),
        job.config.get("webhook_auth_header_value"),
    )
    if name and value is not None:
        headers[name] = value
    payload = {"transcript_id": job.id, "status": "error" if job.error else "completed"}
    return url, headers, payload


class _WebhookScheduler:
    """One daemon thread that sends completion webhooks when they fall due (no thread per job)."""

    def __init__(self, fire: Callable[[str], None]) -> None:
        self._fire = fire
        self._heap: list[tuple[float, int, str]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(5)

    def schedule(self, due: float, transcript_id: str) -> None:
        with self._cond:
            heapq.heappush(self._heap, (due, next(self._order), transcript_id))
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                _, _, transcript_id = heapq.heappop(self._heap)
            self._fire(transcript_id)


def _deliver(url: str, headers: dict[str, str], payload: dict[str, str]) -> WebhookDelivery:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # AssemblyAI waits 10 s
            status: int | None = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError:
        status = None
    return WebhookDelivery(url, headers, payload, status)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # the default backlog (5) resets connections under a burst of jobs

    def __init__(self, address: tuple[str, int], handler: type, fake: FakeAssemblyAI) -> None:
        super().__init__(address, handler)
        self.fake = fake


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the SDK's pooled httpx client expects
    server: _Server

    def do_POST(self) -> None:
        body = self._read_body()
        if self.path == "/v2/upload":
            self._serve("upload", None, lambda: (200, {"upload_url": self._store(body)}))
            return
        if self.path == "/v2/transcript":
            try:
                config = json.loads(body)
            except ValueError:
                config = None
            self._serve("submit", config, lambda: self._submit(config))
            return
        self._reply(404, {"error": "Not found"})

    def do_GET(self) -> None:
        prefix = "/v2/transcript/"
        if not self.path.startswith(prefix):
            self._reply(404, {"error": "Not found"})
            return
        transcript_id = self.path[len(prefix) :]
        self._serve("get", None, lambda: self._get(transcript_id))

    def _serve(
        self, route: str, body_json: Any, answer: Callable[[], tuple[int, dict[str, Any]]]
    ) -> None:
        fake = self.server.fake
        headers = {k.lower(): v for k, v in self.headers.items()}
        fake.record(RecordedRequest(self.command, self.path, headers, body_json))
        fault = fake.take_fault(route)
        if fault is not None and fault.status is None:
            fake.wait_hang()
        elif fault is not None:
            self._reply(fault.status, {"error": _STATUS_ERRORS.get(fault.status, "Error")})
            return
        if headers.get("authorization") != fake.api_key:
            self._reply(401, {"error": AUTH_ERROR})
            return
        self._reply(*answer())

    def _store(self, body: bytes) -> str:
        return self.server.fake.store_upload(body)

    def _get(self, transcript_id: str) -> tuple[int, dict[str, Any]]:
        found = self.server.fake.render(transcript_id)
        return (404, {"error": "Transcript not found"}) if found is None else (200, found)

    def _submit(self, config: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(config, dict) or not isinstance(config.get("audio_url"), str):
            return 400, {"error": "audio_url is required"}
        models = config.get("speech_models")
        if models is not None and not (
            isinstance(models, list) and all(isinstance(m, str) for m in models)
        ):
            return 400, {"error": "speech_models must be a list of strings"}
        return 200, self.server.fake.submit(config)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True  # the client gave up (e.g. timed out during a hang)

    def log_message(self, format: str, *args: Any) -> None:
        pass

"""Local stand-ins for the Google REST APIs the handler calls: Pub/Sub and Vertex AI.

Each stand-in is a real threaded HTTP server on 127.0.0.1:<free port>. It records every
request, validates what it receives the way the real API would (so a malformed call fails a
test), and can be told to fail: a status with a Google error body, a delay (to provoke a client
timeout), a dropped connection, or a non-JSON 200. A fault can apply before the request takes
effect (nothing happens server side) or after it (the effect happens, the response is lost).

The Vertex AI stand-in can also run its jobs (`JobRunner`, off unless given): each job goes
RUNNING at once and, after a delay, to an outcome (SUCCEEDED by default; FAILED or CANCELLED per
template or per job label), and every state change is handed to an `emit` callback as the
`aiplatform.googleapis.com/pipeline_job_events` log entry Vertex AI Pipelines writes
(docs/examples/pipeline-job-event.json). The twin (tools/twin, `make up`) routes those entries
through the stack's log sinks to the emulator. `/_twin/...` is a small control API for a stand-in
that runs in another process (the twin's): see `VertexStandIn.control`.

Used by tools/run_function.py (`make run-function`) for a local run with no GCP, by the twin, and
by the handler's tests (tests/handler/). A module of the project's tools: it imports nothing from
tests/.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import datetime
import json
import re
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

PROJECT_NUMBER = "123456789012"
FOREVER = -1
"""`Fault.times` for a fault that never runs out (e.g. Vertex AI answering 503 every time)."""

_GRPC_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


MAX_PUBLISH_REQUEST_BYTES = 10_000_000
"""Pub/Sub's limit on one publish request (cloud.google.com/pubsub/quotas: 10 MB)."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads_google(body: bytes) -> Any:
    """A request body as Google's JSON front end reads it: UTF-8 JSON with finite numbers and
    no lone surrogate escapes (protobuf strings are UTF-8). Raises ValueError."""
    value = json.loads(body, parse_constant=_no_constant)
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a string is not valid UTF-8 (a lone surrogate escape)") from None
    except ValueError:
        raise ValueError("a number is out of the range of a double") from None
    return value


def google_error(status: int, message: str, grpc_status: str | None = None) -> dict[str, Any]:
    return {
        "error": {
            "code": status,
            "message": message,
            "status": grpc_status or _GRPC_STATUS.get(status, "UNKNOWN"),
        }
    }


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Fault:
    op: str  # an op, `<op>:<detail>`'s prefix, or "*" for every op
    status: int = 503
    times: int = 1  # FOREVER (-1): never runs out
    delay: float = 0.0
    drop: bool = False
    not_json: bool = False
    after: bool = False  # let the request take effect, then fail the response
    grpc_status: str | None = None


@dataclass
class Reply:
    status: int
    body: Any


class StandIn:
    """Base class: subclasses implement `route` (request -> op name) and `apply`."""

    name = "stand-in"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.verbose = False
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without this, Nagle's algorithm and the
            # client's delayed ACK add ~40 ms to every call and swamp the handler's own time.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                if stand_in.verbose:
                    sys.stderr.write(f"[{stand_in.name}] {format % args}\n")

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                stand_in._serve(self, body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.faults.clear()
            self._reset_state()

    def _reset_state(self) -> None:
        pass

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host_port}"

    # --- faults -----------------------------------------------------------------------------

    def fail(self, op: str, status: int = 503, **options: Any) -> Fault:
        fault = Fault(op=op, status=status, **options)
        with self.lock:
            self.faults.append(fault)
        return fault

    def _take_fault(self, op: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times != 0 and (fault.op in ("*", op) or op.startswith(fault.op + ":")):
                    if fault.times > 0:
                        fault.times -= 1
                    return fault
        return None

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    # --- serving ----------------------------------------------------------------------------

    def route(self, method: str, path: str) -> str | None:
        raise NotImplementedError

    def apply(self, op: str, request: Recorded) -> Reply:
        raise NotImplementedError

    def control(self, request: Recorded) -> Reply | None:
        """A request to the stand-in itself (`/_twin/...`), not to the API it stands in for:
        never recorded, never faulted. None: not a control request."""
        return None

    def _serve(self, http: BaseHTTPRequestHandler, body: bytes) -> None:
        parts = urlsplit(http.path)
        request = Recorded(
            method=http.command,
            path=unquote(parts.path),
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in http.headers.items()},
            body=body,
        )
        if request.path.startswith(CONTROL_PREFIX):
            try:
                reply = self.control(request)
            except (ValueError, KeyError, TypeError) as exc:
                reply = Reply(400, google_error(400, f"bad control request: {exc}"))
            self._respond(http, reply or Reply(404, google_error(404, "no such control")))
            return
        with self.lock:
            self.requests.append(request)
        op = self.route(request.method, request.path)
        if op is None:
            self._respond(http, Reply(404, google_error(404, f"no such API: {http.path}")))
            return
        fault = self._take_fault(op)
        if fault is not None and not fault.after:
            self._respond_fault(http, fault)
            return
        with self.lock:
            reply = self.apply(op, request)
        if fault is not None:
            self._respond_fault(http, fault)
            return
        self._respond(http, reply)

    def _respond_fault(self, http: BaseHTTPRequestHandler, fault: Fault) -> None:
        if fault.delay:
            time.sleep(fault.delay)
        if fault.drop:
            http.close_connection = True
            with contextlib.suppress(OSError):
                http.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault.not_json:
            self._respond_raw(http, fault.status, b"<html>oops</html>", "text/html")
            return
        self._respond(
            http, Reply(fault.status, google_error(fault.status, "injected", fault.grpc_status))
        )

    def _respond(self, http: BaseHTTPRequestHandler, reply: Reply) -> None:
        self._respond_raw(http, reply.status, json.dumps(reply.body).encode(), "application/json")

    @staticmethod
    def _respond_raw(
        http: BaseHTTPRequestHandler, status: int, payload: bytes, content_type: str
    ) -> None:
        try:
            http.send_response(status)
            http.send_header("Content-Type", content_type)
            http.send_header("Content-Length", str(len(payload)))
            http.end_headers()
            http.wfile.write(payload)
        except OSError:  # the client gave up (timed out) first
            pass


# --- Pub/Sub ------------------------------------------------------------------------------------


@dataclass
class Published:
    topic: str
    data: bytes
    attributes: dict[str, str]
    message_id: str

    @property
    def json(self) -> Any:
        return json.loads(self.data)


_TOPIC_PATH_RE = re.compile(r"/v1/(projects/[^/]+/topics/[^/:]+):publish\Z")


class PubSubStandIn(StandIn):
    """POST /v1/projects/<p>/topics/<t>:publish, as the REST API (and the emulator) does.

    Fault ops: `publish` (any topic) or `publish:projects/<p>/topics/<t>`.
    """

    name = "pubsub"

    def __init__(self) -> None:
        super().__init__()
        self.published: list[Published] = []
        self._next_id = 1000

    def _reset_state(self) -> None:
        self.published.clear()

    def route(self, method: str, path: str) -> str | None:
        match = _TOPIC_PATH_RE.match(path)
        if method == "POST" and match:
            return f"publish:{match.group(1)}"
        return None

    def messages(self, topic: str) -> list[Published]:
        with self.lock:
            return [m for m in self.published if m.topic == topic]

    def apply(self, op: str, request: Recorded) -> Reply:
        topic = op.split(":", 1)[1]
        if len(request.body) > MAX_PUBLISH_REQUEST_BYTES:
            return Reply(
                400,
                google_error(
                    400,
                    f"Request payload size exceeds the limit: {MAX_PUBLISH_REQUEST_BYTES} bytes.",
                ),
            )
        try:
            body = loads_google(request.body)
        except ValueError as exc:
            return Reply(400, google_error(400, f"Invalid JSON payload received. {exc}"))
        problem = publish_problem(body)
        if problem:
            return Reply(400, google_error(400, problem))
        ids = []
        for message in body["messages"]:
            self._next_id += 1
            message_id = str(self._next_id)
            self.published.append(
                Published(
                    topic=topic,
                    data=base64.b64decode(message.get("data", "")),
                    attributes=dict(message.get("attributes", {})),
                    message_id=message_id,
                )
            )
            ids.append(message_id)
        return Reply(200, {"messageIds": ids})


def publish_problem(body: Any) -> str | None:
    """Pub/Sub's own checks on a publish request (the ones a handler bug could trip)."""
    if not isinstance(body, dict) or set(body) != {"messages"}:
        return "body must be {messages: [...]}"
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty list"
    for message in messages:
        if not isinstance(message, dict) or set(message) - {"data", "attributes", "orderingKey"}:
            return "unknown message field"
        data = message.get("data", "")
        attributes = message.get("attributes", {})
        if not isinstance(data, str):
            return "data must be a base64 string"
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return "data is not valid base64"
        if not isinstance(attributes, dict):
            return "attributes must be a map"
        if not data and not attributes:
            return "Some messages are empty: a message needs data or attributes"
        if len(attributes) > 100:
            return "too many attributes (max 100)"
        for key, value in attributes.items():
            if not isinstance(key, str) or not isinstance(value, str):
                return "attribute keys and values must be strings"
            if key.lower().startswith("goog"):
                return f"attribute key {key!r} is reserved"
            if not 0 < len(key.encode("utf-8", "surrogatepass")) <= 256:
                return "attribute key length must be 1..256 bytes"
            if len(value.encode("utf-8", "surrogatepass")) > 1024:
                return "attribute value longer than 1024 bytes"
            try:
                (key + value).encode("utf-8")
            except UnicodeEncodeError:
                return "attribute is not valid UTF-8"
    return None


# --- Vertex AI ----------------------------------------------------------------------------------

_JOBS_RE = re.compile(r"/v1/projects/([^/]+)/locations/([^/]+)/pipelineJobs(?:/([^/]+))?\Z")
_JOB_ID_RE = re.compile(r"[a-z][a-z0-9-]{0,127}\Z")
_LABEL_KEY_RE = re.compile(r"[a-z][a-z0-9_-]{0,62}\Z")
_LABEL_VALUE_RE = re.compile(r"[a-z0-9_-]{0,63}\Z")

CONTROL_PREFIX = "/_twin/"
OUTCOMES = ("SUCCEEDED", "FAILED", "CANCELLED")
"""What a run job ends in; its `state` is `PIPELINE_STATE_<outcome>`."""
PIPELINE_JOB_EVENTS_LOG_ID = "aiplatform.googleapis.com%2Fpipeline_job_events"
PIPELINE_JOB_RESOURCE_TYPE = "aiplatform.googleapis.com/PipelineJob"
PIPELINE_JOB_LOG_ENTRY_TYPE = (
    "type.googleapis.com/google.cloud.aiplatform.logging.PipelineJobLogEntry"
)
_ERRORS = {
    "FAILED": {"code": 9, "message": "The pipeline failed (local stand-in outcome)."},
    "CANCELLED": {"code": 1, "message": "The pipeline was cancelled (local stand-in outcome)."},
}


def rfc3339(when: float | None = None) -> str:
    """`2026-11-24T10:42:06.904512Z`: a Google API timestamp (UTC, microseconds)."""
    moment = datetime.datetime.fromtimestamp(time.time() if when is None else when, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def pipeline_name(template_uri: str) -> str:
    """The template's name in an Artifact Registry KFP URI
    (`https://<region>-kfp.pkg.dev/<project>/<repo>/<template>/<version>`), else the URI's
    last path segment."""
    parts = [p for p in urlsplit(template_uri).path.split("/") if p]
    return parts[2] if len(parts) >= 4 else (parts[-1] if parts else "pipeline")


def pipeline_job_log_entry(
    job: dict[str, Any], project: str, location: str, when: float | None = None
) -> dict[str, Any]:
    """The log entry Vertex AI Pipelines writes for `job`'s current state, in the format of
    docs/examples/pipeline-job-event.json (a LogEntry as a log sink publishes it)."""
    timestamp = rfc3339(when)
    name = pipeline_name(str(job.get("templateUri", "")))
    return {
        "insertId": secrets.token_hex(6),
        "jsonPayload": {
            "@type": PIPELINE_JOB_LOG_ENTRY_TYPE,
            "pipelineName": name,
            "state": job["state"],
        },
        "labels": {
            "pipeline_name": name,
            "service_account": str(job.get("serviceAccount", "")),
            "template_uri": str(job.get("templateUri", "")),
        },
        "logName": f"projects/{project}/logs/{PIPELINE_JOB_EVENTS_LOG_ID}",
        "receiveTimestamp": timestamp,
        "resource": {
            "labels": {
                "location": location,
                "pipeline_job_id": str(job["name"]).rsplit("/", 1)[1],
                "resource_container": project,
            },
            "type": PIPELINE_JOB_RESOURCE_TYPE,
        },
        "severity": "INFO",
        "timestamp": timestamp,
    }


@dataclass
class OutcomeRule:
    """Jobs whose templateUri contains `template` and/or that carry the label `label`
    (`key=value`) end in `outcome`, after `delay` seconds if given."""

    outcome: str
    template: str | None = None
    label: str | None = None
    delay: float | None = None

    def __post_init__(self) -> None:
        self.outcome = self.outcome.upper()
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome {self.outcome!r}: expected one of {', '.join(OUTCOMES)}")
        if self.template is None and self.label is None:
            raise ValueError("an outcome rule needs a template or a label to match")
        if self.label is not None and "=" not in self.label:
            raise ValueError(f"label {self.label!r}: expected key=value")
        if self.delay is not None and not 0 <= float(self.delay) <= 3600:
            raise ValueError(f"delay {self.delay!r}: expected 0..3600 seconds")

    def applies(self, job: dict[str, Any]) -> bool:
        if self.template is not None and self.template not in str(job.get("templateUri", "")):
            return False
        if self.label is not None:
            key, _, value = self.label.partition("=")
            if job.get("labels", {}).get(key) != value:
                return False
        return True

    @classmethod
    def parse(cls, spec: str) -> OutcomeRule:
        """`template=<part of the URI>:OUTCOME` or `label.<key>=<value>:OUTCOME`."""
        match, _, outcome = spec.rpartition(":")
        if match.startswith("template=") and len(match) > len("template="):
            return cls(outcome=outcome, template=match[len("template=") :])
        if match.startswith("label.") and "=" in match:
            return cls(outcome=outcome, label=match[len("label.") :])
        raise ValueError(
            f"{spec!r}: expected template=<part of the template URI>:OUTCOME or "
            f"label.<key>=<value>:OUTCOME (OUTCOME: {', '.join(OUTCOMES)})"
        )


@dataclass
class JobRunner:
    """How the stand-in runs its jobs: each goes RUNNING when created and ends `delay`
    seconds later in the first matching rule's outcome, else in `outcome`."""

    outcome: str = "SUCCEEDED"
    delay: float = 1.0
    rules: list[OutcomeRule] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.outcome = self.outcome.upper()
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome {self.outcome!r}: expected one of {', '.join(OUTCOMES)}")
        if not 0 <= float(self.delay) <= 3600:
            raise ValueError(f"delay {self.delay!r}: expected 0..3600 seconds")

    def outcome_for(self, job: dict[str, Any]) -> tuple[str, float]:
        for rule in self.rules:
            if rule.applies(job):
                return rule.outcome, self.delay if rule.delay is None else float(rule.delay)
        return self.outcome, float(self.delay)

    def as_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "delay": self.delay,
            "rules": [{k: v for k, v in asdict(r).items() if v is not None} for r in self.rules],
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> JobRunner:
        unknown = set(body) - {"outcome", "delay", "rules"}
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}")
        return cls(
            outcome=str(body.get("outcome", "SUCCEEDED")),
            delay=float(body.get("delay", 1.0)),
            rules=[OutcomeRule(**rule) for rule in body.get("rules", [])],
        )


class VertexStandIn(StandIn):
    """POST .../pipelineJobs?pipelineJobId=<id> and GET .../pipelineJobs/<id>.

    Fault ops: `create`, `get` (`*`: both). A second create with the same id answers 409
    ALREADY_EXISTS, like the real API.

    With a `runner`, every created job runs: RUNNING at once, then its outcome after the
    runner's delay (`JobRunner`); `emit` gets each state change's log entry, in order, from
    one thread (also kept in `log_entries`). Without one, jobs stay PENDING until a test
    changes them.

    Control API (for a stand-in in another process; never recorded or faulted):
    `GET /_twin/jobs`, `GET /_twin/log-entries`, `GET /_twin/stats`,
    `GET|POST /_twin/config` (`{"outcome", "delay", "rules": [{"outcome", "template" |
    "label", "delay"}]}`, plus `"unavailable": 503` to answer every call with that status,
    `null` to stop), `POST /_twin/emit` (`{"job_id", "times"}`: the job's last log entry again,
    as an at-least-once sink does) and `POST /_twin/reset` (jobs, requests, faults, entries).
    """

    name = "vertex"

    def __init__(
        self,
        runner: JobRunner | None = None,
        emit: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        super().__init__()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.runner = runner
        self.emit = emit
        self.log_entries: list[dict[str, Any]] = []
        self.unavailable: int | None = None
        self.last_request_at = 0.0
        self._where: dict[str, tuple[str, str]] = {}  # job id -> (project id, location)
        self._timers: dict[str, threading.Timer] = {}
        self._outbox: list[dict[str, Any]] = []
        self._outbox_ready = threading.Condition(self.lock)
        self._emitting = 0
        self._stopping = False
        self._emitter = threading.Thread(target=self._emit_loop, daemon=True)
        self._emitter.start()

    def stop(self) -> None:
        with self.lock:
            self._stopping = True
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()
            self._outbox_ready.notify_all()
        super().stop()

    def _reset_state(self) -> None:
        self.jobs.clear()
        self._where.clear()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._outbox.clear()
        self.log_entries.clear()
        self.unavailable = None

    def route(self, method: str, path: str) -> str | None:
        match = _JOBS_RE.match(path)
        if not match:
            return None
        if method == "POST" and match.group(3) is None:
            return "create"
        if method == "GET" and match.group(3) is not None:
            return "get"
        return None

    def creates(self) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if self.route(r.method, r.path) == "create"]

    def apply(self, op: str, request: Recorded) -> Reply:
        self.last_request_at = time.time()
        match = _JOBS_RE.match(request.path)
        assert match is not None
        project, location = match.group(1), match.group(2)
        if op == "get":
            job = self.jobs.get(match.group(3))
            if job is None:
                return Reply(404, google_error(404, "PipelineJob not found"))
            return Reply(200, copy.deepcopy(job))
        job_ids = request.query.get("pipelineJobId", [])
        if len(job_ids) != 1 or not _JOB_ID_RE.match(job_ids[0]):
            return Reply(400, google_error(400, f"invalid pipelineJobId {job_ids!r}"))
        job_id = job_ids[0]
        try:
            body = loads_google(request.body)
        except ValueError as exc:
            return Reply(400, google_error(400, f"Invalid JSON payload received. {exc}"))
        problem = job_problem(body)
        if problem:
            return Reply(400, google_error(400, problem))
        if job_id in self.jobs:
            return Reply(
                409, google_error(409, f"PipelineJob {job_id} already exists", "ALREADY_EXISTS")
            )
        now = rfc3339()
        job = dict(body)
        job.update(
            name=f"projects/{PROJECT_NUMBER}/locations/{location}/pipelineJobs/{job_id}",
            state="PIPELINE_STATE_PENDING",
            createTime=now,
            updateTime=now,
        )
        self.jobs[job_id] = job
        self._where[job_id] = (project, location)
        reply = Reply(200, copy.deepcopy(job))
        if self.runner is not None:
            self._run(job_id)
        return reply

    # --- running jobs (with a runner) -------------------------------------------------------

    def _run(self, job_id: str) -> None:
        """RUNNING now, the outcome later (called with the lock held)."""
        assert self.runner is not None
        job = self.jobs[job_id]
        job.update(state="PIPELINE_STATE_RUNNING", startTime=rfc3339(), updateTime=rfc3339())
        self._log(job_id)
        outcome, delay = self.runner.outcome_for(job)
        timer = threading.Timer(delay, self._finish, args=(job_id, outcome))
        timer.daemon = True
        self._timers[job_id] = timer
        timer.start()

    def _finish(self, job_id: str, outcome: str) -> None:
        with self.lock:
            self._timers.pop(job_id, None)
            job = self.jobs.get(job_id)
            if job is None or self._stopping:
                return
            now = rfc3339()
            job.update(state=f"PIPELINE_STATE_{outcome}", endTime=now, updateTime=now)
            if outcome == "SUCCEEDED":
                output = f"{job['runtimeConfig']['gcsOutputDirectory'].rstrip('/')}/{job_id}"
                job["jobDetail"] = {
                    "taskDetails": [
                        {
                            "taskId": "1",
                            "taskName": pipeline_name(str(job.get("templateUri", ""))),
                            "state": "SUCCEEDED",
                            "outputs": {"output": {"artifacts": [{"uri": f"{output}/output"}]}},
                        }
                    ]
                }
            else:
                job["error"] = dict(_ERRORS[outcome])
            self._log(job_id)

    def _log(self, job_id: str) -> None:
        """Queue the log entry of the job's current state (called with the lock held)."""
        project, location = self._where[job_id]
        entry = pipeline_job_log_entry(self.jobs[job_id], project, location)
        self.log_entries.append(entry)
        self._outbox.append(entry)
        self._outbox_ready.notify_all()

    def _emit_loop(self) -> None:
        while True:
            with self.lock:
                while not self._outbox and not self._stopping:
                    self._outbox_ready.wait()
                if self._stopping:
                    return
                entry = self._outbox.pop(0)
                self._emitting += 1
            try:
                if self.emit is not None:
                    self.emit(copy.deepcopy(entry))
            except Exception as exc:  # a sink that cannot publish must not stop the others
                sys.stderr.write(f"[{self.name}] emitting a log entry failed: {exc}\n")
            finally:
                with self.lock:
                    self._emitting -= 1

    def busy(self) -> bool:
        """Jobs still running or log entries not yet emitted."""
        with self.lock:
            return bool(self._timers or self._outbox or self._emitting)

    # --- control API ------------------------------------------------------------------------

    def configure(self, body: dict[str, Any]) -> dict[str, Any]:
        """Apply a `/_twin/config` body; the configuration now in force."""
        body = dict(body)
        unavailable = body.pop("unavailable", self.unavailable)
        runner = JobRunner.from_json({**self.config()["runner"], **body}) if body else None
        if unavailable is not None and not 400 <= int(unavailable) <= 599:
            raise ValueError(f"unavailable {unavailable!r}: expected an HTTP error status")
        with self.lock:
            if runner is not None:
                self.runner = runner
            self.faults = [f for f in self.faults if f.op != "*"]
            self.unavailable = None if unavailable is None else int(unavailable)
            if self.unavailable is not None:
                self.faults.append(Fault(op="*", status=self.unavailable, times=FOREVER))
        return self.config()

    def config(self) -> dict[str, Any]:
        with self.lock:
            runner = self.runner.as_json() if self.runner is not None else None
            return {"runner": runner or JobRunner().as_json(), "unavailable": self.unavailable}

    def emit_again(self, job_id: str, times: int) -> int:
        with self.lock:
            mine = [e for e in self.log_entries if _job_id(e) == job_id]
            if not mine:
                raise KeyError(f"no log entry for job {job_id!r}")
            for _ in range(times):
                self._outbox.append(copy.deepcopy(mine[-1]))
            self._outbox_ready.notify_all()
        return times

    def control(self, request: Recorded) -> Reply | None:
        what = request.path[len(CONTROL_PREFIX) :]
        body = request.json if request.body else {}
        if request.method == "GET" and what == "jobs":
            with self.lock:
                return Reply(200, {"jobs": copy.deepcopy(list(self.jobs.values()))})
        if request.method == "GET" and what == "log-entries":
            with self.lock:
                return Reply(200, {"entries": copy.deepcopy(self.log_entries)})
        if request.method == "GET" and what == "stats":
            with self.lock:
                creates = sum(1 for r in self.requests if self.route(r.method, r.path) == "create")
                stats = {
                    "requests": len(self.requests),
                    "creates": creates,
                    "jobs": len(self.jobs),
                    "last_request_at": self.last_request_at,
                }
            return Reply(200, {**stats, "busy": self.busy()})
        if what == "config":
            if request.method == "POST":
                return Reply(200, self.configure(body))
            return Reply(200, self.config())
        if request.method == "POST" and what == "emit":
            return Reply(200, {"emitted": self.emit_again(body["job_id"], int(body["times"]))})
        if request.method == "POST" and what == "reset":
            self.reset()
            return Reply(200, {})
        return None


def _job_id(entry: dict[str, Any]) -> str:
    return str(entry.get("resource", {}).get("labels", {}).get("pipeline_job_id", ""))


def job_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "body must be a PipelineJob object"
    allowed = {"displayName", "templateUri", "runtimeConfig", "serviceAccount", "labels"}
    if set(body) - allowed:
        return f"unexpected fields {sorted(set(body) - allowed)}"
    name = body.get("displayName")
    if not isinstance(name, str) or not 0 < len(name) <= 128:
        return "displayName must be 1..128 characters"
    if not isinstance(body.get("templateUri"), str):
        return "templateUri is required"
    if not isinstance(body.get("serviceAccount"), str):
        return "serviceAccount is required"
    runtime = body.get("runtimeConfig")
    if not isinstance(runtime, dict) or not isinstance(runtime.get("gcsOutputDirectory"), str):
        return "runtimeConfig.gcsOutputDirectory is required"
    if not isinstance(runtime.get("parameterValues", {}), dict):
        return "runtimeConfig.parameterValues must be a map"
    labels = body.get("labels", {})
    if not isinstance(labels, dict) or len(labels) > 64:
        return "labels must be a map of at most 64 entries"
    for key, value in labels.items():
        if not _LABEL_KEY_RE.match(key) or not isinstance(value, str):
            return f"invalid label key {key!r}"
        if not _LABEL_VALUE_RE.match(value):
            return f"invalid label value {value!r}"
    return None


# --- Starting them ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class StandIns:
    pubsub: PubSubStandIn
    vertex: VertexStandIn

    def reset(self) -> None:
        self.pubsub.reset()
        self.vertex.reset()


def start_stand_ins() -> StandIns:
    return StandIns(PubSubStandIn().start(), VertexStandIn().start())

"""Local stand-ins for the Google REST APIs the handler calls: Pub/Sub and Vertex AI.

Each stand-in is a real threaded HTTP server on 127.0.0.1:<free port>. It records every
request, validates what it receives the way the real API would (so a malformed call fails a
test), and can be told to fail: a status with a Google error body, a delay (to provoke a client
timeout), a dropped connection, or a non-JSON 200. A fault can apply before the request takes
effect (nothing happens server side) or after it (the effect happens, the response is lost).

Used by tools/run_function.py (`make run-function`) for a local run with no GCP, and by the
handler's tests (tests/handler/). A module of the project's tools: it imports nothing from tests/.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

PROJECT_NUMBER = "123456789012"

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
    op: str
    status: int = 503
    times: int = 1
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
                if fault.times > 0 and (fault.op == op or op.startswith(fault.op + ":")):
                    fault.times -= 1
                    return fault
        return None

    # --- serving ----------------------------------------------------------------------------

    def route(self, method: str, path: str) -> str | None:
        raise NotImplementedError

    def apply(self, op: str, request: Recorded) -> Reply:
        raise NotImplementedError

    def _serve(self, http: BaseHTTPRequestHandler, body: bytes) -> None:
        parts = urlsplit(http.path)
        request = Recorded(
            method=http.command,
            path=unquote(parts.path),
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in http.headers.items()},
            body=body,
        )
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
        try:
            body = json.loads(request.body)
        except ValueError:
            return Reply(400, google_error(400, "Invalid JSON payload received."))
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


class VertexStandIn(StandIn):
    """POST .../pipelineJobs?pipelineJobId=<id> and GET .../pipelineJobs/<id>.

    Fault ops: `create`, `get`. A second create with the same id answers 409 ALREADY_EXISTS,
    like the real API.
    """

    name = "vertex"

    def __init__(self) -> None:
        super().__init__()
        self.jobs: dict[str, dict[str, Any]] = {}

    def _reset_state(self) -> None:
        self.jobs.clear()

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
        match = _JOBS_RE.match(request.path)
        assert match is not None
        location = match.group(2)
        if op == "get":
            job = self.jobs.get(match.group(3))
            if job is None:
                return Reply(404, google_error(404, "PipelineJob not found"))
            return Reply(200, job)
        job_ids = request.query.get("pipelineJobId", [])
        if len(job_ids) != 1 or not _JOB_ID_RE.match(job_ids[0]):
            return Reply(400, google_error(400, f"invalid pipelineJobId {job_ids!r}"))
        job_id = job_ids[0]
        try:
            body = json.loads(request.body)
        except ValueError:
            return Reply(400, google_error(400, "Invalid JSON payload received."))
        problem = job_problem(body)
        if problem:
            return Reply(400, google_error(400, problem))
        if job_id in self.jobs:
            return Reply(
                409, google_error(409, f"PipelineJob {job_id} already exists", "ALREADY_EXISTS")
            )
        job = dict(body)
        job.update(
            name=f"projects/{PROJECT_NUMBER}/locations/{location}/pipelineJobs/{job_id}",
            state="PIPELINE_STATE_PENDING",
            createTime="2026-01-01T00:00:00Z",
        )
        self.jobs[job_id] = job
        return Reply(200, job)


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

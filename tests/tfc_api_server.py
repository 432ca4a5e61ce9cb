"""A local stand-in for the parts of the Terraform Cloud API that an API-driven run uses,
written from the public API docs (Workspaces, Configuration Versions, Runs), for tests only.

- GET  /api/v2/organizations/:org/workspaces/:name       show a workspace (404 if unknown)
- POST /api/v2/workspaces/:id/configuration-versions      create one; answers an upload-url
- PUT  /_archivist/v1/object/:object                      the upload URL (no token, as signed)
- GET  /api/v2/configuration-versions/:id                 "pending" until uploaded (and
                                                          `pending_polls` more reads), then
                                                          "uploaded"
- POST /api/v2/runs                                       create a run on an uploaded version
- GET  /api/v2/runs/:id                                   each read moves the run one status
                                                          along `run_statuses`

Every /api/v2 call needs `Authorization: Bearer <token>` (else 401) and, with a body,
`Content-Type: application/vnd.api+json` (else 415); a body without the right `data.type`
is 422. Errors are JSON:API error objects. Every request is recorded.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MEDIA_TYPE = "application/vnd.api+json"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class TfcState:
    token: str
    organization: str
    workspaces: dict[str, str]
    """workspace name -> id"""
    pending_polls: int = 1
    run_statuses: tuple[str, ...] = ("pending", "planning", "planned_and_finished")
    confirmable: frozenset[str] = frozenset()
    """statuses in which the run is paused for confirmation (actions.is-confirmable)"""
    requests: list[Recorded] = field(default_factory=list)
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    uploads: dict[str, bytes] = field(default_factory=dict)
    """configuration version id -> the archive PUT to its upload URL"""
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class TfcApiServer:
    """Serves TfcState on 127.0.0.1 (a free port) in a thread; a context manager."""

    def __init__(self, state: TfcState) -> None:
        self.state = state
        handler = type("Handler", (_Handler,), {"state": state, "server_ref": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.address = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> TfcApiServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


def _error(status: int, title: str, detail: str = "") -> dict[str, Any]:
    error = {"status": str(status), "title": title}
    if detail:
        error["detail"] = detail
    return {"errors": [error]}


class _Handler(BaseHTTPRequestHandler):
    state: TfcState
    server_ref: TfcApiServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def _answer(self, status: int, document: dict[str, Any] | None = None) -> None:
        body = b"" if document is None else json.dumps(document).encode()
        self.send_response(status)
        if document is not None:
            self.send_header("Content-Type", MEDIA_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        state = self.state
        with state.lock:
            state.requests.append(Recorded(method, self.path, dict(self.headers.items()), body))
            status, document = self._route(method, self.path, body)
        self._answer(status, document)

    def _route(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any] | None]:
        state = self.state
        upload = re.fullmatch(r"/_archivist/v1/object/([\w-]+)", path)
        if upload and method == "PUT":
            for version in state.versions.values():
                if version["object"] == upload.group(1):
                    state.uploads[version["id"]] = body
                    version["polls_left"] = state.pending_polls
                    return 200, None
            return 404, _error(404, "not found")
        if not path.startswith("/api/v2/"):
            return 404, _error(404, "not found")
        if self.headers.get("Authorization") != f"Bearer {state.token}":
            return 401, _error(401, "unauthorized")
        payload: dict[str, Any] = {}
        if method == "POST":
            if self.headers.get("Content-Type") != MEDIA_TYPE:
                return 415, _error(415, "unsupported media type")
            try:
                payload = json.loads(body)["data"]
            except (ValueError, KeyError, TypeError):
                return 422, _error(422, "invalid attribute", "no data object")
        route = path[len("/api/v2") :]
        if method == "GET" and (
            match := re.fullmatch(r"/organizations/([^/]+)/workspaces/([^/]+)", route)
        ):
            org, name = match.groups()
            if org != state.organization or name not in state.workspaces:
                return 404, _error(404, "not found")
            return 200, self._workspace(name)
        if method == "POST" and (
            match := re.fullmatch(r"/workspaces/([^/]+)/configuration-versions", route)
        ):
            if match.group(1) not in state.workspaces.values():
                return 404, _error(404, "not found")
            if payload.get("type") != "configuration-versions":
                return 422, _error(422, "invalid attribute", "data.type")
            return 201, self._create_version(payload.get("attributes") or {})
        if method == "GET" and (match := re.fullmatch(r"/configuration-versions/([^/]+)", route)):
            version = state.versions.get(match.group(1))
            if version is None:
                return 404, _error(404, "not found")
            if version["id"] in state.uploads:
                if version["polls_left"] > 0:
                    version["polls_left"] -= 1
                else:
                    version["status"] = "uploaded"
            return 200, {"data": self._version_document(version)}
        if method == "POST" and route == "/runs":
            return self._create_run(payload)
        if method == "GET" and (match := re.fullmatch(r"/runs/([^/]+)", route)):
            run = state.runs.get(match.group(1))
            if run is None:
                return 404, _error(404, "not found")
            document = self._run_document(run)
            run["reads"] += 1
            return 200, document
        return 404, _error(404, "not found")

    def _workspace(self, name: str) -> dict[str, Any]:
        ws_id = self.state.workspaces[name]
        return {
            "data": {
                "id": ws_id,
                "type": "workspaces",
                "attributes": {"name": name, "execution-mode": "remote", "auto-apply": False},
                "links": {"self": f"/api/v2/workspaces/{ws_id}"},
            }
        }

    def _create_version(self, attributes: dict[str, Any]) -> dict[str, Any]:
        number = len(self.state.versions) + 1
        version = {
            "id": f"cv-{number:016d}",
            "object": f"object-{number}",
            "status": "pending",
            "auto-queue-runs": attributes.get("auto-queue-runs", True),
            "speculative": attributes.get("speculative", False),
            "polls_left": 0,
        }
        self.state.versions[version["id"]] = version
        document = self._version_document(version)
        document["attributes"]["upload-url"] = (
            f"{self.server_ref.address}/_archivist/v1/object/{version['object']}"
        )
        return {"data": document}

    def _version_document(self, version: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": version["id"],
            "type": "configuration-versions",
            "attributes": {
                "auto-queue-runs": version["auto-queue-runs"],
                "error": None,
                "error-message": None,
                "source": "tfe-api",
                "speculative": version["speculative"],
                "status": version["status"],
                "status-timestamps": {},
            },
            "links": {"self": f"/api/v2/configuration-versions/{version['id']}"},
        }

    def _create_run(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        state = self.state
        if payload.get("type") != "runs":
            return 422, _error(422, "invalid attribute", "data.type")
        relationships = payload.get("relationships") or {}
        ws_id = ((relationships.get("workspace") or {}).get("data") or {}).get("id")
        cv_id = ((relationships.get("configuration-version") or {}).get("data") or {}).get("id")
        if ws_id not in state.workspaces.values():
            return 404, _error(404, "not found")
        version = state.versions.get(cv_id or "")
        if version is None or version["status"] != "uploaded":
            return 422, _error(422, "invalid attribute", "configuration version is not uploaded")
        attributes = payload.get("attributes") or {}
        run = {
            "id": f"run-{len(state.runs) + 1:016d}",
            "reads": 0,
            "plan-only": bool(attributes.get("plan-only", version["speculative"])),
            "message": attributes.get("message", "Queued manually via the API"),
        }
        state.runs[run["id"]] = run
        return 201, self._run_document(run)

    def _run_document(self, run: dict[str, Any]) -> dict[str, Any]:
        statuses = self.state.run_statuses
        status = statuses[min(run["reads"], len(statuses) - 1)]
        return {
            "data": {
                "id": run["id"],
                "type": "runs",
                "attributes": {
                    "actions": {"is-confirmable": status in self.state.confirmable},
                    "message": run["message"],
                    "plan-only": run["plan-only"],
                    "source": "tfe-api",
                    "status": status,
                },
                "links": {"self": f"/api/v2/runs/{run['id']}"},
            }
        }

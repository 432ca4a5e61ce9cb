"""The two Google REST APIs the handler calls: Pub/Sub publish and Vertex AI pipelineJobs.

`requests` and `google.auth` are imported on first use, not at import time, to keep the cold
start light. Sessions are created lazily, once, and shared by the server's threads.

Every call returns an ApiResponse; nothing here raises for an HTTP or transport failure.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from . import wire
from .settings import CLOUD_PLATFORM_SCOPE, Settings

if TYPE_CHECKING:
    import requests

OK = "ok"
ALREADY_EXISTS = "already_exists"
TRANSIENT = "transient"
PERMANENT = "permanent"
UNSENDABLE = "unsendable"
"""Our own request body could not be encoded, so nothing was sent: a bug, never Google's."""
NOT_SENT = -1

# Retrying can help: the service is down or busy, the request timed out, or IAM / an API
# enablement is not (yet) in place — the latter is fixed by an operator, and IAM changes take
# minutes to propagate. Pub/Sub keeps retrying with backoff, then dead-letters.
TRANSIENT_STATUSES = frozenset({401, 403, 408, 429, 499})


def classify(status: int, google_status: str | None = None) -> str:
    """HTTP status (0 = no response at all, NOT_SENT = our body did not encode) -> ok /
    already_exists / transient / permanent / unsendable."""
    if status == NOT_SENT:
        return UNSENDABLE
    if 200 <= status < 300:
        return OK
    if status == 409:
        # 409 is both ALREADY_EXISTS and ABORTED (a concurrency conflict, retryable).
        return ALREADY_EXISTS if google_status == "ALREADY_EXISTS" else TRANSIENT
    if status == 0 or status >= 500 or status in TRANSIENT_STATUSES:
        return TRANSIENT
    return PERMANENT


@dataclass(frozen=True)
class ApiResponse:
    status: int  # 0: no HTTP response (connection error, timeout, auth); NOT_SENT: see UNSENDABLE
    body: Any  # parsed JSON body, or None
    detail: str  # one line for logs and the error_detail attribute

    @property
    def google_status(self) -> str | None:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        status = error.get("status") if isinstance(error, dict) else None
        return status if isinstance(status, str) else None

    @property
    def kind(self) -> str:
        return classify(self.status, self.google_status)


class GoogleApis:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._sessions: dict[bool, requests.Session] = {}
        timeout = settings.timeout_seconds
        self._timeout = (min(5.0, timeout), timeout)

    # --- sessions ---------------------------------------------------------------------------

    def _session(self, anonymous: bool) -> requests.Session:
        session = self._sessions.get(anonymous)
        if session is not None:
            return session
        with self._lock:
            session = self._sessions.get(anonymous)
            if session is None:
                session = self._new_session(anonymous)
                self._sessions[anonymous] = session
            return session

    def _new_session(self, anonymous: bool) -> requests.Session:
        if anonymous:
            # Emulators and local stand-ins: plain HTTP, no credentials (as Google's clients do).
            import requests

            return requests.Session()
        import google.auth
        from google.auth.transport.requests import AuthorizedSession

        credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
        return AuthorizedSession(credentials, refresh_timeout=self._settings.timeout_seconds)

    def _call(
        self, method: str, url: str, anonymous: bool, body: Mapping[str, Any] | None = None
    ) -> ApiResponse:
        import google.auth.exceptions
        import requests

        try:
            payload = None if body is None else wire.encode_request(body)
        except wire.UnsendableRequest as exc:
            return ApiResponse(NOT_SENT, None, f"{method} {url}: not sent: {exc}"[:500])
        headers = {"Content-Type": "application/json"} if payload is not None else None
        try:
            response = self._session(anonymous).request(
                method, url, data=payload, headers=headers, timeout=self._timeout
            )
        except (requests.RequestException, google.auth.exceptions.GoogleAuthError) as exc:
            return ApiResponse(0, None, f"{method} {url}: {type(exc).__name__}: {exc}"[:500])
        try:
            parsed = response.json()
        except ValueError:
            parsed = None
        detail = f"{method} {url}: HTTP {response.status_code}"
        error = parsed.get("error") if isinstance(parsed, dict) else None
        if isinstance(error, dict):
            detail += f" {error.get('status', '')}: {error.get('message', '')}"
        elif response.status_code >= 300:
            detail += f": {response.text[:200]!r}"
        return ApiResponse(response.status_code, parsed, detail[:500])

    # --- Pub/Sub ----------------------------------------------------------------------------

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> ApiResponse:
        """POST {endpoint}/v1/{topic}:publish with one message."""
        url = f"{self._settings.pubsub_endpoint}/v1/{quote(topic, safe='/')}:publish"
        body = wire.publish_request(data, attributes)
        return self._call("POST", url, self._settings.pubsub_anonymous, body)

    # --- Vertex AI --------------------------------------------------------------------------

    def _jobs_url(self) -> str:
        s = self._settings
        return f"{s.vertex_endpoint}/v1/projects/{s.project}/locations/{s.location}/pipelineJobs"

    def create_pipeline_job(self, job_id: str, body: Mapping[str, Any]) -> ApiResponse:
        """POST .../pipelineJobs?pipelineJobId={job_id}"""
        url = f"{self._jobs_url()}?pipelineJobId={quote(job_id, safe='')}"
        return self._call("POST", url, self._settings.vertex_anonymous, body)

    def get_pipeline_job(self, job_id: str) -> ApiResponse:
        """GET .../pipelineJobs/{job_id}"""
        url = f"{self._jobs_url()}/{quote(job_id, safe='')}"
        return self._call("GET", url, self._settings.vertex_anonymous)

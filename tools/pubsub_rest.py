"""Pub/Sub over REST for the operator tools (`make smoke`, `make replay-dead-letters`).

Where the calls go, as Google's clients decide it: `PUBSUB_EMULATOR_HOST` (plain HTTP, no
credentials), else a twin of the project that is up (`make up`), else pubsub.googleapis.com
with Application Default Credentials. Each of these is *for* a project when it says so
(`PUBSUB_PROJECT_ID` next to an emulator, the twin's project, the credentials' project), and
`check_project` refuses to go on when that, or `--project`, is not the environment's.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from twin.state import running_twin, twin_root

from workflow_handler import contract
from workflow_handler.settings import CLOUD_PLATFORM_SCOPE, PUBSUB_ENDPOINT

TIMEOUT = 30
PUBSUB_PROJECT_ID = "PUBSUB_PROJECT_ID"
"""The project an emulator is for (gcloud's `beta emulators pubsub env-init` sets it)."""
ALLOW_FLAG = "--allow-other-project"


class PubSubError(RuntimeError):
    """A Pub/Sub call failed; the message is one line."""


@dataclass
class Endpoint:
    base: str
    """`http://host:port` (an emulator) or https://pubsub.googleapis.com."""
    session: Any
    project: str | None
    """The project this endpoint is for, when it says: see the module docstring."""
    described: str
    """What it is, for messages: `the Pub/Sub emulator at PUBSUB_EMULATOR_HOST=...`."""
    project_source: str = ""
    """Where `project` came from, for the refusal message."""


def find_endpoint(project: str) -> Endpoint:
    """The endpoint for `project`: see the module docstring. PubSubError without credentials."""
    import requests

    host = os.environ.get(contract.ENV_PUBSUB_EMULATOR_HOST)
    if host:
        described = f"the Pub/Sub emulator at PUBSUB_EMULATOR_HOST={host}"
        if os.environ.get(PUBSUB_PROJECT_ID):
            return Endpoint(
                f"http://{host}",
                requests.Session(),
                os.environ[PUBSUB_PROJECT_ID],
                described,
                PUBSUB_PROJECT_ID,
            )
        twin = next((t for t in _twins() if t.emulator_host == host), None)
        if twin is not None:
            source = f"the twin of {twin.env} serving that emulator"
            return Endpoint(f"http://{host}", requests.Session(), twin.project, described, source)
        return Endpoint(f"http://{host}", requests.Session(), None, described)
    twin = running_twin(project=project)
    if twin is not None:
        return Endpoint(
            f"http://{twin.emulator_host}",
            requests.Session(),
            twin.project,
            f"the Pub/Sub emulator of the twin of {twin.env} (make up), at {twin.emulator_host}",
            f"the twin of {twin.env}",
        )
    session, adc_project = google_session()
    return Endpoint(
        PUBSUB_ENDPOINT,
        session,
        adc_project,
        PUBSUB_ENDPOINT,
        "the Application Default Credentials",
    )


def _twins() -> list[Any]:
    root = twin_root()
    envs = sorted(p.name for p in root.glob("*") if p.is_dir()) if root.is_dir() else []
    return [t for t in (running_twin(env=e) for e in envs) if t is not None]


def google_session() -> tuple[Any, str | None]:
    """An AuthorizedSession with Application Default Credentials, and their project."""
    import google.auth
    import google.auth.exceptions
    from google.auth.transport.requests import AuthorizedSession

    try:
        credentials, project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except google.auth.exceptions.DefaultCredentialsError:
        raise PubSubError(
            "no Google credentials (Application Default Credentials): run `gcloud auth "
            "application-default login`, or set PUBSUB_EMULATOR_HOST=host:port for a Pub/Sub "
            "emulator, or `make up` for a twin"
        ) from None
    return AuthorizedSession(credentials), project


def check_project(
    env_project: str, requested: str | None, endpoint: Endpoint | None, allow: bool
) -> str | None:
    """None when the tool may go on, else the one-line refusal. `requested` is --project;
    `endpoint` None means it has not been looked up yet (only --project is checked)."""
    target = requested or env_project
    if allow:
        return None
    if target != env_project:
        return (
            f"--project: got {target!r}, allowed the environment's project {env_project!r} "
            f"(or {ALLOW_FLAG})"
        )
    if endpoint is not None and endpoint.project not in (None, env_project):
        return (
            f"{endpoint.described}: is for project {endpoint.project!r} "
            f"({endpoint.project_source}), allowed the environment's project {env_project!r} "
            f"(or {ALLOW_FLAG})"
        )
    return None


class PubSub:
    """The few Pub/Sub REST calls the operator tools make."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        import google.auth.exceptions
        import requests

        url = f"{self.endpoint.base}/v1/{quote(path, safe='/:')}"
        try:
            response = self.endpoint.session.request(method, url, json=body, timeout=TIMEOUT)
        except (requests.RequestException, google.auth.exceptions.GoogleAuthError) as exc:
            raise PubSubError(f"{method} {url}: {type(exc).__name__}: {reason(exc)}") from None
        if response.status_code >= 300:
            raise PubSubError(
                f"{method} {url}: HTTP {response.status_code}: {_error_text(response)}"
            )
        try:
            return response.json() if response.content else {}
        except ValueError:
            raise PubSubError(f"{method} {url}: not JSON: {response.text[:200]!r}") from None

    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        message: dict[str, Any] = {"data": base64.b64encode(data).decode()}
        if attributes:
            message["attributes"] = attributes
        answer = self.call("POST", f"{topic}:publish", {"messages": [message]})
        try:
            return str(answer["messageIds"][0])
        except (KeyError, IndexError, TypeError):
            raise PubSubError(f"publish to {topic}: no message id in {answer!r}") from None

    def create_subscription(self, path: str, body: dict[str, Any]) -> None:
        self.call("PUT", path, body)

    def delete_subscription(self, path: str) -> None:
        self.call("DELETE", path)

    def pull(self, subscription: str, max_messages: int) -> list[dict[str, Any]]:
        """Up to `max_messages` received messages (`ackId`, `message` with `data` decoded to
        bytes), without waiting for more: returnImmediately, which Google discourages for
        throughput but still honours; the tools poll a few subscriptions, briefly."""
        answer = self.call(
            "POST",
            f"{subscription}:pull",
            {"maxMessages": max_messages, "returnImmediately": True},
        )
        received = answer.get("receivedMessages", []) if isinstance(answer, dict) else []
        for item in received:
            message = item["message"]
            message["data"] = base64.b64decode(message.get("data", ""))
            message.setdefault("attributes", {})
        return list(received)

    def acknowledge(self, subscription: str, ack_ids: list[str]) -> None:
        if ack_ids:
            self.call("POST", f"{subscription}:acknowledge", {"ackIds": ack_ids})

    def modify_ack_deadline(self, subscription: str, ack_ids: list[str], seconds: int) -> None:
        """0 releases the messages: Pub/Sub may deliver them again at once."""
        if ack_ids:
            self.call(
                "POST",
                f"{subscription}:modifyAckDeadline",
                {"ackIds": ack_ids, "ackDeadlineSeconds": seconds},
            )


def _error_text(response: Any) -> str:
    try:
        error = response.json().get("error", {})
        return f"{error.get('status', '')}: {error.get('message', '')}".strip(": ")[:300]
    except (ValueError, AttributeError):
        return repr(response.text.strip()[:300])


def reason(exc: Exception) -> str:
    """The innermost cause of a requests error, e.g. `[Errno 111] Connection refused`."""
    inner = exc.args[0] if exc.args else exc
    inner = getattr(inner, "reason", inner)
    return str(inner).rsplit(": ", 1)[-1] or type(exc).__name__

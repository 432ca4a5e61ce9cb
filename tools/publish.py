"""Publish one well-formed workflow event (docs/handler.md) to a Pub/Sub topic via REST.

    make publish ENV=dev WORKFLOW=train EVENT=model.train DATA='{"epochs": 5}'
    make publish TOPIC=projects/my-proj/topics/t EVENT=model.train DATA='{"epochs": 5}'
    make publish ENV=dev EVENT=data.ready DATA='{}' PUSH=http://127.0.0.1:8080/
    .venv/bin/python tools/publish.py --topic projects/my-proj/topics/t --type model.train \
        --data '{"epochs": 5}' [--correlation-id ID] [--push-endpoint URL]

Honours PUBSUB_EMULATOR_HOST (plain HTTP, no credentials) like Google's clients; without it, a
twin of the topic's project that is up (`make up`, .twin/<env>/state.json) is used, and
otherwise Application Default Credentials against pubsub.googleapis.com. With --push-endpoint URL
(make: PUSH=URL) it skips Pub/Sub and POSTs the envelope a push subscription would send
straight to a locally served handler (`make run-function`), and prints the handler's answer:
exit 0 if the handler acknowledged the message (as Pub/Sub counts it), else 1.

The event is validated with the handler's own code, so what this publishes is what the handler
accepts. Bad arguments: one line naming the argument, the value and what is allowed; exit 2.
A failed publish: one line, exit 1.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "function_src"))
# Its sibling modules, also when it is run by path from elsewhere (runpy, another cwd).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pubsub_rest import reason  # tools/pubsub_rest.py

from workflow_handler import contract, events, wire
from workflow_handler.settings import CLOUD_PLATFORM_SCOPE, PUBSUB_ENDPOINT

REPO = Path(__file__).resolve().parents[1]
PROG = "publish.py"
TIMEOUT = 30
# What a push subscription counts as an acknowledgement (docs/handler.md).
PUSH_ACK_STATUSES = frozenset({102, 200, 201, 202, 204})
NO_CREDENTIALS_HINT = (
    "run `gcloud auth application-default login` (the caller needs roles/pubsub.publisher), "
    "or set PUBSUB_EMULATOR_HOST=host:port for a Pub/Sub emulator, or deliver to "
    "`make run-function` instead with PUSH=http://127.0.0.1:8080/ (--push-endpoint)"
)


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        _fail(2, message)


def _fail(code: int, message: str) -> NoReturn:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    sys.exit(code)


def _short(value: str, limit: int = 80) -> str:
    return repr(value) if len(value) <= limit else repr(value[: limit - 3] + "...")


def _is_utf8(value: str) -> bool:
    """False for arguments that were not UTF-8 (Python keeps such bytes as lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def build_event(event_type: str, data: str, correlation_id: str | None) -> events.Event:
    """The event from the command-line values, or UsageError naming the bad one."""
    if not contract.is_event_type(event_type):
        raise UsageError(
            f"--type {_short(event_type)}: expected a dotted lowercase event type like "
            f"'model.train' ({contract.EVENT_TYPE_PATTERN}, at most "
            f"{contract.MAX_EVENT_TYPE_LENGTH} characters)"
        )
    if not _is_utf8(data):
        raise UsageError(f"--data {_short(data)}: not UTF-8 text; expected a JSON object")
    try:
        payload = events.loads_strict(data)
    except wire.Untravelable as exc:  # 1e400, NaN, a lone surrogate escape such as \ud800
        raise UsageError(f"--data {_short(data)}: {exc}") from None
    except ValueError as exc:
        raise UsageError(
            f"--data {_short(data)}: not valid JSON ({exc}); expected a JSON object"
        ) from None
    if not isinstance(payload, dict):
        raise UsageError(f"--data {_short(data)}: expected a JSON object like '{{\"epochs\": 5}}'")
    if correlation_id is not None and not (
        _is_utf8(correlation_id) and events.is_correlation_id(correlation_id)
    ):
        raise UsageError(
            f"--correlation-id {_short(correlation_id)}: expected 1 to "
            f"{events.MAX_CORRELATION_ID_LENGTH} characters without control characters"
        )
    raw = {"type": event_type, "payload": payload}
    if correlation_id is not None:
        raw["correlation_id"] = correlation_id
    event = events.validate_event(raw)
    try:
        events.encode_event(event)
    except ValueError:  # wire.UnsendableRequest: cannot happen after loads_strict, kept as a net
        raise UsageError(
            f"--data {_short(data)}: contains a lone surrogate escape (like \\ud800), which "
            "UTF-8 cannot encode; expected a JSON object of valid Unicode text"
        ) from None
    return event


def check_topic(topic: str) -> None:
    if not contract.TOPIC_PATH.match(topic):
        raise UsageError(
            f"--topic {_short(topic)}: expected a full topic path "
            "projects/<project>/topics/<topic> (project: 6-30 of a-z, 0-9, -; "
            "topic: 3-255 characters, starting with a letter)"
        )


def check_push_endpoint(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"--push-endpoint {_short(url)}: expected an http:// or https:// URL, "
            "e.g. http://127.0.0.1:8080/ (where `make run-function` serves)"
        )


def _session(anonymous: bool) -> Any:
    if anonymous:
        import requests

        return requests.Session()
    import google.auth
    import google.auth.exceptions
    from google.auth.transport.requests import AuthorizedSession

    try:
        credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except google.auth.exceptions.DefaultCredentialsError:
        raise RuntimeError(
            f"no Google credentials (Application Default Credentials) to publish with; "
            f"{NO_CREDENTIALS_HINT}"
        ) from None
    return AuthorizedSession(credentials)


def publish(topic: str, data: bytes, attributes: dict[str, str]) -> str:
    """REST publish; returns the message id. Raises RuntimeError with one line on failure."""
    emulator = os.environ.get(contract.ENV_PUBSUB_EMULATOR_HOST) or _twin_emulator(topic)
    endpoint = f"http://{emulator}" if emulator else PUBSUB_ENDPOINT
    body = {"messages": [{"data": base64.b64encode(data).decode(), "attributes": attributes}]}
    url = f"{endpoint}/v1/{quote(topic, safe='/')}:publish"
    try:
        response = _post(_session(bool(emulator)), url, body)
    except _NoConnection as exc:
        if emulator:
            hint = f"is a Pub/Sub emulator at PUBSUB_EMULATOR_HOST={emulator}?"
            raise RuntimeError(f"{exc}; {hint}") from None
        raise
    try:
        return str(response.json()["messageIds"][0])
    except (ValueError, KeyError, IndexError, TypeError):
        raise RuntimeError(f"unexpected answer from {url}: {response.text[:200]!r}") from None


def _twin_emulator(topic: str) -> str | None:
    """The Pub/Sub emulator of a twin (`make up`, tools/twin) running the topic's project."""
    from twin.state import running_twin  # tools/twin/state.py

    match = contract.TOPIC_PATH.match(topic)
    state = running_twin(project=match.group(1)) if match else None
    if state is None:
        return None
    print(
        f"{PROG}: the twin of {state.env} is up (make down ENV={state.env} stops it): "
        f"publishing to its Pub/Sub emulator, PUBSUB_EMULATOR_HOST={state.emulator_host}",
        file=sys.stderr,
    )
    return state.emulator_host


def push(endpoint: str, topic: str, data: bytes, attributes: dict[str, str]) -> tuple[bool, str]:
    """POST the envelope a push subscription would send; returns whether the handler
    acknowledged it, and a one-line summary."""
    import requests

    message_id = str(secrets.randbelow(10**15))
    publish_time = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    project = topic.split("/")[1]
    envelope = {
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": attributes,
            "messageId": message_id,
            "publishTime": publish_time,
        },
        "subscription": f"projects/{project}/subscriptions/local-push",
        "deliveryAttempt": 1,
    }
    try:
        response = _post(requests.Session(), endpoint, envelope, accept_any_status=True)
    except _NoConnection as exc:
        raise RuntimeError(
            f"{exc}; is the function served there? Start it with "
            "`make run-function` (PORT=8080 by default) or pass its URL"
        ) from None
    acknowledged = response.status_code in PUSH_ACK_STATUSES
    summary = f"message {message_id} -> HTTP {response.status_code} {response.text.strip()[:300]}"
    return acknowledged, summary


class _NoConnection(RuntimeError):
    """Nothing answered at the URL (connection refused, unknown host)."""


def _post(session: Any, url: str, body: dict[str, Any], accept_any_status: bool = False) -> Any:
    import google.auth.exceptions
    import requests

    try:
        response = session.post(url, json=body, timeout=TIMEOUT)
    except requests.ConnectionError as exc:
        raise _NoConnection(f"POST {url}: cannot connect ({reason(exc)})") from None
    except google.auth.exceptions.RefreshError as exc:
        raise RuntimeError(
            f"POST {url}: the Google credentials did not give an access token ({exc}); "
            f"{NO_CREDENTIALS_HINT}"
        ) from None
    except (requests.RequestException, google.auth.exceptions.GoogleAuthError) as exc:
        raise RuntimeError(f"POST {url}: {type(exc).__name__}: {exc}") from None
    if not accept_any_status and response.status_code >= 300:
        raise RuntimeError(f"POST {url}: HTTP {response.status_code}: {response.text[:300]!r}")
    return response


def topic_from_config(config_dir: Path, env_name: str, workflow: str | None) -> str:
    """The trigger topic of `workflow` in config/<env>.toml, or exit 2 naming the problem."""
    # Reading the TOML is plain Python: the settings modules start no jsii kernel (Node).
    from ai_workflow.errors import ConfigError
    from ai_workflow_app.config import first_problem, resolve_workflow

    try:
        env, name = resolve_workflow(config_dir, env_name, workflow)
    except ConfigError as exc:
        _fail(2, first_problem(exc))
    return env.trigger_topic_path(name)


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--topic", help="projects/<project>/topics/<topic>")
    target.add_argument("--env", help="environment in config/ whose workflow to trigger")
    parser.add_argument("--workflow", help="with --env: the workflow (default: the first one)")
    parser.add_argument("--config-dir", default="config", help="with --env (default: config)")
    parser.add_argument("--type", required=True, dest="event_type", help="e.g. model.train")
    parser.add_argument("--data", default="{}", help="the payload, a JSON object (default {})")
    parser.add_argument("--correlation-id", help="optional, 1-128 characters")
    parser.add_argument(
        "--push-endpoint",
        help="POST the push envelope to this URL (make run-function) instead of publishing",
    )
    args = parser.parse_args(argv)
    if args.env:
        args.topic = topic_from_config(Path(args.config_dir), args.env, args.workflow)
    elif args.workflow:
        _fail(2, "--workflow: only allowed together with --env")
    try:
        check_topic(args.topic)
        event = build_event(args.event_type, args.data, args.correlation_id)
        if args.push_endpoint is not None:
            check_push_endpoint(args.push_endpoint)
    except UsageError as exc:
        _fail(2, str(exc))
    data = events.encode_event(event)
    attributes = events.event_attributes(event)
    try:
        if args.push_endpoint is not None:
            acknowledged, summary = push(args.push_endpoint, args.topic, data, attributes)
            print(summary)
            return 0 if acknowledged else 1
        else:
            message_id = publish(args.topic, data, attributes)
            print(f"published {event.type} to {args.topic}: message id {message_id}")
    except RuntimeError as exc:
        _fail(1, str(exc))
    except Exception as exc:  # e.g. no Application Default Credentials
        _fail(1, f"{type(exc).__name__}: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

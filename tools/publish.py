"""Publish one well-formed workflow event (docs/handler.md) to a Pub/Sub topic via REST.

    make publish TOPIC=projects/p/topics/t EVENT=model.train DATA='{"epochs": 5}'
    .venv/bin/python tools/publish.py --topic projects/p/topics/t --type model.train \
        --data '{"epochs": 5}' [--correlation-id ID]

Honours PUBSUB_EMULATOR_HOST (plain HTTP, no credentials) like Google's clients; otherwise
uses Application Default Credentials against pubsub.googleapis.com. With --push-endpoint URL
it skips Pub/Sub and POSTs the push envelope a push subscription would send straight to a
locally served handler (`make run-function`).

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
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "function_src"))

from workflow_handler import events
from workflow_handler.settings import CLOUD_PLATFORM_SCOPE, PUBSUB_ENDPOINT, TOPIC_RE

PROG = "publish.py"
TIMEOUT = 30


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


def build_event(event_type: str, data: str, correlation_id: str | None) -> events.Event:
    """The event from the command-line values, or UsageError naming the bad one."""
    if not events.is_event_type(event_type):
        raise UsageError(
            f"--type {_short(event_type)}: expected a dotted lowercase event type like "
            f"'model.train' ({events.EVENT_TYPE_PATTERN}, at most "
            f"{events.MAX_EVENT_TYPE_LENGTH} characters)"
        )
    try:
        payload = events.loads_strict(data)
    except ValueError as exc:
        raise UsageError(
            f"--data {_short(data)}: not valid JSON ({exc}); expected a JSON object"
        ) from None
    if not isinstance(payload, dict):
        raise UsageError(f"--data {_short(data)}: expected a JSON object like '{{\"epochs\": 5}}'")
    if correlation_id is not None and not events.is_correlation_id(correlation_id):
        raise UsageError(
            f"--correlation-id {_short(correlation_id)}: expected 1 to "
            f"{events.MAX_CORRELATION_ID_LENGTH} characters without control characters"
        )
    raw = {"type": event_type, "payload": payload}
    if correlation_id is not None:
        raw["correlation_id"] = correlation_id
    return events.validate_event(raw)


def check_topic(topic: str) -> None:
    if not TOPIC_RE.match(topic):
        raise UsageError(
            f"--topic {_short(topic)}: expected a full topic path projects/<project>/topics/<topic>"
        )


def _session(anonymous: bool) -> Any:
    if anonymous:
        import requests

        return requests.Session()
    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    return AuthorizedSession(credentials)


def publish(topic: str, data: bytes, attributes: dict[str, str]) -> str:
    """REST publish; returns the message id. Raises RuntimeError with one line on failure."""
    emulator = os.environ.get("PUBSUB_EMULATOR_HOST")
    endpoint = f"http://{emulator}" if emulator else PUBSUB_ENDPOINT
    body = {"messages": [{"data": base64.b64encode(data).decode(), "attributes": attributes}]}
    url = f"{endpoint}/v1/{quote(topic, safe='/')}:publish"
    response = _post(_session(bool(emulator)), url, body)
    try:
        return str(response.json()["messageIds"][0])
    except (ValueError, KeyError, IndexError, TypeError):
        raise RuntimeError(f"unexpected answer from {url}: {response.text[:200]!r}") from None


def push(endpoint: str, topic: str, data: bytes, attributes: dict[str, str]) -> str:
    """POST the envelope a push subscription would send; returns a one-line summary."""
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
    response = _post(requests.Session(), endpoint, envelope, accept_any_status=True)
    return f"message {message_id} -> HTTP {response.status_code} {response.text.strip()[:300]}"


def _post(session: Any, url: str, body: dict[str, Any], accept_any_status: bool = False) -> Any:
    import google.auth.exceptions
    import requests

    try:
        response = session.post(url, json=body, timeout=TIMEOUT)
    except (requests.RequestException, google.auth.exceptions.GoogleAuthError) as exc:
        raise RuntimeError(f"POST {url}: {type(exc).__name__}: {exc}") from None
    if not accept_any_status and response.status_code >= 300:
        raise RuntimeError(f"POST {url}: HTTP {response.status_code}: {response.text[:300]!r}")
    return response


def topic_from_config(config_dir: Path, env_name: str, workflow: str | None) -> str:
    """The trigger topic of `workflow` in config/<env>.toml, or exit 2 naming the problem."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "constructs"))
    from ai_workflow.config import first_problem, resolve_workflow
    from ai_workflow.errors import ConfigError

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
    parser.add_argument("--push-endpoint", help="POST a push envelope to this URL instead")
    args = parser.parse_args(argv)
    if args.env:
        args.topic = topic_from_config(Path(args.config_dir), args.env, args.workflow)
    elif args.workflow:
        _fail(2, "--workflow: only allowed together with --env")
    try:
        check_topic(args.topic)
        event = build_event(args.event_type, args.data, args.correlation_id)
    except UsageError as exc:
        _fail(2, str(exc))
    data = events.encode_event(event)
    attributes = events.event_attributes(event)
    try:
        if args.push_endpoint:
            print(push(args.push_endpoint, args.topic, data, attributes))
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

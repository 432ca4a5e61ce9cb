"""Builders for events and Pub/Sub push envelopes, shared by the handler tests."""

from __future__ import annotations

import base64
import itertools
import json
import time
from datetime import UTC, datetime
from typing import Any

from handler_fixtures import SUBSCRIPTION

_ids = itertools.count(int(time.time() * 1000) % 10**9 * 1000)


def next_message_id() -> str:
    return str(next(_ids))


def event_data(
    event_type: str = "model.train",
    payload: dict[str, Any] | None = None,
    correlation_id: str | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {"type": event_type, "payload": payload or {}}
    if correlation_id is not None:
        event["correlation_id"] = correlation_id
    return event


def rfc3339(epoch: float | None = None) -> str:
    moment = datetime.fromtimestamp(time.time() if epoch is None else epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def make_envelope(
    event: Any = None,
    *,
    data: bytes | None = None,
    message_id: str | None = None,
    attributes: dict[str, str] | None = None,
    publish_time: str | None = None,
    delivery_attempt: int | None = 1,
    subscription: str = SUBSCRIPTION,
) -> dict[str, Any]:
    """A push envelope as Pub/Sub sends it. `event` (a dict) is JSON-encoded unless raw `data`
    is given; attributes default to those a well-behaved producer sets."""
    if data is None:
        data = json.dumps(event if event is not None else event_data()).encode()
        if attributes is None and isinstance(event, dict) and isinstance(event.get("type"), str):
            attributes = {"event_type": event["type"]}
            if isinstance(event.get("correlation_id"), str):
                attributes["correlation_id"] = event["correlation_id"]
    message_id = message_id or next_message_id()
    publish_time = publish_time or rfc3339()
    envelope: dict[str, Any] = {
        "message": {
            "data": b64(data),
            "attributes": attributes or {},
            "messageId": message_id,
            "message_id": message_id,
            "publishTime": publish_time,
            "publish_time": publish_time,
        },
        "subscription": subscription,
    }
    if delivery_attempt is not None:
        envelope["deliveryAttempt"] = delivery_attempt
    return envelope

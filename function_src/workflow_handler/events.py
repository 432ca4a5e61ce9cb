"""The event contract and the Pub/Sub push envelope: pure parsing and validation.

Stdlib only and free of I/O, so it is cheap to import and easy to test and fuzz.
The contract is documented in docs/handler.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

# The event type's rule is part of the stack's contract too (routes are keyed by it).
from .contract import EVENT_TYPE_PATTERN, MAX_EVENT_TYPE_LENGTH, is_event_type

# --- The `error` attribute values put on dead-lettered messages (docs/handler.md) -------------
NOT_A_PUSH_ENVELOPE = "not_a_push_envelope"
BAD_ENVELOPE = "bad_envelope"
BAD_BASE64 = "bad_base64"
BAD_UTF8 = "bad_utf8"
BAD_JSON = "bad_json"
SCHEMA_VIOLATION = "schema_violation"
UNKNOWN_EVENT_TYPE = "unknown_event_type"
VERTEX_REJECTED = "vertex_rejected"
RESULTS_PUBLISH_REJECTED = "results_publish_rejected"

ERROR_CODES = frozenset(
    {
        NOT_A_PUSH_ENVELOPE,
        BAD_ENVELOPE,
        BAD_BASE64,
        BAD_UTF8,
        BAD_JSON,
        SCHEMA_VIOLATION,
        UNKNOWN_EVENT_TYPE,
        VERTEX_REJECTED,
        RESULTS_PUBLISH_REJECTED,
    }
)

# --- The event contract -----------------------------------------------------------------------
MAX_CORRELATION_ID_LENGTH = 128
EVENT_KEYS = ("type", "payload", "correlation_id")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
MAX_JSON_DEPTH = 64  # an event's nesting, the top-level object included

# --- Pub/Sub limits that matter when we publish ------------------------------------------------
MAX_ATTRIBUTES = 100
MAX_ATTRIBUTE_KEY_BYTES = 256
MAX_ATTRIBUTE_VALUE_BYTES = 1024

# --- Vertex AI limits ---------------------------------------------------------------------------
PIPELINE_JOB_ID_RE = re.compile(r"[a-z][a-z0-9-]{0,127}\Z")
MAX_LABEL_VALUE_LENGTH = 63
MAX_DISPLAY_NAME_LENGTH = 128


class PermanentError(Exception):
    """A message that can never be handled: dead-letter it. `code` becomes the `error` attribute."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Event:
    type: str
    payload: dict[str, Any]
    correlation_id: str | None = None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def loads_strict(text: str) -> Any:
    """RFC 8259 JSON: no NaN/Infinity, no duplicate keys, at most MAX_JSON_DEPTH levels of
    nesting (so that re-encoding it can never hit the recursion limit). Raises ValueError."""
    try:
        value = json.loads(
            text, object_pairs_hook=_object_without_duplicates, parse_constant=_reject_constant
        )
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (iterative: no recursion limit)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if level > MAX_JSON_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


def validate_event(obj: Any) -> Event:
    """Validate an already-parsed JSON value against the event contract."""
    if not isinstance(obj, dict):
        raise PermanentError(SCHEMA_VIOLATION, f"event must be a JSON object, got {_kind(obj)}")
    unknown = sorted(set(obj) - set(EVENT_KEYS))
    if unknown:
        raise PermanentError(
            SCHEMA_VIOLATION,
            f"unknown top-level keys {_short(unknown)}; allowed: type, payload, correlation_id",
        )
    if "type" not in obj:
        raise PermanentError(SCHEMA_VIOLATION, "missing 'type'")
    event_type = obj["type"]
    if not is_event_type(event_type):
        raise PermanentError(
            SCHEMA_VIOLATION,
            f"'type' {_short(event_type)} must be a dotted lowercase name like 'model.train' "
            f"(pattern {EVENT_TYPE_PATTERN}, at most {MAX_EVENT_TYPE_LENGTH} characters)",
        )
    if "payload" not in obj:
        raise PermanentError(SCHEMA_VIOLATION, "missing 'payload'")
    payload = obj["payload"]
    if not isinstance(payload, dict):
        raise PermanentError(
            SCHEMA_VIOLATION, f"'payload' must be a JSON object, got {_kind(payload)}"
        )
    correlation_id = obj.get("correlation_id")
    if "correlation_id" in obj and not is_correlation_id(correlation_id):
        raise PermanentError(
            SCHEMA_VIOLATION,
            f"'correlation_id' {_short(correlation_id)} must be a string of 1 to "
            f"{MAX_CORRELATION_ID_LENGTH} characters without control characters",
        )
    return Event(type=event_type, payload=payload, correlation_id=correlation_id)


def is_correlation_id(value: object) -> bool:
    return (
        isinstance(value, str)
        and 1 <= len(value) <= MAX_CORRELATION_ID_LENGTH
        and _CONTROL_RE.search(value) is None
    )


def decode_event(data: bytes) -> Event:
    """Message data (already base64-decoded) -> Event, or PermanentError (bad_utf8/json/schema)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PermanentError(
            BAD_UTF8, f"message data is not UTF-8: {exc.reason} at byte {exc.start}"
        ) from None
    try:
        obj = loads_strict(text)
    except ValueError as exc:
        raise PermanentError(BAD_JSON, f"message data is not JSON: {exc}") from None
    return validate_event(obj)


def encode_event(event: Event) -> bytes:
    """The canonical wire form of an event (compact, sorted keys, UTF-8)."""
    obj: dict[str, Any] = {"type": event.type, "payload": event.payload}
    if event.correlation_id is not None:
        obj["correlation_id"] = event.correlation_id
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_attributes(event: Event, **extra: str) -> dict[str, str]:
    """The attributes a producer sets so that subscriptions can filter on them."""
    attributes = {"event_type": event.type}
    if event.correlation_id is not None:
        attributes["correlation_id"] = event.correlation_id
    attributes.update(extra)
    return attributes


# --- The Pub/Sub push envelope ------------------------------------------------------------------


@dataclass(frozen=True)
class PushMessage:
    message_id: str
    publish_time: datetime
    data_b64: str
    attributes: dict[str, str]
    subscription: str | None
    delivery_attempt: int | None


@dataclass
class Salvage:
    """What can be saved from a request for the dead-letter topic, whatever its shape."""

    data: bytes
    data_source: str  # "message_data" or "request_body"
    attributes: dict[str, str] = field(default_factory=dict)
    extra_attributes: dict[str, str] = field(default_factory=dict)
    message_id: str | None = None
    subscription: str | None = None
    delivery_attempt: int | None = None


class EnvelopeError(PermanentError):
    def __init__(self, code: str, detail: str, salvage: Salvage) -> None:
        super().__init__(code, detail)
        self.salvage = salvage


_RFC3339_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))\Z"
)


def parse_rfc3339(value: str) -> datetime:
    """Parse a Pub/Sub publishTime (RFC 3339, up to nanoseconds). Raises ValueError."""
    match = _RFC3339_RE.match(value)
    if match is None:
        raise ValueError("not an RFC 3339 timestamp")
    year, month, day, hour, minute, second, frac, zulu, sign, off_h, off_m = match.groups()
    micros = int((frac or "0")[:6].ljust(6, "0"))
    if zulu:
        tz = UTC
    else:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        if offset >= timedelta(hours=24):
            raise ValueError("UTC offset out of range")
        tz = timezone(offset if sign == "+" else -offset)
    return datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second), micros, tzinfo=tz
    )


def b64decode_strict(value: str) -> bytes:
    """Standard base64 with padding, no whitespace. Raises ValueError."""
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(str(exc)) from None


def _str_map(value: object) -> dict[str, str] | None:
    if isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return dict(value)
    return None


def salvage_request(body: bytes, envelope: object = None) -> Salvage:
    """Best effort, never raises: the message's own data and attributes when they decode,
    otherwise the raw request body (so nothing is lost on the dead-letter topic)."""
    message = envelope.get("message") if isinstance(envelope, dict) else None
    if not isinstance(message, dict):
        return Salvage(data=body, data_source="request_body")
    salvage = Salvage(data=body, data_source="request_body")
    salvage.attributes = _str_map(message.get("attributes")) or {}
    message_id = message.get("messageId", message.get("message_id"))
    if isinstance(message_id, str) and message_id:
        salvage.message_id = message_id
    if isinstance(envelope, dict):
        subscription = envelope.get("subscription")
        if isinstance(subscription, str):
            salvage.subscription = subscription
        attempt = envelope.get("deliveryAttempt")
        if isinstance(attempt, int) and not isinstance(attempt, bool):
            salvage.delivery_attempt = attempt
    data_b64 = message.get("data", "")
    if isinstance(data_b64, str):
        try:
            salvage.data = b64decode_strict(data_b64)
            salvage.data_source = "message_data"
        except ValueError:
            pass
    return salvage


def load_envelope(body: bytes) -> Any:
    """The request body as JSON, or EnvelopeError(not_a_push_envelope)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise EnvelopeError(
            NOT_A_PUSH_ENVELOPE,
            f"request body is not JSON: {type(exc).__name__}",
            salvage_request(body),
        ) from None


def parse_push_envelope(body: bytes) -> PushMessage:
    """Validate a Pub/Sub push request body. Raises EnvelopeError (a PermanentError)."""
    envelope = load_envelope(body)
    if not isinstance(envelope, dict) or not isinstance(envelope.get("message"), dict):
        raise EnvelopeError(
            NOT_A_PUSH_ENVELOPE,
            "request body is not a Pub/Sub push envelope (a JSON object with a 'message' object)",
            salvage_request(body, envelope),
        )
    message: dict[str, Any] = envelope["message"]

    def bad(detail: str) -> EnvelopeError:
        return EnvelopeError(BAD_ENVELOPE, detail, salvage_request(body, envelope))

    message_id = message.get("messageId", message.get("message_id"))
    if not isinstance(message_id, str) or not message_id:
        raise bad("message.messageId must be a non-empty string")
    publish_time_raw = message.get("publishTime", message.get("publish_time"))
    if not isinstance(publish_time_raw, str):
        raise bad("message.publishTime must be an RFC 3339 timestamp string")
    try:
        publish_time = parse_rfc3339(publish_time_raw)
    except ValueError as exc:
        raise bad(f"message.publishTime {_short(publish_time_raw)}: {exc}") from None
    data_b64 = message.get("data", "")
    if not isinstance(data_b64, str):
        raise bad(f"message.data must be a base64 string, got {_kind(data_b64)}")
    raw_attributes = message.get("attributes")
    attributes = {} if raw_attributes is None else _str_map(raw_attributes)
    if attributes is None:
        raise bad("message.attributes must be an object of string values")
    subscription = envelope.get("subscription")
    if subscription is not None and not isinstance(subscription, str):
        raise bad(f"subscription must be a string, got {_kind(subscription)}")
    attempt = envelope.get("deliveryAttempt")
    if attempt is not None and (
        not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1
    ):
        raise bad(f"deliveryAttempt must be a positive integer, got {_short(attempt)}")
    return PushMessage(
        message_id=message_id,
        publish_time=publish_time,
        data_b64=data_b64,
        attributes=attributes,
        subscription=subscription,
        delivery_attempt=attempt,
    )


def decode_message_data(message: PushMessage) -> bytes:
    try:
        return b64decode_strict(message.data_b64)
    except ValueError as exc:
        raise PermanentError(BAD_BASE64, f"message.data is not valid base64: {exc}") from None


def check_attributes_agree(event: Event, attributes: dict[str, str]) -> None:
    """Subscriptions filter on the `event_type`/`correlation_id` attributes: they must not lie."""
    claimed_type = attributes.get("event_type")
    if claimed_type is not None and claimed_type != event.type:
        raise PermanentError(
            SCHEMA_VIOLATION,
            f"attribute event_type {_short(claimed_type)} differs from the event's type "
            f"{_short(event.type)}",
        )
    claimed_id = attributes.get("correlation_id")
    if claimed_id is not None and claimed_id != event.correlation_id:
        raise PermanentError(
            SCHEMA_VIOLATION,
            f"attribute correlation_id {_short(claimed_id)} differs from the event's "
            f"correlation_id {_short(event.correlation_id)}",
        )


# --- Identifiers, labels and attributes we emit ---------------------------------------------------


def _id_prefix(workflow: str) -> str:
    prefix = re.sub(r"[^a-z0-9]+", "-", workflow.lower()).strip("-")
    if not prefix or not prefix[0].isalpha():
        prefix = "wf-" + prefix
    return prefix[:60].rstrip("-")


def pipeline_job_id(workflow: str, message_id: str) -> str:
    """A valid Vertex AI job id derived only from the workflow and the Pub/Sub message id.

    Pub/Sub message ids are decimal strings; they are kept readable. Anything else is hashed
    (with an `h` marker, so the two forms can never collide).
    """
    if message_id.isascii() and message_id.isdigit() and len(message_id) <= 40:
        suffix = message_id
    else:
        digest = hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()
        suffix = "h" + digest[:40]
    return f"{_id_prefix(workflow)}-{suffix}"


def effective_correlation_id(event: Event, message_id: str) -> str:
    """The event's correlation id, else the message id (hashed if it is not a valid one)."""
    if event.correlation_id is not None:
        return event.correlation_id
    if is_correlation_id(message_id):
        return message_id
    return "msg-" + hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def label_value(value: str) -> str:
    """A Vertex AI label value: lowercase ASCII letters, digits, `_` and `-`, at most 63."""
    return re.sub(r"[^a-z0-9_-]", "-", value.lower())[:MAX_LABEL_VALUE_LENGTH]


def clean_text(value: str) -> str:
    """Drop what cannot be sent as UTF-8 (lone surrogates from a JSON escape)."""
    return value.encode("utf-8", "replace").decode("utf-8")


def truncate_utf8(value: str, max_bytes: int) -> str:
    encoded = clean_text(value).encode("utf-8")
    if len(encoded) <= max_bytes:
        return clean_text(value)
    return encoded[:max_bytes].decode("utf-8", "ignore")


def dead_letter_attributes(
    original: dict[str, str], ours: dict[str, str]
) -> tuple[dict[str, str], int]:
    """Original attributes plus ours, within Pub/Sub's limits. Ours win on a clash; original keys
    starting with `goog` (reserved) or too long are dropped. Returns (attributes, dropped)."""
    result = {k: truncate_utf8(v, MAX_ATTRIBUTE_VALUE_BYTES) for k, v in ours.items()}
    room = MAX_ATTRIBUTES - len(result) - 1  # one left for `dropped_attributes`
    dropped = 0
    for key in sorted(original):
        if key in result:
            continue
        key_ok = (
            not key.lower().startswith("goog")
            and 0 < len(clean_text(key).encode()) <= MAX_ATTRIBUTE_KEY_BYTES
            and clean_text(key) == key
        )
        if not key_ok or room <= 0:
            dropped += 1
            continue
        result[key] = truncate_utf8(original[key], MAX_ATTRIBUTE_VALUE_BYTES)
        room -= 1
    if dropped:
        result["dropped_attributes"] = str(dropped)
    return result, dropped


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."

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
from . import contract, wire
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
BAD_PIPELINE_EVENT = "bad_pipeline_event"
UNKNOWN_PIPELINE_JOB = "unknown_pipeline_job"
UNKNOWN_ROUTE = "unknown_route"
NON_FINITE_NUMBER = wire.NON_FINITE_NUMBER
UNPAIRED_SURROGATE = wire.UNPAIRED_SURROGATE
EVENT_TOO_LARGE = wire.EVENT_TOO_LARGE
REQUEST_NOT_SERIALIZABLE = wire.REQUEST_NOT_SERIALIZABLE

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
        BAD_PIPELINE_EVENT,
        UNKNOWN_PIPELINE_JOB,
        UNKNOWN_ROUTE,
        NON_FINITE_NUMBER,
        UNPAIRED_SURROGATE,
        EVENT_TOO_LARGE,
        REQUEST_NOT_SERIALIZABLE,
    }
)

DEAD_LETTER_ATTRIBUTES = (
    "error",
    "error_detail",
    "source_message_id",
    "source_subscription",
    "workflow",
    "dead_letter_payload",
    "dropped_attributes",
    "pipeline_job",
)
"""The attributes the handler adds to a message it dead-letters (docs/handler.md); a replay
(tools/replay_dead_letters.py) drops them and keeps the producer's."""

# --- The event contract -----------------------------------------------------------------------
MAX_CORRELATION_ID_LENGTH = 128
MAX_IDEMPOTENCY_KEY_LENGTH = 128
EVENT_KEYS = ("type", "payload", "correlation_id", "idempotency_key")
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
    idempotency_key: str | None = None
    """Names the request: two events with the same type and key start one job (per workflow)."""


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def loads_strict(text: str) -> Any:
    """RFC 8259 JSON: no duplicate keys, at most MAX_JSON_DEPTH levels of nesting (so that
    re-encoding it can never hit the recursion limit), and only values every request can carry:
    no number outside the double range (`1e400`, `NaN`, `Infinity`) and no lone surrogate
    escape (wire.check_value). Raises ValueError (wire.Untravelable for the latter two)."""
    try:
        value = json.loads(
            text,
            object_pairs_hook=_object_without_duplicates,
            parse_float=wire.parse_float,
            parse_constant=wire.parse_constant,
        )
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    if wire.check_value(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def validate_event(obj: Any) -> Event:
    """Validate an already-parsed JSON value against the event contract."""
    if not isinstance(obj, dict):
        raise PermanentError(SCHEMA_VIOLATION, f"event must be a JSON object, got {_kind(obj)}")
    unknown = sorted(set(obj) - set(EVENT_KEYS))
    if unknown:
        raise PermanentError(
            SCHEMA_VIOLATION,
            f"unknown top-level keys {_short(unknown)}; allowed: {', '.join(EVENT_KEYS)}",
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
    for key, longest in (
        ("correlation_id", MAX_CORRELATION_ID_LENGTH),
        ("idempotency_key", MAX_IDEMPOTENCY_KEY_LENGTH),
    ):
        if key in obj and not _is_short_text(obj[key], longest):
            raise PermanentError(
                SCHEMA_VIOLATION,
                f"'{key}' {_short(obj[key])} must be a string of 1 to "
                f"{longest} characters without control characters",
            )
    if contract.is_reserved_event_type(event_type):
        _check_probe_payload(event_type, payload)
    correlation_id = obj.get("correlation_id")
    idempotency_key = obj.get("idempotency_key")
    return Event(
        type=event_type,
        payload=payload,
        correlation_id=correlation_id,
        idempotency_key=idempotency_key,
    )


def _is_short_text(value: object, longest: int) -> bool:
    """A string of 1..`longest` characters without control characters."""
    return isinstance(value, str) and 1 <= len(value) <= longest and not _CONTROL_RE.search(value)


def check_parameters_fit(parameters: dict[str, Any]) -> None:
    """The job's parameter values (the route's overlaid with the payload) must fit in the
    follow-up events that carry them. Raises PermanentError(event_too_large)."""
    size = wire.json_size(parameters)
    if size > wire.MAX_PARAMETERS_BYTES:
        raise PermanentError(
            EVENT_TOO_LARGE,
            f"payload: got parameter values of {size} bytes as JSON (the route's and the "
            f"payload's), allowed at most {wire.MAX_PARAMETERS_BYTES}: every follow-up event "
            "carries them and must fit one 10 MB Pub/Sub publish request",
        )


def is_correlation_id(value: object) -> bool:
    return _is_short_text(value, MAX_CORRELATION_ID_LENGTH)


def is_idempotency_key(value: object) -> bool:
    return _is_short_text(value, MAX_IDEMPOTENCY_KEY_LENGTH)


# --- The probe (make smoke, docs/handler.md "The probe") ---------------------------------------


def _check_probe_payload(event_type: str, payload: dict[str, Any]) -> None:
    """A probe's payload is exactly {"nonce"}; a probe result's {"nonce", "workflow"}."""
    keys = ("nonce",) if event_type == contract.PROBE_EVENT_TYPE else ("nonce", "workflow")
    if sorted(payload) != sorted(keys):
        raise PermanentError(
            SCHEMA_VIOLATION,
            f"a {event_type} payload has exactly the keys {', '.join(keys)}; "
            f"got {_short(sorted(payload))}",
        )
    nonce = payload["nonce"]
    if not isinstance(nonce, str) or not contract.PROBE_NONCE.match(nonce):
        raise PermanentError(
            SCHEMA_VIOLATION,
            f"'payload.nonce' {_short(nonce)} must match {contract.PROBE_NONCE_PATTERN}",
        )
    workflow = payload.get("workflow", "-")
    if "workflow" in payload and (
        not isinstance(workflow, str) or not contract.WORKFLOW_NAME.match(workflow)
    ):
        raise PermanentError(
            SCHEMA_VIOLATION,
            f"'payload.workflow' {_short(workflow)} must be a workflow name "
            f"({contract.WORKFLOW_NAME_PATTERN})",
        )


def probe_result(probe: Event, workflow: str, correlation_id: str) -> Event:
    """The answer to a probe: its nonce, the answering workflow, the probe's correlation id."""
    return Event(
        type=contract.PROBE_RESULT_EVENT_TYPE,
        payload={"nonce": probe.payload["nonce"], "workflow": workflow},
        correlation_id=correlation_id,
    )


def decode_event(data: bytes) -> Event:
    """Message data (already base64-decoded) -> Event, or PermanentError (bad_utf8/json/schema)."""
    return validate_event(decode_json(data))


def decode_json(data: bytes) -> Any:
    """Message data (already base64-decoded) -> a JSON value, or PermanentError (bad_utf8/json)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PermanentError(
            BAD_UTF8, f"message data is not UTF-8: {exc.reason} at byte {exc.start}"
        ) from None
    try:
        obj = loads_strict(text)
    except wire.Untravelable as exc:
        raise PermanentError(exc.code, f"message data: {exc}") from None
    except ValueError as exc:
        raise PermanentError(BAD_JSON, f"message data is not JSON: {exc}") from None
    return obj


def encode_event(event: Event) -> bytes:
    """The canonical wire form of an event (compact, sorted keys, UTF-8). Raises
    wire.UnsendableRequest for a value no request can carry (validation keeps them out)."""
    obj: dict[str, Any] = {"type": event.type, "payload": event.payload}
    if event.correlation_id is not None:
        obj["correlation_id"] = event.correlation_id
    if event.idempotency_key is not None:
        obj["idempotency_key"] = event.idempotency_key
    return wire.encode_request(obj, sort_keys=True)


def event_attributes(event: Event, **extra: str) -> dict[str, str]:
    """The attributes a producer sets so that subscriptions can filter on them."""
    attributes = {"event_type": event.type}
    if event.correlation_id is not None:
        attributes["correlation_id"] = event.correlation_id
    if event.idempotency_key is not None:
        attributes["idempotency_key"] = event.idempotency_key
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
    try:  # what the handler copies into its own requests and log lines must travel
        wire.check_value(
            {
                "message": {"messageId": message_id, "attributes": attributes},
                "subscription": subscription,
            },
            MAX_JSON_DEPTH,
        )
    except wire.Untravelable as exc:
        raise EnvelopeError(
            exc.code, f"push envelope: {exc}", salvage_request(body, envelope)
        ) from None
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
    """Subscriptions filter on the `event_type`/`correlation_id`/`idempotency_key` attributes:
    they must not lie."""
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
    claimed_key = attributes.get("idempotency_key")
    if claimed_key is not None and claimed_key != event.idempotency_key:
        raise PermanentError(
            SCHEMA_VIOLATION,
            f"attribute idempotency_key {_short(claimed_key)} differs from the event's "
            f"idempotency_key {_short(event.idempotency_key)}",
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


def keyed_pipeline_job_id(workflow: str, event_type: str, idempotency_key: str) -> str:
    """The job id of an event that carries an idempotency key: derived from the key and the
    event's type only, never from the message id, so a re-published copy of the event (a new
    message id) finds the job the first copy started. `k` marks the form."""
    text = f"{event_type}\n{idempotency_key}".encode("utf-8", "surrogatepass")
    return f"{_id_prefix(workflow)}-k{hashlib.sha256(text).hexdigest()[:40]}"


def job_id_for(workflow: str, message_id: str, event: Event) -> str:
    """The idempotency key when the event has one, else the message id."""
    if event.idempotency_key is not None:
        return keyed_pipeline_job_id(workflow, event.type, event.idempotency_key)
    return pipeline_job_id(workflow, message_id)


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


# A job's labels are all the handler has of its source event when the job completes, so the
# values it needs back exactly are stored losslessly: as they are when they already are a valid
# label value, otherwise as a readable (lossy) `<key>` for people plus the exact text in base32
# chunks `<key>_x0`, `<key>_x1`, ... (lowercase base32 is within the label alphabet).
_LABEL_SAFE_RE = re.compile(r"[a-z0-9_-]{1,63}\Z")
_CHUNK = MAX_LABEL_VALUE_LENGTH


def text_labels(key: str, text: str) -> dict[str, str]:
    """Labels that carry `text` exactly (see `label_text`)."""
    if _LABEL_SAFE_RE.match(text):
        return {key: text}
    encoded = base64.b32encode(text.encode("utf-8", "surrogatepass")).decode("ascii")
    encoded = encoded.rstrip("=").lower()
    labels = {key: label_value(text) or "-"}
    for i in range(0, len(encoded), _CHUNK):
        labels[f"{key}_x{i // _CHUNK}"] = encoded[i : i + _CHUNK]
    return labels


def label_text(key: str, labels: dict[str, Any]) -> str | None:
    """The text `text_labels(key, text)` stored, or None when it is missing or damaged."""
    if f"{key}_x0" not in labels:
        value = labels.get(key)
        return value if isinstance(value, str) and _LABEL_SAFE_RE.match(value) else None
    chunks = []
    for i in range(len(labels)):
        chunk = labels.get(f"{key}_x{i}")
        if chunk is None:
            break
        if not isinstance(chunk, str):
            return None
        chunks.append(chunk)
    encoded = "".join(chunks).upper()
    try:
        raw = base64.b32decode(encoded + "=" * (-len(encoded) % 8))
        return raw.decode("utf-8", "surrogatepass")
    except (binascii.Error, ValueError):
        return None


def event_type_labels(event_type: str) -> dict[str, str]:
    """An event type as labels: `model.train` is stored readably as `model-train` (event types
    have no `-`, so the reverse is exact)."""
    return text_labels("event_type", event_type.replace(".", "-"))


def label_event_type(labels: dict[str, Any]) -> str | None:
    text = label_text("event_type", labels)
    if text is None:
        return None
    event_type = text.replace("-", ".")
    return event_type if is_event_type(event_type) else None


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


# --- Pipeline job events: what a log sink delivers, and what the handler publishes then ----------

OUTCOMES = {
    contract.SUCCEEDED: "succeeded",
    contract.FAILED: "failed",
    contract.CANCELLED: "cancelled",
}
"""Terminal PipelineJob state -> the `outcome` of the follow-up event."""
STARTED = "started"
"""The `outcome` of the start event (a route's on_start)."""
_LOG_ID_SUFFIX = "/logs/" + contract.PIPELINE_JOB_EVENTS_LOG_ID
MAX_OUTPUTS_BYTES = 256 * 1024
"""A follow-up event leaves out the job's outputs when they would make it larger than this."""


@dataclass(frozen=True)
class PipelineJobSignal:
    """What the handler takes from a pipeline job event: which job, and what the entry claims.
    Only a hint; the job itself (GET) is the authority."""

    job_id: str
    location: str | None
    project: str | None
    claimed_state: str | None


def peek_json(message: PushMessage) -> Any:
    """The message data as JSON when it is valid base64, UTF-8 and JSON; else None. Never
    raises (the strict decoding, with its errors, comes later)."""
    try:
        return decode_json(decode_message_data(message))
    except PermanentError:
        return None


def is_log_entry(obj: Any) -> bool:
    """A LogEntry as a log sink publishes it (never an event: those have `type`)."""
    return isinstance(obj, dict) and "logName" in obj and "type" not in obj


def parse_pipeline_job_event(obj: Any) -> PipelineJobSignal:
    """A Cloud Logging LogEntry of aiplatform.googleapis.com/pipeline_job_events (docs/handler.md,
    "Pipeline job events") -> the job it is about. Raises PermanentError(bad_pipeline_event)."""

    def bad(detail: str) -> PermanentError:
        return PermanentError(BAD_PIPELINE_EVENT, detail)

    if not isinstance(obj, dict):
        raise bad(f"a pipeline job event must be a JSON object (a LogEntry), got {_kind(obj)}")
    log_name = obj.get("logName")
    if log_name is not None and (
        not isinstance(log_name, str) or not log_name.endswith(_LOG_ID_SUFFIX)
    ):
        raise bad(f"logName {_short(log_name)} is not a {contract.PIPELINE_JOB_EVENTS_LOG_ID} log")
    resource = obj.get("resource")
    if not isinstance(resource, dict):
        raise bad("missing 'resource' (the PipelineJob the entry is about)")
    resource_type = resource.get("type")
    if resource_type is not None and resource_type != contract.PIPELINE_JOB_RESOURCE_TYPE:
        raise bad(
            f"resource.type {_short(resource_type)} is not {contract.PIPELINE_JOB_RESOURCE_TYPE}"
        )
    labels = resource.get("labels")
    job_id = labels.get("pipeline_job_id") if isinstance(labels, dict) else None
    if not isinstance(job_id, str) or not PIPELINE_JOB_ID_RE.match(job_id):
        raise bad(f"resource.labels.pipeline_job_id {_short(job_id)} is not a PipelineJob id")
    assert isinstance(labels, dict)
    location, project = labels.get("location"), labels.get("resource_container")
    payload = obj.get("jsonPayload")
    state = payload.get("state") if isinstance(payload, dict) else None
    return PipelineJobSignal(
        job_id=job_id,
        location=location if isinstance(location, str) else None,
        project=project if isinstance(project, str) else None,
        claimed_state=state if isinstance(state, str) else None,
    )


def is_own_pipeline_job(workflow: str, job_id: str) -> bool:
    """Whether `job_id` is one the handler of `workflow` creates (contract's pattern)."""
    return re.fullmatch(contract.pipeline_job_id_pattern(workflow), job_id) is not None


def outcome_key(job_name: str, outcome: str) -> str:
    """The idempotency key of the event that reports `outcome` of job `job_name`: the same job
    and outcome always give the same key, however often the signal arrives."""
    text = f"{job_name}\n{outcome}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(text).hexdigest()[:32]


@dataclass(frozen=True)
class JobView:
    """What a follow-up event says about a PipelineJob, read from the job resource (the body of
    Vertex AI's create or GET)."""

    name: str
    state: str | None
    labels: dict[str, Any]
    output_directory: str | None
    parameters: dict[str, Any]
    outputs: dict[str, Any]
    error: dict[str, Any] | None

    @property
    def source_event_type(self) -> str | None:
        return label_event_type(self.labels)

    @property
    def correlation_id(self) -> str | None:
        value = label_text("correlation_id", self.labels)
        return value if value is not None and is_correlation_id(value) else None

    @property
    def idempotency_key(self) -> str | None:
        value = label_text("idempotency_key", self.labels)
        return value if value is not None and is_idempotency_key(value) else None

    @property
    def workflow_label(self) -> str | None:
        value = self.labels.get("workflow")
        return value if isinstance(value, str) else None


def job_view(body: Any) -> JobView | None:
    """The parts of a PipelineJob resource a follow-up event uses; None without a name."""
    if not isinstance(body, dict):
        return None
    name = body.get("name")
    if not isinstance(name, str) or not name:
        return None
    state = body.get("state")
    labels = body.get("labels")
    runtime = body.get("runtimeConfig")
    runtime = runtime if isinstance(runtime, dict) else {}
    output_directory = runtime.get("gcsOutputDirectory")
    parameters = runtime.get("parameterValues")
    error = body.get("error")
    return JobView(
        name=name,
        state=state if isinstance(state, str) else None,
        labels=labels if isinstance(labels, dict) else {},
        output_directory=output_directory if isinstance(output_directory, str) else None,
        parameters=parameters if isinstance(parameters, dict) else {},
        outputs=pipeline_outputs(body),
        error=error if isinstance(error, dict) else None,
    )


def pipeline_outputs(body: dict[str, Any]) -> dict[str, Any]:
    """The pipeline's own outputs, where the job exposes them: the root task of
    `jobDetail.taskDetails` (the one without a parent) has the output artifacts under `outputs`
    (name -> {artifacts: [{uri}]}) and the output parameters in its execution's metadata, as
    `output:<name>` keys. {} when there are none."""
    detail = body.get("jobDetail")
    tasks = detail.get("taskDetails") if isinstance(detail, dict) else None
    if not isinstance(tasks, list):
        return {}
    roots = [
        t for t in tasks if isinstance(t, dict) and t.get("parentTaskId") in (None, "", "0", 0)
    ]
    if len(roots) != 1:
        return {}
    root = roots[0]
    artifacts: dict[str, list[str]] = {}
    raw_outputs = root.get("outputs")
    for name, listed in (raw_outputs if isinstance(raw_outputs, dict) else {}).items():
        items = listed.get("artifacts") if isinstance(listed, dict) else None
        uris = [
            a["uri"]
            for a in (items if isinstance(items, list) else [])
            if isinstance(a, dict) and isinstance(a.get("uri"), str)
        ]
        if uris:
            artifacts[name] = uris
    execution = root.get("execution")
    metadata = execution.get("metadata") if isinstance(execution, dict) else None
    parameters = {
        key.removeprefix("output:"): value
        for key, value in (metadata if isinstance(metadata, dict) else {}).items()
        if isinstance(key, str) and key.startswith("output:")
    }
    outputs: dict[str, Any] = {}
    if artifacts:
        outputs["artifacts"] = artifacts
    if parameters:
        outputs["parameters"] = parameters
    return outputs


def outcome_event(
    event_type: str,
    workflow: str,
    job: JobView,
    outcome: str,
    *,
    source_event_type: str,
    correlation_id: str,
    source_idempotency_key: str | None,
) -> Event:
    """The follow-up event that reports `outcome` (started, succeeded, failed, cancelled) of
    `job` (docs/events.schema.json). Its idempotency key comes from the job and the outcome."""
    source: dict[str, Any] = {"type": source_event_type, "parameters": job.parameters}
    if source_idempotency_key is not None:
        source["idempotency_key"] = source_idempotency_key
    payload: dict[str, Any] = {
        "workflow": workflow,
        "pipeline_job": job.name,
        "outcome": outcome,
        "state": job.state or "PIPELINE_STATE_UNSPECIFIED",
        "source_event": source,
    }
    if job.output_directory is not None:
        payload["output_directory"] = job.output_directory
    if job.error is not None and outcome != STARTED:
        error: dict[str, Any] = {}
        if isinstance(job.error.get("code"), int) and not isinstance(job.error["code"], bool):
            error["code"] = job.error["code"]
        if isinstance(job.error.get("message"), str):
            error["message"] = job.error["message"][:1000]
        if error:
            payload["error"] = error
    event = Event(
        type=event_type,
        payload=payload,
        correlation_id=correlation_id,
        idempotency_key=outcome_key(job.name, outcome),
    )
    if job.outputs and outcome != STARTED:
        with_outputs = Event(
            type=event.type,
            payload={**payload, "outputs": job.outputs},
            correlation_id=event.correlation_id,
            idempotency_key=event.idempotency_key,
        )
        if _publishable(with_outputs):
            return with_outputs
        payload["outputs_omitted"] = True
    return event


def _publishable(event: Event) -> bool:
    """Whether the next handler would accept it, and it is not too large to carry."""
    try:
        encoded = encode_event(event)
        return len(encoded) <= MAX_OUTPUTS_BYTES and decode_event(encoded) == event
    except (PermanentError, UnicodeError, ValueError, RecursionError):
        return False

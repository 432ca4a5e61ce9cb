"""A corpus of malformed Pub/Sub push requests, each with the documented answer.

Every entry is (name, raw request body, expected HTTP status, expected outcome), where the
outcome is the `error` attribute the message must carry on the dead-letter topic, or
`dropped_stale` / `empty_body` when nothing is published. See docs/handler.md.
"""

from __future__ import annotations

import json
from typing import Any

from handler_envelopes import b64, make_envelope, rfc3339
from handler_fixtures import SUBSCRIPTION

GOOD_EVENT = {"type": "model.train", "payload": {"epochs": 1}}


def _env(**message_overrides: Any) -> bytes:
    """A valid envelope with message fields replaced (a value of ... deletes the field)."""
    envelope = make_envelope(GOOD_EVENT, message_id="4242", attributes={"src": "corpus"})
    message = envelope["message"]
    for key, value in message_overrides.items():
        if value is ...:
            message.pop(key, None)
            message.pop(
                {"messageId": "message_id", "publishTime": "publish_time"}.get(key, ""), None
            )
        else:
            message[key] = value
            alias = {"messageId": "message_id", "publishTime": "publish_time"}.get(key)
            if alias:
                message[alias] = value
    return json.dumps(envelope).encode()


def _env_top(**top: Any) -> bytes:
    envelope = make_envelope(GOOD_EVENT, message_id="4243")
    envelope.update(top)
    return json.dumps(envelope).encode()


def _data(raw: bytes, **attrs: str) -> bytes:
    return json.dumps(
        make_envelope(data=raw, message_id="4244", attributes=attrs or {"src": "corpus"})
    ).encode()


def _event(obj: Any, **attrs: str) -> bytes:
    return _data(json.dumps(obj).encode(), **attrs)


def _raw_event(payload: bytes, extra: bytes = b"") -> bytes:
    """An event whose payload (and extra members) are written as raw JSON text, so that they can
    hold what json.dumps never writes (1e400, a lone \\ud800 escape)."""
    extra = b"," + extra if extra else b""
    return _data(b'{"type":"model.train","payload":' + payload + extra + b"}")


def _raw_envelope(
    message_id: bytes = b'"4245"', attributes: bytes = b"{}", subscription: bytes | None = None
) -> bytes:
    """A valid envelope whose messageId, attributes or subscription is raw JSON text."""
    envelope = make_envelope(
        GOOD_EVENT, message_id="@id@", attributes={"@": "@"}, subscription="@sub@"
    )
    text = json.dumps(envelope).encode()
    return (
        text.replace(b'"@id@"', message_id)
        .replace(b'{"@": "@"}', attributes)
        .replace(b'"@sub@"', subscription or json.dumps(SUBSCRIPTION).encode())
    )


NOT_ENVELOPE = "not_a_push_envelope"
BAD_ENVELOPE = "bad_envelope"
NON_FINITE = "non_finite_number"
SURROGATE = "unpaired_surrogate"

CORPUS: list[tuple[str, bytes, int, str]] = [
    # --- the body is not a push envelope at all -------------------------------------------
    ("empty body", b"", 400, "empty_body"),
    ("json null", b"null", 200, NOT_ENVELOPE),
    ("json array", b"[]", 200, NOT_ENVELOPE),
    ("json string", b'"hello"', 200, NOT_ENVELOPE),
    ("json number", b"42", 200, NOT_ENVELOPE),
    ("empty object", b"{}", 200, NOT_ENVELOPE),
    ("message null", b'{"message": null}', 200, NOT_ENVELOPE),
    ("message string", b'{"message": "x"}', 200, NOT_ENVELOPE),
    ("message array", b'{"message": []}', 200, NOT_ENVELOPE),
    ("only subscription", b'{"subscription": "projects/p/subscriptions/s"}', 200, NOT_ENVELOPE),
    ("plain text", b"please train the model", 200, NOT_ENVELOPE),
    ("truncated json", b'{"message": {"data": "e30=", ', 200, NOT_ENVELOPE),
    ("binary garbage", bytes(range(256)), 200, NOT_ENVELOPE),
    ("invalid utf-8 body", b'{"message": "\xff\xfe"}', 200, NOT_ENVELOPE),
    ("deeply nested arrays", b"[" * 200_000 + b"]" * 200_000, 200, NOT_ENVELOPE),
    ("deeply nested objects", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, 200, NOT_ENVELOPE),
    ("huge float", b"1e999", 200, NOT_ENVELOPE),
    ("xml", b"<message><data>e30=</data></message>", 200, NOT_ENVELOPE),
    ("form encoded", b"message=e30%3D&subscription=s", 200, NOT_ENVELOPE),
    ("an event instead of an envelope", json.dumps(GOOD_EVENT).encode(), 200, NOT_ENVELOPE),
    # --- an envelope with broken message fields ----------------------------------------------
    ("message empty object", b'{"message": {}}', 200, BAD_ENVELOPE),
    ("messageId missing", _env(messageId=...), 200, BAD_ENVELOPE),
    ("messageId empty", _env(messageId=""), 200, BAD_ENVELOPE),
    ("messageId number", _env(messageId=4242), 200, BAD_ENVELOPE),
    ("messageId null", _env(messageId=None), 200, BAD_ENVELOPE),
    ("publishTime missing", _env(publishTime=...), 200, BAD_ENVELOPE),
    ("publishTime number", _env(publishTime=1700000000), 200, BAD_ENVELOPE),
    ("publishTime words", _env(publishTime="yesterday"), 200, BAD_ENVELOPE),
    ("publishTime impossible date", _env(publishTime="2026-02-30T00:00:00Z"), 200, BAD_ENVELOPE),
    ("publishTime no zone", _env(publishTime="2026-01-01T00:00:00"), 200, BAD_ENVELOPE),
    ("publishTime bad offset", _env(publishTime="2026-01-01T00:00:00+25:00"), 200, BAD_ENVELOPE),
    ("publishTime hour 24", _env(publishTime="2026-01-01T24:00:00Z"), 200, BAD_ENVELOPE),
    ("publishTime year zero", _env(publishTime="0000-01-01T00:00:00Z"), 200, BAD_ENVELOPE),
    ("data number", _env(data=123), 200, BAD_ENVELOPE),
    ("data object", _env(data={"type": "model.train"}), 200, BAD_ENVELOPE),
    ("data null", _env(data=None), 200, BAD_ENVELOPE),
    ("attributes list", _env(attributes=["a", "b"]), 200, BAD_ENVELOPE),
    ("attributes number value", _env(attributes={"a": 1}), 200, BAD_ENVELOPE),
    ("attributes string", _env(attributes="a=b"), 200, BAD_ENVELOPE),
    ("subscription number", _env_top(subscription=7), 200, BAD_ENVELOPE),
    ("deliveryAttempt string", _env_top(deliveryAttempt="1"), 200, BAD_ENVELOPE),
    ("deliveryAttempt zero", _env_top(deliveryAttempt=0), 200, BAD_ENVELOPE),
    ("deliveryAttempt negative", _env_top(deliveryAttempt=-3), 200, BAD_ENVELOPE),
    ("deliveryAttempt boolean", _env_top(deliveryAttempt=True), 200, BAD_ENVELOPE),
    ("deliveryAttempt float", _env_top(deliveryAttempt=1.5), 200, BAD_ENVELOPE),
    # --- message.data that is not base64 ------------------------------------------------------
    ("base64 symbols", _env(data="!!!!"), 200, "bad_base64"),
    ("base64 bad padding", _env(data="abc"), 200, "bad_base64"),
    ("base64 with newline", _env(data=b64(b'{"a":1}') + "\n"), 200, "bad_base64"),
    ("base64 non-ascii", _env(data="é30="), 200, "bad_base64"),
    ("base64 urlsafe alphabet", _env(data="-_-_"), 200, "bad_base64"),
    # --- data that is not UTF-8 ---------------------------------------------------------------
    ("utf-8 lone ff", _data(b"\xff"), 200, "bad_utf8"),
    (
        "utf-8 truncated sequence",
        _data(b'{"type":"model.train","payload":{"s":"\xc3"}}'),
        200,
        "bad_utf8",
    ),
    ("utf-8 overlong", _data(b"\xc0\xaf"), 200, "bad_utf8"),
    ("utf-8 encoded surrogate", _data(b'"\xed\xa0\x80"'), 200, "bad_utf8"),
    (
        "latin-1 text",
        _data('{"type":"model.train","payload":{"n":"café"}}'.encode("latin-1")),
        200,
        "bad_utf8",
    ),
    # --- data that is not JSON ----------------------------------------------------------------
    ("data empty", _data(b""), 200, "bad_json"),
    ("data open brace", _data(b"{"), 200, "bad_json"),
    (
        "data duplicate key",
        _data(b'{"type":"model.train","payload":{},"payload":{}}'),
        200,
        "bad_json",
    ),
    ("data trailing comma", _data(b'{"type":"model.train","payload":{},}'), 200, "bad_json"),
    ("data single quotes", _data(b"{'type':'model.train','payload':{}}"), 200, "bad_json"),
    ("data with BOM", _data(b'\xef\xbb\xbf{"type":"model.train","payload":{}}'), 200, "bad_json"),
    (
        "data deeply nested",
        _data(b'{"type":"model.train","payload":' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        200,
        "bad_json",
    ),
    ("data two documents", _data(b"{}{}"), 200, "bad_json"),
    (
        "data nested 65 levels",
        _data(b'{"type":"a.b","payload":' + b"[" * 64 + b"]" * 64 + b"}"),
        200,
        "bad_json",
    ),
    # --- JSON that violates the event schema --------------------------------------------------
    ("event array", _event([1, 2]), 200, "schema_violation"),
    ("event string", _event("model.train"), 200, "schema_violation"),
    ("event null", _event(None), 200, "schema_violation"),
    ("event empty object", _event({}), 200, "schema_violation"),
    ("type number", _event({"type": 5, "payload": {}}), 200, "schema_violation"),
    ("type not dotted", _event({"type": "train", "payload": {}}), 200, "schema_violation"),
    ("type uppercase", _event({"type": "Model.Train", "payload": {}}), 200, "schema_violation"),
    (
        "type empty segment",
        _event({"type": "model..train", "payload": {}}),
        200,
        "schema_violation",
    ),
    ("type trailing dot", _event({"type": "model.train.", "payload": {}}), 200, "schema_violation"),
    ("type with space", _event({"type": "model. train", "payload": {}}), 200, "schema_violation"),
    ("type too long", _event({"type": "a." + "b" * 127, "payload": {}}), 200, "schema_violation"),
    ("payload missing", _event({"type": "model.train"}), 200, "schema_violation"),
    ("payload null", _event({"type": "model.train", "payload": None}), 200, "schema_violation"),
    ("payload list", _event({"type": "model.train", "payload": [1]}), 200, "schema_violation"),
    ("payload string", _event({"type": "model.train", "payload": "x"}), 200, "schema_violation"),
    ("correlation_id empty", _event({**GOOD_EVENT, "correlation_id": ""}), 200, "schema_violation"),
    (
        "correlation_id too long",
        _event({**GOOD_EVENT, "correlation_id": "c" * 129}),
        200,
        "schema_violation",
    ),
    (
        "correlation_id newline",
        _event({**GOOD_EVENT, "correlation_id": "a\nb"}),
        200,
        "schema_violation",
    ),
    (
        "correlation_id null",
        _event({**GOOD_EVENT, "correlation_id": None}),
        200,
        "schema_violation",
    ),
    (
        "correlation_id object",
        _event({**GOOD_EVENT, "correlation_id": {}}),
        200,
        "schema_violation",
    ),
    ("unknown top-level key", _event({**GOOD_EVENT, "data": {}}), 200, "schema_violation"),
    (
        "attribute event_type lies",
        _event(GOOD_EVENT, event_type="predict.batch"),
        200,
        "schema_violation",
    ),
    (
        "attribute correlation_id lies",
        _event(GOOD_EVENT, correlation_id="other"),
        200,
        "schema_violation",
    ),
    # --- numbers no request can carry (Pub/Sub and Vertex AI carry doubles) -------------------
    ("number 1e400 in payload", _raw_event(b'{"x":1e400}'), 200, NON_FINITE),
    ("number -1e400 nested", _raw_event(b'{"x":{"y":[1,-1e400]}}'), 200, NON_FINITE),
    ("data NaN", _data(b"NaN"), 200, NON_FINITE),
    ("data Infinity in payload", _raw_event(b'{"x":-Infinity}'), 200, NON_FINITE),
    ("NaN in a list", _raw_event(b'{"x":[NaN]}'), 200, NON_FINITE),
    ("integer of 400 digits", _raw_event(b'{"x":1' + b"0" * 399 + b"}"), 200, NON_FINITE),
    (
        "1e400 as an unknown top-level key's value",
        _data(b'{"type":"model.train","payload":{},"z":1e400}'),
        200,
        NON_FINITE,
    ),
    # --- lone surrogate escapes (UTF-8 cannot encode them) ------------------------------------
    ("surrogate in payload value", _raw_event(b'{"s":"a\\ud800b"}'), 200, SURROGATE),
    ("low surrogate alone", _raw_event(b'{"s":"\\udc00"}'), 200, SURROGATE),
    ("surrogates reversed", _raw_event(b'{"s":"\\ude00\\ud83d"}'), 200, SURROGATE),
    ("surrogate in payload key", _raw_event(b'{"\\ud800":1}'), 200, SURROGATE),
    ("surrogate nested", _raw_event(b'{"a":[{"b":["\\udbff"]}]}'), 200, SURROGATE),
    (
        "surrogate in correlation_id",
        _raw_event(b"{}", b'"correlation_id":"c\\ud800"'),
        200,
        SURROGATE,
    ),
    (
        "surrogate in idempotency_key",
        _raw_event(b"{}", b'"idempotency_key":"\\ud800"'),
        200,
        SURROGATE,
    ),
    ("surrogate in type", _data(b'{"type":"model.\\ud800","payload":{}}'), 200, SURROGATE),
    ("surrogate in messageId", _raw_envelope(message_id=b'"42\\ud800"'), 200, SURROGATE),
    ("surrogate in attribute value", _raw_envelope(attributes=b'{"a":"\\ud800"}'), 200, SURROGATE),
    ("surrogate in attribute key", _raw_envelope(attributes=b'{"\\udfff":"v"}'), 200, SURROGATE),
    ("surrogate in subscription", _raw_envelope(subscription=b'"s\\ud800"'), 200, SURROGATE),
    # --- bodies larger than one publish request: dead-lettered truncated -----------------------
    ("oversized body, not an envelope", b"x" * 14_000_000, 200, NOT_ENVELOPE),
    (
        "oversized message data, bad event",
        _event({"type": "model.train", "payload": {}, "pad": "p" * 9_500_000}),
        200,
        "schema_violation",
    ),
    ("oversized body, bad base64", _env(data="!" * 11_000_000), 200, "bad_base64"),
    # --- well-formed events nobody routes -------------------------------------------------------
    ("unrouted type", _event({"type": "model.eval", "payload": {}}), 200, "unknown_event_type"),
    (
        "result type is not a route",
        _event({"type": "workflow.started", "payload": {}}),
        200,
        "unknown_event_type",
    ),
    # --- stale: dropped before anything is decoded ----------------------------------------------
    ("stale garbage", _env(publishTime="2020-01-01T00:00:00Z", data="!!"), 200, "dropped_stale"),
    ("stale year one", _env(publishTime="0001-01-01T00:00:00+01:00"), 200, "dropped_stale"),
    ("stale epoch", _env(publishTime="1970-01-01T00:00:00.000000001Z"), 200, "dropped_stale"),
    ("stale by offset", _env(publishTime=rfc3339(0).replace("Z", "+00:00")), 200, "dropped_stale"),
]

"""What the handler sends must travel (workflow_handler/wire.py): values no Google request can
carry are refused at validation, naming the field; our own requests are encoded strictly, and a
failure is a bug of ours (request_not_serializable), never a transient error from Google; a dead
letter always fits one Pub/Sub publish request. Unit tests first, then over HTTP through the
real Functions Framework server and the stand-ins, which refuse what Google refuses."""

from __future__ import annotations

import base64
import hashlib
import json
import math
from typing import Any

import pytest
from conftest import Live
from handler_envelopes import make_envelope, next_message_id
from handler_fixtures import DEAD_LETTER_TOPIC, ROUTES, handler_env
from local_standins import StandIns, loads_google

from workflow_handler import events, wire
from workflow_handler.app import WorkflowHandler
from workflow_handler.events import PermanentError
from workflow_handler.google_apis import NOT_SENT, UNSENDABLE, ApiResponse, GoogleApis, classify
from workflow_handler.settings import ConfigError, Route, load_settings

LIMIT = wire.MAX_PUBLISH_REQUEST_BYTES
DOUBLE = "allowed a finite number within ±1.7976931348623157e+308"
UTF8 = "allowed text that UTF-8 can encode"


def event_bytes(payload: bytes, extra: bytes = b"") -> bytes:
    """An event written as raw JSON text (json.dumps never writes 1e400 or a lone \\ud800)."""
    return b'{"type":"model.train","payload":' + payload + (b"," + extra if extra else b"") + b"}"


# --- validation: the field is named ------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "code", "detail"),
    [
        (event_bytes(b'{"x":1e400}'), "non_finite_number", f"payload.x: got 1e400, {DOUBLE}"),
        (event_bytes(b'{"x":-1E+999}'), "non_finite_number", f"payload.x: got -1E+999, {DOUBLE}"),
        (event_bytes(b'{"x":[0,NaN]}'), "non_finite_number", f"payload.x[1]: got NaN, {DOUBLE}"),
        (
            event_bytes(b'{"a b":{"c":Infinity}}'),
            "non_finite_number",
            f'payload["a b"].c: got Infinity, {DOUBLE}',
        ),
        (
            event_bytes(b'{"n":-1' + b"0" * 400 + b"}"),
            "non_finite_number",
            f"payload.n: got an integer of 401 digits, {DOUBLE}",
        ),
        (b"NaN", "non_finite_number", f"(top level): got NaN, {DOUBLE}"),
        (
            event_bytes(b'{"s":"ab\\ud800"}'),
            "unpaired_surrogate",
            "payload.s: got a string with a lone surrogate \\ud800 (an unpaired \\u escape) at "
            f"character 2, {UTF8}",
        ),
        (
            event_bytes(b'{"k":{"\\udc00":1}}'),
            "unpaired_surrogate",
            "payload.k: got a key with a lone surrogate \\udc00 (an unpaired \\u escape) at "
            f"character 0, {UTF8}",
        ),
        (
            event_bytes(b"{}", b'"correlation_id":"\\ude00\\ud83d"'),
            "unpaired_surrogate",
            "correlation_id: got a string with a lone surrogate \\ude00",
        ),
        (
            event_bytes(b"{}", b'"idempotency_key":"k\\udbff"'),
            "unpaired_surrogate",
            "idempotency_key: got a string with a lone surrogate \\udbff",
        ),
    ],
)
def test_values_no_request_can_carry_are_refused_naming_the_field(
    data: bytes, code: str, detail: str
) -> None:
    with pytest.raises(PermanentError) as caught:
        events.decode_event(data)
    assert caught.value.code == code
    assert caught.value.detail.startswith(f"message data: {detail}")


@pytest.mark.parametrize(
    "payload",
    [
        b'{"x":1.7976931348623157e308,"y":-1.7976931348623157e308,"z":5e-324,"w":1e-400}',
        b'{"n":1' + b"0" * 307 + b"}",  # 10**307: a double
        b'{"emoji":"\\ud83d\\ude00","text":"caf\\u00e9"}',  # a surrogate pair is one character
    ],
)
def test_what_travels_is_accepted_unchanged(payload: bytes) -> None:
    event = events.decode_event(event_bytes(payload))
    assert event.payload == json.loads(payload)
    assert events.decode_event(events.encode_event(event)) == event


@pytest.mark.parametrize(
    ("member", "detail"),
    [
        (
            {"messageId": "1\ud800"},
            "push envelope: message.messageId: got a string with a lone surrogate \\ud800",
        ),
        ({"attributes": {"a": "\udfff"}}, "push envelope: message.attributes.a: got a string"),
        (
            {"attributes": {"\ud800k": "v"}},
            "push envelope: message.attributes: got a key with a lone surrogate \\ud800",
        ),
    ],
)
def test_the_envelope_fields_the_handler_copies_must_travel(
    member: dict[str, Any], detail: str
) -> None:
    envelope = make_envelope({"type": "model.train", "payload": {}})
    envelope["message"].update(member)
    if "messageId" in member:
        envelope["message"]["message_id"] = member["messageId"]
    with pytest.raises(events.EnvelopeError) as caught:
        events.parse_push_envelope(json.dumps(envelope).encode())
    assert caught.value.code == "unpaired_surrogate"
    assert caught.value.detail.startswith(detail)


def test_a_route_parameter_that_cannot_travel_stops_the_configuration() -> None:
    routes = json.dumps(ROUTES).replace('"epochs": 3', '"epochs": 1e400')
    assert routes != json.dumps(ROUTES)
    with pytest.raises(ConfigError) as caught:
        load_settings(handler_env(None, None, ROUTES=routes))
    assert caught.value.variable == "ROUTES"
    assert '["model.train"].parameters.epochs: got 1e400, ' + DOUBLE in str(caught.value)


# --- encoding our own requests ------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [{"x": math.inf}, {"x": [math.nan]}, {"s": "\ud800"}, {"\udc00": 1}, {"b": b"bytes"}],
)
def test_encode_request_refuses_what_no_api_accepts(body: Any) -> None:
    with pytest.raises(wire.UnsendableRequest):
        wire.encode_request(body)


def test_encode_request_is_compact_utf8_json() -> None:
    assert wire.encode_request({"b": "café 😀", "a": 1.5}, sort_keys=True) == (
        '{"a":1.5,"b":"café 😀"}'.encode()
    )


def test_an_unsendable_body_is_its_own_kind_and_nothing_is_sent(stand_ins: StandIns) -> None:
    stand_ins.reset()
    settings = load_settings(handler_env(stand_ins.pubsub, stand_ins.vertex))
    apis = GoogleApis(settings)
    created = apis.create_pipeline_job("train-model-1", {"x": math.inf})
    assert (created.status, created.kind) == (NOT_SENT, UNSENDABLE)
    assert created.detail.startswith("POST http://127.0.0.1:")
    assert "not sent: ValueError: Out of range float values are not JSON compliant" in (
        created.detail
    )
    published = apis.publish(DEAD_LETTER_TOPIC, b"x", {"a": "\ud800"})
    assert published.kind == UNSENDABLE
    assert stand_ins.vertex.requests == [] and stand_ins.pubsub.requests == []
    assert classify(NOT_SENT) == UNSENDABLE


def test_an_unsendable_request_is_a_bug_dead_lettered_not_a_transient_error(
    stand_ins: StandIns,
) -> None:
    """A value that slipped past validation (here: a route built in process, bypassing the
    configuration checks) reaches the real encoder: one ERROR line, its own code, acked."""
    stand_ins.reset()
    settings = load_settings(handler_env(stand_ins.pubsub, stand_ins.vertex))
    route = settings.routes["model.train"]
    broken = Route(
        route.event_type,
        route.template_uri,
        {"epochs": math.inf},
        on_success=route.on_success,
        on_failure=route.on_failure,
        on_start=route.on_start,
    )
    settings.routes["model.train"] = broken
    lines: list[tuple[str, str, dict[str, Any]]] = []
    handler = WorkflowHandler(
        settings, GoogleApis(settings), log=lambda s, m, **f: lines.append((s, m, f))
    )
    envelope = make_envelope({"type": "model.train", "payload": {}})
    reply = handler.handle("POST", json.dumps(envelope).encode())

    assert (reply.status, reply.body) == (
        200,
        {"outcome": "dead_lettered", "error": "request_not_serializable"},
    )
    ((severity, message, fields),) = lines
    assert severity == "ERROR"
    assert message == (
        "bug: the handler could not serialize its own request to Vertex AI; message "
        "dead-lettered: request_not_serializable"
    )
    assert "transient" not in message
    assert "Out of range float values" in fields["error_detail"]
    assert stand_ins.vertex.requests == []  # nothing was sent to Vertex AI
    (dead,) = stand_ins.pubsub.messages(DEAD_LETTER_TOPIC)
    assert dead.attributes["error"] == "request_not_serializable"


def test_an_unsendable_follow_up_is_dead_lettered_too() -> None:
    class Apis:
        def __init__(self) -> None:
            self.published: list[tuple[str, dict[str, str]]] = []

        def create_pipeline_job(self, job_id: str, body: Any) -> ApiResponse:
            return ApiResponse(200, {"name": f"projects/1/locations/l/pipelineJobs/{job_id}"}, "")

        def get_pipeline_job(self, job_id: str) -> ApiResponse:  # pragma: no cover - unused
            raise AssertionError

        def publish(self, topic: str, data: bytes, attributes: Any) -> ApiResponse:
            if topic != DEAD_LETTER_TOPIC:
                return ApiResponse(NOT_SENT, None, "POST results: not sent: UnicodeEncodeError")
            self.published.append((topic, dict(attributes)))
            return ApiResponse(200, {"messageIds": ["1"]}, "")

    apis = Apis()
    lines: list[tuple[str, str, dict[str, Any]]] = []
    handler = WorkflowHandler(
        load_settings(handler_env(None, None)), apis, log=lambda s, m, **f: lines.append((s, m, f))
    )
    reply = handler.handle(
        "POST", json.dumps(make_envelope({"type": "model.train", "payload": {}})).encode()
    )
    assert reply.body == {"outcome": "dead_lettered", "error": "request_not_serializable"}
    assert lines[0][0] == "ERROR" and "request to Pub/Sub" in lines[0][1]
    assert apis.published[0][1]["error"] == "request_not_serializable"


# --- dead letters fit one publish request -------------------------------------------------------


def test_publish_request_bytes_is_the_exact_size_of_what_is_sent() -> None:
    attributes = {"error": "x", "k": 'quote " and \n and é'}
    for size in (0, 1, 2, 3, 4, 1000):
        data = b"\x00" * size
        assert wire.publish_request_bytes(size, attributes) == len(
            wire.encode_request(wire.publish_request(data, attributes))
        )


@pytest.mark.parametrize("size", [0, 7_000_000, 7_499_000, 7_500_000, 30_000_000])
def test_fit_publish_data_keeps_the_longest_prefix_that_fits(size: int) -> None:
    attributes = {f"k{i}": "\x01" * 1024 for i in range(100)}  # the worst attributes: 6x escaped
    data = bytes(range(256)) * (size // 256) + b"\xff" * (size % 256)
    fitted = wire.fit_publish_data(data, attributes)
    assert data.startswith(fitted)
    assert wire.publish_request_bytes(len(fitted), attributes) <= LIMIT
    if fitted != data:  # three more bytes would not fit
        assert wire.publish_request_bytes(len(fitted) + 3, attributes) > LIMIT


def test_truncation_attributes_name_the_whole() -> None:
    assert wire.truncation_attributes(b"abc") == {
        "dead_letter_truncated": "true",
        "original_size": "3",
        "original_sha256": hashlib.sha256(b"abc").hexdigest(),
    }


# --- over HTTP: the real server and the stand-ins ----------------------------------------------


def post_event_bytes(live: Live, data: bytes, message_id: str) -> Any:
    return live.post(make_envelope(data=data, message_id=message_id, attributes={"p": "t"}))


@pytest.mark.parametrize(
    ("data", "code", "detail"),
    [
        (event_bytes(b'{"x":1e400}'), "non_finite_number", f"payload.x: got 1e400, {DOUBLE}"),
        (
            event_bytes(b"{}", b'"correlation_id":"order-\\ud800"'),
            "unpaired_surrogate",
            "correlation_id: got a string with a lone surrogate \\ud800",
        ),
        (
            event_bytes(b'{"dataset":"gs://d/\\udfff"}'),
            "unpaired_surrogate",
            "payload.dataset: got a string with a lone surrogate \\udfff",
        ),
    ],
)
def test_untravelable_events_are_dead_lettered_at_validation_over_http(
    live: Live, data: bytes, code: str, detail: str
) -> None:
    message_id = next_message_id()
    response = post_event_bytes(live, data, message_id)

    assert response.status_code == 200
    assert response.json() == {"outcome": "dead_lettered", "error": code}
    assert live.vertex.requests == []  # no job: nothing is created and left behind
    assert live.results() == []
    (dead,) = live.dead_letters()
    assert dead.data == data  # byte for byte: base64 carries the escape as it came
    assert dead.attributes["error"] == code
    assert dead.attributes["error_detail"].startswith(f"message data: {detail}")
    assert dead.attributes["source_message_id"] == message_id
    (line,) = [entry for entry in live.logs() if "outcome" in entry]
    assert line["severity"] == "WARNING" and line["error"] == code


def test_a_surrogate_in_the_message_id_is_dead_lettered_with_a_clean_source_id(
    live: Live,
) -> None:
    envelope = json.dumps(make_envelope({"type": "model.train", "payload": {}}, message_id="@"))
    body = envelope.replace('"@"', '"77\\ud800"').encode()
    response = live.post(body)

    assert response.json() == {"outcome": "dead_lettered", "error": "unpaired_surrogate"}
    (dead,) = live.dead_letters()
    assert dead.attributes["source_message_id"] == "77?"  # what UTF-8 can carry of it
    assert dead.attributes["error_detail"].startswith("push envelope: message.messageId: ")
    assert live.vertex.requests == []


def test_a_surrogate_pair_is_one_character_and_travels(live: Live) -> None:
    data = event_bytes(b'{"note":"\\ud83d\\ude00"}', b'"correlation_id":"c-\\ud83d\\ude00"')
    response = post_event_bytes(live, data, next_message_id())

    assert response.json()["outcome"] == "started"
    (create,) = live.vertex.creates()
    assert loads_google(create.body)["runtimeConfig"]["parameterValues"]["note"] == "😀"
    (started,) = live.results()
    assert started.json["correlation_id"] == "c-😀"


@pytest.mark.parametrize(
    ("make_body", "code", "payload_source"),
    [
        (lambda: b"not json " * 1_600_000, "not_a_push_envelope", "request_body"),
        (
            lambda: json.dumps(
                make_envelope(
                    data=json.dumps(
                        {"type": "model.train", "payload": {"x": "y" * 9_600_000}, "extra": 1}
                    ).encode(),
                    attributes={f"a{i}": "\x01" * 1024 for i in range(95)},
                )
            ).encode(),
            "schema_violation",
            "message_data",
        ),
    ],
)
def test_an_oversized_dead_letter_is_truncated_to_fit_one_publish_request(
    live: Live, make_body: Any, code: str, payload_source: str
) -> None:
    body = make_body()
    whole = (
        body
        if payload_source == "request_body"
        else base64.b64decode(json.loads(body)["message"]["data"])
    )
    response = live.post(body)

    assert response.status_code == 200
    assert response.json() == {"outcome": "dead_lettered", "error": code}
    (request,) = live.pubsub.requests
    assert len(request.body) <= LIMIT  # what Pub/Sub accepts in one request
    (dead,) = live.dead_letters()
    assert whole.startswith(dead.data) and 6_000_000 < len(dead.data) < len(whole)
    assert dead.attributes["dead_letter_truncated"] == "true"
    assert dead.attributes["original_size"] == str(len(whole))
    assert dead.attributes["original_sha256"] == hashlib.sha256(whole).hexdigest()
    assert dead.attributes["dead_letter_payload"] == payload_source
    assert dead.attributes["error"] == code
    (line,) = [entry for entry in live.logs() if "outcome" in entry]
    assert line["dead_letter_truncated_from"] == len(whole)
    assert line["dead_letter_bytes"] == len(dead.data)


def test_a_dead_letter_that_fits_is_not_truncated(live: Live) -> None:
    data = json.dumps({"type": "model.eval", "payload": {"x": "y" * 7_000_000}}).encode()
    response = live.post(make_envelope(data=data))
    assert response.json() == {"outcome": "dead_lettered", "error": "unknown_event_type"}
    (dead,) = live.dead_letters()
    assert dead.data == data
    assert "dead_letter_truncated" not in dead.attributes


# --- an event whose parameters no follow-up event could carry -------------------------------


def test_parameters_must_fit_the_follow_up_events_that_carry_them() -> None:
    events.check_parameters_fit({"x": "y" * (wire.MAX_PARAMETERS_BYTES - 8)})  # 7,000,000 bytes
    with pytest.raises(PermanentError) as caught:
        events.check_parameters_fit({"x": "y" * (wire.MAX_PARAMETERS_BYTES - 7)})
    assert caught.value.code == "event_too_large"
    assert caught.value.detail.startswith(
        "payload: got parameter values of 7000001 bytes as JSON (the route's and the "
        "payload's), allowed at most 7000000"
    )


def test_an_event_too_large_for_its_follow_ups_starts_no_job(live: Live) -> None:
    data = json.dumps({"type": "model.train", "payload": {"x": "y" * 7_100_000}}).encode()
    response = live.post(make_envelope(data=data))
    assert response.json() == {"outcome": "dead_lettered", "error": "event_too_large"}
    assert live.vertex.requests == [] and live.results() == []
    (dead,) = live.dead_letters()
    assert dead.data == data  # it fits a dead letter whole


def test_the_largest_event_that_fits_starts_its_job_and_publishes_its_start_event(
    live: Live,
) -> None:
    payload = {"x": "y" * (wire.MAX_PARAMETERS_BYTES - 200)}
    response = live.post(make_envelope({"type": "model.train", "payload": payload}))
    assert response.json()["outcome"] == "started"
    (started,) = live.results()  # the stand-in refuses a publish request over 10 MB
    assert started.json["payload"]["source_event"]["parameters"]["x"] == payload["x"]
    (request,) = live.pubsub.requests
    assert 9_000_000 < len(request.body) <= LIMIT

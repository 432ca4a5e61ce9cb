"""The handler driven over HTTP: the real Functions Framework server, real local stand-ins for
Pub/Sub and Vertex AI. One test per documented behaviour (docs/handler.md)."""

from __future__ import annotations

import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import Live
from event_schema import assert_follow_up
from handler_envelopes import b64, event_data, make_envelope, next_message_id, rfc3339
from handler_fixtures import (
    DEAD_LETTER_TOPIC,
    RESULTS_TOPIC,
    SUBSCRIPTION,
    TRAIN_TEMPLATE,
    FunctionServer,
    handler_env,
)
from local_standins import PROJECT_NUMBER, StandIns

from workflow_handler import events

ACKED = {102, 200, 201, 202, 204}  # what Pub/Sub treats as an acknowledgement
JOB_PREFIX = f"projects/{PROJECT_NUMBER}/locations/europe-west4/pipelineJobs/"


def only(items: list[Any]) -> Any:
    assert len(items) == 1, items
    return items[0]


def outcome_line(live: Live) -> dict[str, Any]:
    """The one log line the handler writes per request."""
    lines = [line for line in live.logs() if "outcome" in line]
    return only(lines)


# --- happy path ---------------------------------------------------------------------------------


def test_routed_event_starts_one_job_and_publishes_its_start_event(live: Live) -> None:
    message_id = next_message_id()
    event = event_data("model.train", {"epochs": 5, "dataset": "gs://d/x"}, "Order-42/A")
    response = live.deliver(event, message_id=message_id, delivery_attempt=2)

    assert response.status_code == 200
    job_name = f"{JOB_PREFIX}train-model-{message_id}"
    assert response.json() == {"outcome": "started", "pipeline_job": job_name}
    create = only(live.vertex.creates())
    assert create.path == "/v1/projects/test-project/locations/europe-west4/pipelineJobs"
    assert create.query == {"pipelineJobId": [f"train-model-{message_id}"]}
    assert "authorization" not in create.headers  # http:// endpoint -> anonymous
    parameters = {"epochs": 5, "learning_rate": 0.1, "dataset": "gs://d/x"}
    assert create.json == {
        "displayName": f"train-model model.train {message_id}",
        "templateUri": TRAIN_TEMPLATE,
        "runtimeConfig": {
            "gcsOutputDirectory": "gs://test-bucket/train-model",
            # route parameters overlaid with the payload
            "parameterValues": parameters,
        },
        "serviceAccount": "pipeline@test-project.iam.gserviceaccount.com",
        "labels": {
            "workflow": "train-model",
            "event_type": "model-train",
            # not a valid label value as it is: readable for people, exact in base32
            "correlation_id": "order-42-a",
            "correlation_id_x0": "j5zgizlsfu2del2b",
        },
    }
    assert len(live.vertex.jobs) == 1

    # The route sets on_start, so the start event is published now (the outcome comes later).
    started = only(live.results())
    assert started.json == {
        "type": "model.training_started",
        "payload": {
            "workflow": "train-model",
            "pipeline_job": job_name,
            "outcome": "started",
            "state": "PIPELINE_STATE_PENDING",
            "output_directory": "gs://test-bucket/train-model",
            "source_event": {"type": "model.train", "parameters": parameters},
        },
        "correlation_id": "Order-42/A",
        "idempotency_key": events.outcome_key(job_name, "started"),
    }
    assert_follow_up(started.json)
    assert started.attributes == {
        "event_type": "model.training_started",
        "correlation_id": "Order-42/A",
        "idempotency_key": events.outcome_key(job_name, "started"),
        "workflow": "train-model",
    }
    assert live.dead_letters() == []

    line = outcome_line(live)
    assert line["severity"] == "INFO"
    assert line["message_id"] == message_id
    assert line["event_type"] == "model.train"
    assert line["correlation_id"] == "Order-42/A"
    assert line["workflow"] == "train-model"
    assert line["delivery_attempt"] == 2
    assert line["outcome"] == "started"


def test_without_correlation_id_the_message_id_is_used(live: Live) -> None:
    message_id = next_message_id()
    response = live.deliver(event_data("model.train", {}), message_id=message_id)
    assert response.status_code == 200
    assert only(live.vertex.creates()).json["labels"]["correlation_id"] == message_id
    started = only(live.results())
    assert started.json["correlation_id"] == message_id
    assert started.attributes["correlation_id"] == message_id


def test_route_on_start_and_template_digest(live: Live) -> None:
    response = live.deliver(event_data("model.retrain", {"epochs": 2}, "c-1"))
    assert response.status_code == 200
    body = only(live.vertex.creates()).json
    assert (
        body["templateUri"]
        == "https://europe-west4-kfp.pkg.dev/test-project/pipelines/retrain/sha256:abc123"
    )
    assert body["runtimeConfig"]["parameterValues"] == {"epochs": 2}
    started = only(live.results())
    assert started.json["type"] == "model.retrain_started"
    assert started.attributes["event_type"] == "model.retrain_started"


def test_route_without_on_start_publishes_nothing_when_the_job_starts(live: Live) -> None:
    response = live.deliver(event_data("predict.batch", {"input": [1, 2], "flag": None}))
    assert response.status_code == 200 and response.json()["outcome"] == "started"
    params = only(live.vertex.creates()).json["runtimeConfig"]["parameterValues"]
    assert params == {"input": [1, 2], "flag": None}
    assert live.results() == [] and live.dead_letters() == []


def test_non_numeric_message_id_gives_a_valid_hashed_job_id(live: Live) -> None:
    response = live.deliver(event_data(), message_id="Local/Message_ID:7")
    assert response.status_code == 200
    job_id = only(live.vertex.creates()).query["pipelineJobId"][0]
    assert job_id.startswith("train-model-h") and len(job_id) <= 128
    assert job_id == events.pipeline_job_id("train-model", "Local/Message_ID:7")


def test_trace_header_is_linked_in_the_log_line(live: Live) -> None:
    response = live.post(
        make_envelope(event_data()), headers={"X-Cloud-Trace-Context": "0af7651916cd43dd/1;o=1"}
    )
    assert response.status_code == 200
    line = outcome_line(live)
    assert line["logging.googleapis.com/trace"] == "projects/test-project/traces/0af7651916cd43dd"


# --- duplicates ---------------------------------------------------------------------------------


def test_duplicate_delivery_creates_exactly_one_job(live: Live) -> None:
    envelope = make_envelope(event_data("model.train", {"epochs": 1}, "dup"))
    first = live.post(envelope)
    second = live.post(envelope)

    assert first.status_code == 200 and second.status_code == 200
    assert first.json()["outcome"] == "started"
    assert second.json()["outcome"] == "already_started"
    assert first.json()["pipeline_job"] == second.json()["pipeline_job"]
    assert len(live.vertex.jobs) == 1
    assert len(live.vertex.creates()) == 2  # the second one was answered 409 ALREADY_EXISTS
    # Both deliveries publish the start event (the first might have failed to): same content,
    # same idempotency key.
    first_result, second_result = live.results()
    assert first_result.data == second_result.data
    assert first_result.attributes == second_result.attributes
    assert live.dead_letters() == []


def test_concurrent_duplicate_deliveries_create_exactly_one_job(live: Live) -> None:
    envelope = make_envelope(event_data("model.train", {"epochs": 1}))
    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(lambda _: live.post(envelope), range(6)))
    assert [r.status_code for r in responses] == [200] * 6
    assert len(live.vertex.jobs) == 1
    assert len({r.json()["pipeline_job"] for r in responses}) == 1


def test_job_created_but_response_lost_then_redelivered_gives_one_job(live: Live) -> None:
    live.vertex.fail("create", drop=True, after=True)
    envelope = make_envelope(event_data())
    first = live.post(envelope)
    assert first.status_code == 503
    assert len(live.vertex.jobs) == 1  # it did get created
    second = live.post(envelope)
    assert second.status_code == 200
    assert second.json()["outcome"] == "already_started"
    assert len(live.vertex.jobs) == 1
    assert len(live.results()) == 1


def test_start_event_publish_fails_then_redelivery_publishes_it_once(live: Live) -> None:
    live.pubsub.fail(f"publish:{RESULTS_TOPIC}", 503)
    envelope = make_envelope(event_data())
    assert live.post(envelope).status_code == 503
    assert len(live.vertex.jobs) == 1 and live.results() == []
    assert live.post(envelope).status_code == 200
    assert len(live.vertex.jobs) == 1 and len(live.results()) == 1


# --- permanent errors: dead-lettered, then acknowledged -------------------------------------


def _envelope_with_data(data: bytes, **options: Any) -> dict[str, Any]:
    return make_envelope(data=data, attributes={"producer": "tests"}, **options)


PERMANENT_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "undecodable base64": (
        "bad_base64",
        {"data_b64": "not*base64!"},
    ),
    "not UTF-8": ("bad_utf8", {"data": b'{"type": "model.train", "payload": {"x": "\xff"}}'}),
    "not JSON": ("bad_json", {"data": b"model.train please"}),
    "empty data": ("bad_json", {"data": b""}),
    "NaN is no number a request can carry": (
        "non_finite_number",
        {"data": b'{"type":"model.train","payload":{"x":NaN}}'},
    ),
    "duplicate keys": ("bad_json", {"data": b'{"type":"model.train","type":"x.y","payload":{}}'}),
    "event is an array": ("schema_violation", {"data": b"[1, 2]"}),
    "missing type": ("schema_violation", {"data": b'{"payload": {}}'}),
    "type not dotted": ("schema_violation", {"data": b'{"type": "train", "payload": {}}'}),
    "type uppercase": ("schema_violation", {"data": b'{"type": "Model.Train", "payload": {}}'}),
    "missing payload": ("schema_violation", {"data": b'{"type": "model.train"}'}),
    "payload not object": (
        "schema_violation",
        {"data": b'{"type": "model.train", "payload": [1]}'},
    ),
    "correlation id too long": (
        "schema_violation",
        {"data": json.dumps(event_data(correlation_id="x" * 129)).encode()},
    ),
    "correlation id not a string": (
        "schema_violation",
        {"data": b'{"type": "model.train", "payload": {}, "correlation_id": 7}'},
    ),
    "unknown top-level key": (
        "schema_violation",
        {"data": b'{"type": "model.train", "payload": {}, "extra": 1}'},
    ),
    "unknown event type": (
        "unknown_event_type",
        {"data": b'{"type": "model.eval", "payload": {}}'},
    ),
}


@pytest.mark.parametrize("case", sorted(PERMANENT_CASES))
def test_permanent_error_is_dead_lettered_and_acknowledged(live: Live, case: str) -> None:
    error, spec = PERMANENT_CASES[case]
    message_id = next_message_id()
    if "data_b64" in spec:
        envelope = _envelope_with_data(b"", message_id=message_id)
        envelope["message"]["data"] = spec["data_b64"]
    else:
        envelope = _envelope_with_data(spec["data"], message_id=message_id)
    response = live.post(envelope)

    assert response.status_code in ACKED
    assert response.json() == {"outcome": "dead_lettered", "error": error}
    dead = only(live.dead_letters())
    assert dead.attributes["error"] == error
    assert dead.attributes["error_detail"]
    assert dead.attributes["source_message_id"] == message_id
    assert dead.attributes["source_subscription"] == SUBSCRIPTION
    assert dead.attributes["workflow"] == "train-model"
    assert dead.attributes["producer"] == "tests"  # the original attributes travel along
    if "data" in spec:
        assert dead.data == spec["data"]  # the original data, byte for byte
        assert dead.attributes["dead_letter_payload"] == "message_data"
    else:  # nothing decodable: the whole request body is kept
        assert json.loads(dead.data) == envelope
        assert dead.attributes["dead_letter_payload"] == "request_body"
    assert live.vertex.creates() == [] and live.results() == []
    line = outcome_line(live)
    assert line["severity"] == "WARNING" and line["error"] == error
    assert line["message_id"] == message_id


def test_attribute_that_contradicts_the_event_type_is_a_schema_violation(live: Live) -> None:
    envelope = make_envelope(event_data("model.train"), attributes={"event_type": "predict.batch"})
    response = live.post(envelope)
    assert response.status_code == 200
    assert only(live.dead_letters()).attributes["error"] == "schema_violation"
    assert live.vertex.creates() == []


def test_bad_envelope_is_dead_lettered_with_whatever_can_be_saved(live: Live) -> None:
    envelope = make_envelope(event_data(), attributes={"k": "v"})
    del envelope["message"]["publishTime"], envelope["message"]["publish_time"]
    response = live.post(envelope)
    assert response.status_code == 200
    dead = only(live.dead_letters())
    assert dead.attributes["error"] == "bad_envelope"
    assert "publishTime" in dead.attributes["error_detail"]
    assert dead.attributes["k"] == "v"
    assert json.loads(dead.data) == event_data()  # message.data still decoded


def test_body_that_is_not_a_push_envelope_is_dead_lettered_raw(live: Live) -> None:
    response = live.post(b'{"type": "model.train", "payload": {}}')  # an event, not an envelope
    assert response.status_code == 200
    dead = only(live.dead_letters())
    assert dead.attributes["error"] == "not_a_push_envelope"
    assert dead.attributes["dead_letter_payload"] == "request_body"
    assert dead.data == b'{"type": "model.train", "payload": {}}'
    assert "source_message_id" not in dead.attributes


@pytest.mark.parametrize(
    ("status", "grpc"), [(400, "INVALID_ARGUMENT"), (404, "NOT_FOUND"), (412, None)]
)
def test_vertex_rejection_is_dead_lettered(live: Live, status: int, grpc: str | None) -> None:
    live.vertex.fail("create", status, grpc_status=grpc)
    envelope = make_envelope(event_data(correlation_id="c-9"))
    response = live.post(envelope)
    assert response.status_code == 200
    assert response.json()["error"] == "vertex_rejected"
    dead = only(live.dead_letters())
    assert dead.attributes["error"] == "vertex_rejected"
    assert f"HTTP {status}" in dead.attributes["error_detail"]
    assert dead.attributes["event_type"] == "model.train"  # original attributes
    assert json.loads(dead.data) == event_data(correlation_id="c-9")
    assert live.vertex.jobs == {} and live.results() == []


def test_start_event_rejected_permanently_is_dead_lettered_with_the_job(live: Live) -> None:
    live.pubsub.fail(f"publish:{RESULTS_TOPIC}", 400)
    response = live.deliver(event_data())
    assert response.status_code == 200
    dead = only(live.dead_letters())
    assert dead.attributes["error"] == "results_publish_rejected"
    assert dead.attributes["pipeline_job"].startswith(JOB_PREFIX)
    assert len(live.vertex.jobs) == 1


@pytest.mark.parametrize("fault", [{"status": 503}, {"status": 400}, {"drop": True}])
def test_dead_letter_publish_failure_is_retried(live: Live, fault: dict[str, Any]) -> None:
    live.pubsub.fail(f"publish:{DEAD_LETTER_TOPIC}", **fault)
    response = live.post(_envelope_with_data(b"not json"))
    assert response.status_code not in ACKED
    assert response.status_code == 503
    assert live.dead_letters() == []
    line = outcome_line(live)
    assert line["severity"] == "ERROR" and line["error"] == "bad_json"


# --- transient errors: answered non-2xx so that Pub/Sub retries -----------------------------

TRANSIENT_VERTEX: dict[str, dict[str, Any]] = {
    "500": {"status": 500},
    "502 html": {"status": 502, "not_json": True},
    "503": {"status": 503},
    "504": {"status": 504},
    "429": {"status": 429},
    "401": {"status": 401},
    "403": {"status": 403},
    "408": {"status": 408},
    "409 ABORTED": {"status": 409, "grpc_status": "ABORTED"},
    "connection dropped": {"drop": True},
    "timeout": {"delay": 1.6},
}


@pytest.mark.parametrize("case", sorted(TRANSIENT_VERTEX))
def test_transient_vertex_error_is_retried(live: Live, case: str) -> None:
    live.vertex.fail("create", **TRANSIENT_VERTEX[case])
    envelope = make_envelope(event_data())
    response = live.post(envelope)
    assert response.status_code == 503
    assert response.json()["outcome"] == "retry"
    assert live.results() == [] and live.dead_letters() == []
    line = outcome_line(live)
    assert line["severity"] == "WARNING" and "error_detail" in line
    # ...and the retry succeeds once Vertex AI is back.
    assert live.post(envelope).status_code == 200
    assert len(live.vertex.jobs) == 1


@pytest.mark.parametrize("fault", [{"status": 503}, {"status": 429}, {"delay": 1.6}])
def test_transient_start_event_publish_error_is_retried(live: Live, fault: dict[str, Any]) -> None:
    live.pubsub.fail(f"publish:{RESULTS_TOPIC}", **fault)
    response = live.deliver(event_data())
    assert response.status_code == 503
    assert live.dead_letters() == []


def test_existing_job_that_cannot_be_read_is_retried(live: Live) -> None:
    envelope = make_envelope(event_data())
    assert live.post(envelope).status_code == 200
    live.vertex.fail("get", 503)
    assert live.post(envelope).status_code == 503
    assert len(live.vertex.jobs) == 1


def test_vertex_answer_without_a_job_name_is_retried(live: Live) -> None:
    live.vertex.fail("create", 200, not_json=True, after=True)
    envelope = make_envelope(event_data())
    assert live.post(envelope).status_code == 503
    assert live.post(envelope).status_code == 200  # 409 -> read the existing job
    assert len(live.vertex.jobs) == 1


# --- stale events -------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [None, b"garbage"])
def test_stale_event_is_dropped_with_a_warning(live: Live, data: bytes | None) -> None:
    message_id = next_message_id()
    envelope = make_envelope(
        event_data(), data=data, message_id=message_id, publish_time=rfc3339(time.time() - 3700)
    )
    response = live.post(envelope)
    assert response.status_code == 200
    assert response.json() == {"outcome": "dropped_stale"}
    assert live.pubsub.requests == [] and live.vertex.requests == []
    line = outcome_line(live)
    assert line["severity"] == "WARNING"
    assert line["message_id"] == message_id
    assert line["age_seconds"] > 3600 and line["max_event_age_seconds"] == 3600


def test_event_just_inside_the_maximum_age_is_handled(live: Live) -> None:
    response = live.deliver(event_data(), publish_time=rfc3339(time.time() - 3500))
    assert response.status_code == 200 and response.json()["outcome"] == "started"


# --- requests that are not Pub/Sub pushes -------------------------------------------------------


def test_get_is_not_allowed(live: Live) -> None:
    import requests

    response = requests.get(live.server.url, timeout=10)
    assert response.status_code == 405
    assert live.pubsub.requests == []


def test_empty_post_is_a_bad_request_with_nothing_to_dead_letter(live: Live) -> None:
    response = live.post(b"")
    assert response.status_code == 400
    assert live.pubsub.requests == []
    assert outcome_line(live)["severity"] == "WARNING"


def test_every_log_line_is_structured_json(live: Live) -> None:
    live.deliver(event_data())
    live.post(b"nonsense")
    lines = live.logs()  # log_lines() fails on any line that is not JSON
    assert len(lines) >= 2
    for line in lines:
        assert line["severity"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
        assert isinstance(line["message"], str) and line["workflow"] == "train-model"


def test_push_envelope_with_data_as_bytes_round_trip() -> None:
    # Guard for the builders the tests rely on.
    envelope = make_envelope(event_data("a.b"))
    assert json.loads(base64.b64decode(envelope["message"]["data"])) == event_data("a.b")
    assert b64(b"x") == "eA=="


def test_server_with_bad_configuration_exits_with_one_log_line(
    stand_ins: StandIns, tmp_path: Path
) -> None:
    env = handler_env(stand_ins.pubsub, stand_ins.vertex, MAX_EVENT_AGE_SECONDS="1 day")
    server = FunctionServer(env=env, log_path=tmp_path / "server.log")
    with pytest.raises(RuntimeError, match="exited with 1"):
        server.start()
    output = server.log_path.read_text()
    assert "Traceback" not in output
    (line,) = output.splitlines()
    entry = json.loads(line)
    assert entry["severity"] == "CRITICAL"
    assert (entry["variable"], entry["value"]) == ("MAX_EVENT_AGE_SECONDS", "1 day")
    assert "positive whole number" in entry["allowed"]

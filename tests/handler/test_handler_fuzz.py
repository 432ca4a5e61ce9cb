"""Property-based fuzzing (hypothesis) of the envelope parser and of the whole request logic,
in process, with scripted fake APIs. Bounded examples and no deadline flakiness: quick."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from event_schema import assert_result
from handler_envelopes import make_envelope, rfc3339
from handler_fixtures import PIPELINE_EVENTS_SUBSCRIPTION, SUBSCRIPTION, handler_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from local_standins import job_problem, loads_google, publish_problem

from workflow_handler import events, wire
from workflow_handler.app import WorkflowHandler
from workflow_handler.events import PermanentError
from workflow_handler.google_apis import ApiResponse
from workflow_handler.settings import load_settings

FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
SETTINGS = load_settings(handler_env(None, None))
NOW = 1_800_000_000.0

# Every float (NaN and infinities too: json.dumps writes them as NaN/Infinity), integers beyond
# the double range, and text with lone surrogates (json.dumps escapes them as \ud800): what a
# producer can put into JSON that no request can carry.
any_text = st.text(st.characters(exclude_categories=()))
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**308, max_value=10**320)
    | st.floats()
    | st.text()
    | any_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
event_types = st.sampled_from(
    [
        "model.train",
        "model.retrain",
        "predict.batch",
        "model.eval",
        "Model.train",
        "x",
        "",
        "workflow.probe",
        "workflow.probe.ok",
    ]
)
texts = st.text(max_size=40) | st.text(st.characters(exclude_categories=()), max_size=8)


@st.composite
def events_json(draw: st.DrawFn) -> Any:
    """Mostly event-shaped objects, with every field sometimes wrong or missing."""
    obj: dict[str, Any] = {}
    if draw(st.booleans()) or draw(st.booleans()):
        obj["type"] = draw(event_types | json_values)
    if draw(st.booleans()) or draw(st.booleans()):
        obj["payload"] = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=4))
    if draw(st.booleans()):
        obj["payload"] = draw(json_values)
    if draw(st.integers(0, 3)) == 0:  # a probe's payload, or a probe result's
        obj["payload"] = {"nonce": draw(st.sampled_from(["n-1", "", "a b"]) | json_values)}
        if draw(st.booleans()):
            obj["payload"]["workflow"] = draw(st.sampled_from(["train", "T"]) | json_values)
    if draw(st.booleans()):
        obj["correlation_id"] = draw(texts | json_values)
    if draw(st.integers(0, 3)) == 0:
        obj["idempotency_key"] = draw(texts | json_values)
    if draw(st.integers(0, 9)) == 0:
        obj[draw(st.text(max_size=5))] = draw(json_values)
    return obj if draw(st.integers(0, 9)) else draw(json_values)


JOB_IDS = ["train-model-1", "train-model-h" + "a" * 40, "train-model-k" + "0" * 40]
STATES = [
    "PIPELINE_STATE_SUCCEEDED",
    "PIPELINE_STATE_FAILED",
    "PIPELINE_STATE_CANCELLED",
    "PIPELINE_STATE_RUNNING",
]


@st.composite
def log_entries_json(draw: st.DrawFn) -> Any:
    """Mostly pipeline job events (LogEntries), with every field sometimes wrong or missing."""
    labels: dict[str, Any] = {
        "pipeline_job_id": draw(st.sampled_from([*JOB_IDS, "other-1", "Bad_Id"]) | json_values),
        "location": draw(st.sampled_from(["europe-west4", "us-east1"])),
        "resource_container": draw(st.sampled_from(["test-project", "other-project"])),
    }
    entry: dict[str, Any] = {
        "logName": draw(
            st.sampled_from(
                [
                    "projects/test-project/logs/aiplatform.googleapis.com%2Fpipeline_job_events",
                    "projects/test-project/logs/other",
                ]
            )
            | json_values
        ),
        "resource": {"type": "aiplatform.googleapis.com/PipelineJob", "labels": labels},
        "jsonPayload": {"state": draw(st.sampled_from(STATES) | json_values)},
    }
    for key in ("logName", "resource", "jsonPayload"):
        if draw(st.integers(0, 6)) == 0:
            entry.pop(key)
    for key in ("pipeline_job_id", "location", "resource_container"):
        if draw(st.integers(0, 6)) == 0:
            labels.pop(key)
    return entry if draw(st.integers(0, 9)) else draw(json_values)


@st.composite
def message_data(draw: st.DrawFn) -> str:
    choice = draw(st.integers(0, 7))
    if choice == 0:
        return draw(st.text(max_size=30))  # probably not base64
    if choice == 1:
        return base64.b64encode(draw(st.binary(max_size=60))).decode()
    if choice in (2, 3):
        return base64.b64encode(json.dumps(draw(log_entries_json())).encode()).decode()
    return base64.b64encode(json.dumps(draw(events_json())).encode()).decode()


@st.composite
def envelopes(draw: st.DrawFn) -> bytes:
    """Push envelopes: valid skeletons with fields mutated, dropped or replaced."""
    envelope = make_envelope(
        data=b"{}",
        message_id=draw(st.sampled_from(["1", "123456789012345"]) | st.text(max_size=20)),
        attributes=draw(st.dictionaries(texts, texts, max_size=3)),
        publish_time=rfc3339(NOW - draw(st.integers(-100, 100_000))),
        delivery_attempt=draw(st.none() | st.integers(-1, 200)),
        subscription=draw(st.sampled_from([SUBSCRIPTION, PIPELINE_EVENTS_SUBSCRIPTION])),
    )
    message = envelope["message"]
    message["data"] = draw(message_data())
    for key in ("data", "attributes", "messageId", "message_id", "publishTime", "publish_time"):
        mutation = draw(st.integers(0, 12))
        if mutation == 0:
            message.pop(key, None)
        elif mutation == 1:
            message[key] = draw(json_values)
    for key in ("subscription", "deliveryAttempt"):
        mutation = draw(st.integers(0, 12))
        if mutation == 0:
            envelope.pop(key, None)
        elif mutation == 1:
            envelope[key] = draw(json_values)
    if draw(st.integers(0, 15)) == 0:
        return json.dumps(draw(json_values)).encode()
    if draw(st.integers(0, 15)) == 0:
        return draw(st.binary(max_size=80))
    return json.dumps(envelope).encode()


@dataclass
class FakeApis:
    """Records calls; answers from a script (default: everything succeeds; a job read is a
    job of route `job_route` in `job_state`)."""

    create_status: int = 200
    get_status: int = 200
    publish_status: int = 200
    job_state: str = "PIPELINE_STATE_SUCCEEDED"
    job_route: str = "model.train"
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> ApiResponse:
        body = {"messages": [{"data": base64.b64encode(data).decode(), "attributes": attributes}]}
        self.calls.append(("publish", (topic, data, dict(attributes))))
        # encoded as google_apis encodes it, read as Google's front end reads it
        problem = publish_problem(loads_google(wire.encode_request(body)))
        assert problem is None, problem  # the handler never sends what Pub/Sub would reject
        if topic == SETTINGS.results_topic:
            assert_result(json.loads(data))  # ...and publishes only the documented events
        return ApiResponse(self.publish_status, {"messageIds": ["9"]}, "publish")

    def _job(self, job_id: str, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
        own = {"workflow": "train-model", "correlation_id": "c"}
        own.update(events.event_type_labels(self.job_route))
        return {
            "name": f"projects/1/locations/europe-west4/pipelineJobs/{job_id}",
            "state": self.job_state,
            "labels": dict(labels or own),
            "runtimeConfig": {"gcsOutputDirectory": "gs://b/train-model", "parameterValues": {}},
        }

    def create_pipeline_job(self, job_id: str, body: Mapping[str, Any]) -> ApiResponse:
        self.calls.append(("create", (job_id, body)))
        assert events.PIPELINE_JOB_ID_RE.match(job_id), job_id
        assert job_problem(loads_google(wire.encode_request(body))) is None
        error = {"error": {"status": "ALREADY_EXISTS"}} if self.create_status == 409 else {}
        job = {**self._job(job_id, body["labels"]), "state": "PIPELINE_STATE_PENDING"}
        return ApiResponse(self.create_status, error or job, "create")

    def get_pipeline_job(self, job_id: str) -> ApiResponse:
        self.calls.append(("get", job_id))
        return ApiResponse(self.get_status, self._job(job_id), "get")


LogLines = list[tuple[str, str, dict[str, Any]]]


def new_lines() -> LogLines:
    return []


def new_handler(apis: FakeApis, lines: LogLines) -> WorkflowHandler:
    return WorkflowHandler(
        SETTINGS,
        apis,
        clock=lambda: NOW,
        log=lambda severity, message, **fields: lines.append((severity, message, fields)),
    )


@FUZZ
@given(st.binary(max_size=200) | envelopes())
def test_parse_push_envelope_only_raises_envelope_errors(body: bytes) -> None:
    try:
        message = events.parse_push_envelope(body)
    except events.EnvelopeError as exc:
        assert exc.code in {"not_a_push_envelope", "bad_envelope"}
        assert isinstance(exc.salvage.data, bytes)
    else:
        assert message.message_id and message.publish_time.tzinfo is not None


@FUZZ
@given(st.binary(max_size=200) | st.builds(lambda v: json.dumps(v).encode(), events_json()))
def test_decode_event_only_raises_permanent_errors(data: bytes) -> None:
    try:
        event = events.decode_event(data)
    except PermanentError as exc:
        assert exc.code in {
            "bad_utf8",
            "bad_json",
            "schema_violation",
            "non_finite_number",
            "unpaired_surrogate",
        }
    else:
        assert events.is_event_type(event.type) and isinstance(event.payload, dict)
        assert events.decode_event(events.encode_event(event)) == event


@FUZZ
@given(envelopes())
def test_handler_never_crashes_and_answers_as_documented(body: bytes) -> None:
    apis, lines = FakeApis(), new_lines()
    reply = new_handler(apis, lines).handle("POST", body)

    if body == b"":
        assert (reply.status, reply.body["outcome"]) == (400, "empty_body")
        return
    assert reply.status == 200, (reply, lines)  # with healthy APIs every request is acked
    ((severity, _, fields),) = lines  # exactly one log line per request
    assert severity in {"INFO", "WARNING"}
    assert "stack_trace" not in fields
    outcome = reply.body["outcome"]
    kinds = [kind for kind, _ in apis.calls]
    if outcome == "started":
        _, body = apis.calls[0][1]
        route = SETTINGS.routes[events.label_event_type(body["labels"]) or ""]
        assert kinds == (["create", "publish"] if route.on_start else ["create"])
        assert all(call[1][0] == SETTINGS.results_topic for call in apis.calls[1:])
    elif outcome == "published":  # a pipeline job event: read the job, publish its outcome
        assert kinds == ["get", "publish"]
        assert apis.calls[1][1][0] == SETTINGS.results_topic
        assert json.loads(apis.calls[1][1][1])["type"] == "predict.batch"  # on_success
    elif outcome == "dead_lettered":
        assert kinds in (["publish"], ["create", "publish"], ["get", "publish"])
        topic, _, attributes = apis.calls[-1][1]
        assert topic == SETTINGS.dead_letter_topic
        assert attributes["error"] == reply.body["error"] in events.ERROR_CODES
    elif outcome == "ignored":
        assert kinds == []
    elif outcome == "probe_answered":  # the smoke probe: one answer, no job
        assert kinds == ["publish"] and apis.calls[0][1][0] == SETTINGS.results_topic
        assert json.loads(apis.calls[0][1][1])["type"] == "workflow.probe.ok"
    else:
        assert outcome == "dropped_stale" and kinds == []


@FUZZ
@given(
    envelopes(),
    st.sampled_from([200, 400, 401, 403, 404, 409, 429, 500, 503, 0]),
    st.sampled_from([200, 404, 503, 0]),
    st.sampled_from([200, 400, 403, 500, 503, 0]),
    st.sampled_from([*STATES, "PIPELINE_STATE_PENDING"]),
    st.sampled_from(["model.train", "model.retrain", "predict.batch", "model.eval"]),
)
def test_handler_with_failing_apis_acks_or_asks_for_a_retry(
    body: bytes, create: int, get: int, publish: int, state: str, route: str
) -> None:
    apis, lines = FakeApis(create, get, publish, state, route), new_lines()
    reply = new_handler(apis, lines).handle("POST", body)
    assert reply.status in ({400} if body == b"" else {200, 503}), (reply, lines)
    assert len(lines) == 1 and "stack_trace" not in lines[0][2]
    if reply.status == 503:
        assert reply.body["outcome"] == "retry"
    # a job is never created twice within one delivery
    assert [kind for kind, _ in apis.calls].count("create") <= 1


@FUZZ
@given(st.text(max_size=300), st.text(min_size=1, max_size=300))
def test_pipeline_job_id_is_always_valid_and_deterministic(workflow: str, message_id: str) -> None:
    job_id = events.pipeline_job_id(workflow, message_id)
    assert events.PIPELINE_JOB_ID_RE.match(job_id)
    assert job_id == events.pipeline_job_id(workflow, message_id)


@FUZZ
@given(st.text(min_size=1, max_size=60), st.text(min_size=1, max_size=60))
def test_distinct_message_ids_get_distinct_job_ids(first: str, second: str) -> None:
    if first != second:
        assert events.pipeline_job_id("w", first) != events.pipeline_job_id("w", second)


@FUZZ
@given(st.text(max_size=200))
def test_label_values_are_always_valid(value: str) -> None:
    label = events.label_value(value)
    assert len(label) <= 63 and all(c in "abcdefghijklmnopqrstuvwxyz0123456789_-" for c in label)


@st.composite
def pipeline_job_event_bodies(draw: st.DrawFn) -> bytes:
    """Well-formed pushes of this workflow's pipeline job events, any state claimed."""
    entry = {
        "logName": "projects/test-project/logs/aiplatform.googleapis.com%2Fpipeline_job_events",
        "resource": {
            "type": "aiplatform.googleapis.com/PipelineJob",
            "labels": {
                "pipeline_job_id": draw(st.sampled_from(JOB_IDS)),
                "location": "europe-west4",
                "resource_container": "test-project",
            },
        },
        "jsonPayload": {"state": draw(st.sampled_from([*STATES, "PIPELINE_STATE_PENDING"]))},
    }
    envelope = make_envelope(
        data=json.dumps(entry).encode(),
        publish_time=rfc3339(NOW - draw(st.integers(0, 10 * 86_400))),
        subscription=draw(st.sampled_from([SUBSCRIPTION, PIPELINE_EVENTS_SUBSCRIPTION])),
    )
    return json.dumps(envelope).encode()


@FUZZ
@given(
    pipeline_job_event_bodies(),
    st.sampled_from([200, 403, 404, 500, 503, 0]),
    st.sampled_from([200, 400, 503, 0]),
    st.sampled_from([*STATES, "PIPELINE_STATE_PENDING"]),
    st.sampled_from(["model.train", "model.retrain", "predict.batch", "model.eval"]),
)
def test_a_pipeline_job_event_publishes_at_most_one_outcome_and_only_a_terminal_one(
    body: bytes, get: int, publish: int, state: str, route: str
) -> None:
    apis = FakeApis(get_status=get, publish_status=publish, job_state=state, job_route=route)
    lines = new_lines()
    reply = new_handler(apis, lines).handle("POST", body)
    assert len(lines) == 1 and "stack_trace" not in lines[0][2]
    results = [c for kind, c in apis.calls if kind == "publish" and c[0] == SETTINGS.results_topic]
    assert len(results) <= 1 and "create" not in [kind for kind, _ in apis.calls]
    outcome = reply.body["outcome"]
    if outcome == "published":
        assert reply.status == 200 and state in events.OUTCOMES and route in SETTINGS.routes
        (event,) = [json.loads(data) for _, data, _ in results]
        expected = SETTINGS.routes[route]
        wanted = expected.on_success if state == "PIPELINE_STATE_SUCCEEDED" else expected.on_failure
        assert event["type"] == wanted
        assert event["payload"]["outcome"] == events.OUTCOMES[state]
    elif outcome == "not_finished":
        assert reply.status == 200 and state not in events.OUTCOMES and results == []
    elif outcome == "retry":
        assert reply.status == 503
    else:
        assert outcome == "dead_lettered" and reply.status == 200
        assert reply.body["error"] in {"unknown_pipeline_job", "unknown_route", "vertex_rejected",
                                       "results_publish_rejected"}  # fmt: skip
    if get == 200 and publish == 200 and state in events.OUTCOMES and route in SETTINGS.routes:
        assert outcome == "published"  # healthy APIs, a finished job: always published

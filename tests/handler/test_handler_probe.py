"""The smoke probe (docs/handler.md, "The probe"), in process: a `workflow.probe` is answered
with one `workflow.probe.ok` on the results topic and starts no job; a probe result arriving on
a chained trigger is acknowledged without a job; the reserved types cannot be routed."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from event_schema import assert_event, schema_errors
from handler_envelopes import make_envelope
from handler_fixtures import handler_env

from workflow_handler import contract
from workflow_handler.app import WorkflowHandler
from workflow_handler.google_apis import NOT_SENT, ApiResponse
from workflow_handler.settings import ConfigError, load_settings

SETTINGS = load_settings(handler_env(None, None))


@dataclass
class RecordingApis:
    results_status: int = 200
    """What a publish to the results topic gets (the dead-letter topic always takes it)."""
    published: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> ApiResponse:
        self.published.append((topic, data, dict(attributes)))
        status = self.results_status if topic == SETTINGS.results_topic else 200
        return ApiResponse(status, {"messageIds": ["77"]}, f"publish {topic}: HTTP {status}")

    def create_pipeline_job(self, job_id: str, body: Mapping[str, Any]) -> ApiResponse:
        self.jobs.append(job_id)
        return ApiResponse(500, None, "create")

    def get_pipeline_job(self, job_id: str) -> ApiResponse:
        self.jobs.append(job_id)
        return ApiResponse(500, None, "get")


def deliver(apis: RecordingApis, event: dict[str, Any], **attributes: str) -> Any:
    lines: list[tuple[str, str, dict[str, Any]]] = []
    handler = WorkflowHandler(
        SETTINGS, apis, log=lambda severity, message, **f: lines.append((severity, message, f))
    )
    envelope = make_envelope(event, message_id="4242", attributes=attributes or None)
    reply = handler.handle("POST", json.dumps(envelope).encode())
    return reply, lines


def test_a_probe_is_answered_on_the_results_topic_without_a_job() -> None:
    apis = RecordingApis()
    probe = {"type": "workflow.probe", "payload": {"nonce": "n-1"}, "correlation_id": "smoke-1"}
    reply, lines = deliver(apis, probe)

    assert (reply.status, reply.body) == (200, {"outcome": "probe_answered", "nonce": "n-1"})
    assert apis.jobs == []
    ((topic, data, attributes),) = apis.published
    assert topic == SETTINGS.results_topic
    answer = json.loads(data)
    assert answer == {
        "type": "workflow.probe.ok",
        "payload": {"nonce": "n-1", "workflow": "train-model"},
        "correlation_id": "smoke-1",
    }
    assert_event(answer)
    assert attributes == {
        "event_type": "workflow.probe.ok",
        "correlation_id": "smoke-1",
        "workflow": "train-model",
    }
    ((severity, message, fields),) = lines
    assert (severity, message) == ("INFO", "probe answered: workflow.probe.ok published")
    assert fields["results_message_id"] == "77" and fields["outcome"] == "probe_answered"


def test_a_probe_without_correlation_id_answers_with_the_message_id() -> None:
    apis = RecordingApis()
    deliver(apis, {"type": "workflow.probe", "payload": {"nonce": "n-2"}})
    assert json.loads(apis.published[0][1])["correlation_id"] == "4242"


def test_a_probe_result_from_upstream_is_acknowledged_without_a_job() -> None:
    apis = RecordingApis()
    result = {"type": "workflow.probe.ok", "payload": {"nonce": "n", "workflow": "ingest"}}
    reply, lines = deliver(apis, result)
    assert (reply.status, reply.body) == (200, {"outcome": "ignored"})
    assert apis.published == [] and apis.jobs == []
    assert lines[0][1] == (
        "workflow.probe.ok of workflow ingest: a probe result, acknowledged, no job"
    )


def test_a_transient_failure_to_answer_asks_pub_sub_to_retry() -> None:
    apis = RecordingApis(results_status=503)
    reply, _ = deliver(apis, {"type": "workflow.probe", "payload": {"nonce": "n"}})
    assert (reply.status, reply.body) == (503, {"outcome": "retry"})
    assert [topic for topic, _, _ in apis.published] == [SETTINGS.results_topic]


def test_a_rejected_answer_dead_letters_the_probe() -> None:
    apis = RecordingApis(results_status=404)
    reply, _ = deliver(apis, {"type": "workflow.probe", "payload": {"nonce": "n"}})
    assert (reply.status, reply.body) == (
        200,
        {"outcome": "dead_lettered", "error": "results_publish_rejected"},
    )
    topics = [topic for topic, _, _ in apis.published]
    assert topics == [SETTINGS.results_topic, SETTINGS.dead_letter_topic]


def test_an_answer_that_cannot_be_encoded_is_our_bug_not_a_retry() -> None:
    """As for every request the handler sends: nothing went out, so it is dead-lettered as
    request_not_serializable with an ERROR line, never retried as a Pub/Sub error."""
    apis = RecordingApis(results_status=NOT_SENT)
    reply, lines = deliver(apis, {"type": "workflow.probe", "payload": {"nonce": "n"}})
    assert (reply.status, reply.body) == (
        200,
        {"outcome": "dead_lettered", "error": "request_not_serializable"},
    )
    assert [topic for topic, _, _ in apis.published] == [
        SETTINGS.results_topic,
        SETTINGS.dead_letter_topic,
    ]
    assert lines[-1][:2] == (
        "ERROR",
        "bug: the handler could not serialize its own request to Pub/Sub; message "
        "dead-lettered: request_not_serializable",
    )


def test_a_malformed_probe_is_dead_lettered_as_a_schema_violation() -> None:
    apis = RecordingApis()
    reply, _ = deliver(apis, {"type": "workflow.probe", "payload": {"nonce": "a b"}})
    assert reply.body == {"outcome": "dead_lettered", "error": "schema_violation"}
    ((topic, _, attributes),) = apis.published
    assert topic == SETTINGS.dead_letter_topic
    assert attributes["error_detail"] == ("'payload.nonce' 'a b' must match [A-Za-z0-9_-]{1,64}")
    assert schema_errors({"type": "workflow.probe", "payload": {"nonce": "a b"}}) != []


@pytest.mark.parametrize(
    ("routes", "expected"),
    [
        (
            {"workflow.probe": {"template_uri": "T"}},
            "an event type other than workflow.probe and workflow.probe.ok (reserved for the "
            "smoke probe, which every handler answers without a job) as keys; got "
            "'workflow.probe'",
        ),
        (
            {"model.train": {"template_uri": "T", "on_success": "workflow.probe.ok"}},
            "ROUTES['model.train'].on_success to be an event type other than workflow.probe and "
            "workflow.probe.ok (reserved for the smoke probe, which every handler answers "
            "without a job); got 'workflow.probe.ok'",
        ),
    ],
)
def test_the_handler_refuses_routes_of_the_reserved_types(
    routes: dict[str, Any], expected: str
) -> None:
    template = "https://europe-west4-kfp.pkg.dev/test-project/pipelines/train/v1"
    for spec in routes.values():
        spec["template_uri"] = template
    with pytest.raises(ConfigError) as caught:
        load_settings(handler_env(None, None, ROUTES=json.dumps(routes)))
    assert caught.value.allowed == expected


def test_the_reserved_types_are_the_contracts() -> None:
    assert contract.RESERVED_EVENT_TYPES == ("workflow.probe", "workflow.probe.ok")
    assert all(contract.is_event_type(t) for t in contract.RESERVED_EVENT_TYPES)

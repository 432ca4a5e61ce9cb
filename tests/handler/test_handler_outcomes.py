"""Outcomes, not starts: the handler driven over HTTP with pipeline job events (Cloud Logging
entries as the workflow's log sink publishes them, docs/examples/pipeline-job-event.json), the
follow-up events it publishes for them, and idempotency from one stage to the next."""

from __future__ import annotations

import base64
import copy
import json
import time
from typing import Any

import pytest
from conftest import Live
from event_schema import assert_follow_up
from handler_envelopes import event_data, make_envelope, next_message_id, rfc3339
from handler_fixtures import PIPELINE_EVENTS_SUBSCRIPTION, REPO, SUBSCRIPTION
from local_standins import PROJECT_NUMBER, Published

from workflow_handler import events

JOB_PREFIX = f"projects/{PROJECT_NUMBER}/locations/europe-west4/pipelineJobs/"
EXAMPLE_ENTRY = json.loads((REPO / "docs" / "examples" / "pipeline-job-event.json").read_text())
SUCCEEDED, FAILED, CANCELLED = (
    "PIPELINE_STATE_SUCCEEDED",
    "PIPELINE_STATE_FAILED",
    "PIPELINE_STATE_CANCELLED",
)


def only(items: list[Any]) -> Any:
    assert len(items) == 1, items
    return items[0]


def log_entry(
    job_id: str,
    state: str | None = SUCCEEDED,
    project: str = "test-project",
    location: str = "europe-west4",
) -> dict[str, Any]:
    """The documented example entry, about `job_id` in `state`."""
    entry = copy.deepcopy(EXAMPLE_ENTRY)
    entry["logName"] = f"projects/{project}/logs/aiplatform.googleapis.com%2Fpipeline_job_events"
    entry["resource"]["labels"] = {
        "location": location,
        "pipeline_job_id": job_id,
        "resource_container": project,
    }
    if state is None:
        del entry["jsonPayload"]["state"]
    else:
        entry["jsonPayload"]["state"] = state
    return entry


def signal_envelope(entry: Any, **options: Any) -> dict[str, Any]:
    """A pipeline job event as the pipeline-events subscription pushes it."""
    options.setdefault("subscription", PIPELINE_EVENTS_SUBSCRIPTION)
    return make_envelope(
        data=json.dumps(entry).encode(),
        attributes={"logging.googleapis.com/timestamp": entry.get("timestamp", "")}
        if isinstance(entry, dict)
        else {},
        **options,
    )


def signal(live: Live, job_id: str, state: str | None = SUCCEEDED, **options: Any) -> Any:
    return live.post(signal_envelope(log_entry(job_id, state), **options))


def start(live: Live, event: dict[str, Any], **options: Any) -> str:
    """Deliver a trigger event; the id of the job it started (or found)."""
    response = live.deliver(event, **options)
    assert response.status_code == 200, response.text
    return str(response.json()["pipeline_job"]).rsplit("/", 1)[1]


def finish(live: Live, job_id: str, state: str, **fields: Any) -> dict[str, Any]:
    """Vertex AI runs the job to `state` (what the next GET shows)."""
    with live.vertex.lock:
        job = live.vertex.jobs[job_id]
        job.update(state=state, **fields)
        return copy.deepcopy(job)


def completions(live: Live) -> list[Published]:
    """What was published to the results topic about a job's end (not its start)."""
    return [m for m in live.results() if m.json["payload"].get("outcome") != "started"]


def redeliver(live: Live, published: Published, **options: Any) -> Any:
    """A published follow-up event, delivered as the next stage's trigger (here the same
    handler: model.train's on_success is predict.batch, which it routes)."""
    envelope = make_envelope(data=published.data, attributes=dict(published.attributes), **options)
    return live.post(envelope)


OUTPUTS_DETAIL = {
    "taskDetails": [
        {
            "taskId": "1",
            "taskName": "train",
            "outputs": {"model": {"artifacts": [{"uri": "gs://test-bucket/train-model/model"}]}},
            "execution": {"metadata": {"output:accuracy": 0.93}},
        },
        {"taskId": "2", "parentTaskId": "1", "taskName": "fit"},
    ]
}


# --- what each outcome publishes ---------------------------------------------------------------


def test_success_publishes_the_routes_on_success_event(live: Live) -> None:
    job_id = start(live, event_data("model.train", {"epochs": 5}, "Order-42/A"))
    job = finish(live, job_id, SUCCEEDED, jobDetail=OUTPUTS_DETAIL)
    message_id = next_message_id()
    response = signal(live, job_id, message_id=message_id)

    assert response.status_code == 200
    assert response.json() == {
        "outcome": "published",
        "pipeline_job": job["name"],
        "state": SUCCEEDED,
        "event_type": "predict.batch",
    }
    done = only(completions(live))
    key = events.outcome_key(job["name"], "succeeded")
    assert done.json == {
        "type": "predict.batch",
        "payload": {
            "workflow": "train-model",
            "pipeline_job": f"{JOB_PREFIX}{job_id}",
            "outcome": "succeeded",
            "state": SUCCEEDED,
            "output_directory": "gs://test-bucket/train-model",
            "outputs": {
                "artifacts": {"model": ["gs://test-bucket/train-model/model"]},
                "parameters": {"accuracy": 0.93},
            },
            "source_event": {
                "type": "model.train",
                "parameters": {"epochs": 5, "learning_rate": 0.1},
            },
        },
        "correlation_id": "Order-42/A",  # exact, although a label could not hold it as it is
        "idempotency_key": key,
    }
    assert_follow_up(done.json)
    assert done.attributes == {
        "event_type": "predict.batch",
        "correlation_id": "Order-42/A",
        "idempotency_key": key,
        "workflow": "train-model",
    }
    assert live.dead_letters() == []
    line = only([line for line in live.logs() if line.get("input") == "pipeline_job_event"])
    assert line["severity"] == "INFO" and line["outcome"] == "published"
    assert line["subscription"] == PIPELINE_EVENTS_SUBSCRIPTION
    assert line["message_id"] == message_id
    assert line["pipeline_job_id"] == job_id and line["state"] == SUCCEEDED
    assert line["result_event_type"] == "predict.batch" and line["result_idempotency_key"] == key


@pytest.mark.parametrize(
    ("route", "state", "published"),
    [
        ("model.train", FAILED, "workflow.failed"),  # on_failure left at its default
        ("model.train", CANCELLED, "workflow.failed"),
        ("model.retrain", FAILED, "model.retrain_failed"),
        ("model.retrain", CANCELLED, "model.retrain_failed"),
    ],
)
def test_failure_and_cancellation_publish_the_routes_on_failure_event(
    live: Live, route: str, state: str, published: str
) -> None:
    job_id = start(live, event_data(route, {}, "c-7"))
    error = {"code": 9, "message": "The DAG failed because some tasks failed.", "details": []}
    job = finish(live, job_id, state, error=error)
    assert signal(live, job_id, state).status_code == 200

    outcome = "failed" if state == FAILED else "cancelled"
    done = only(completions(live))
    assert done.json["type"] == published
    assert done.json["payload"]["outcome"] == outcome
    assert done.json["payload"]["state"] == state
    assert done.json["payload"]["error"] == {"code": 9, "message": error["message"]}
    assert done.json["idempotency_key"] == events.outcome_key(job["name"], outcome)
    assert done.json["correlation_id"] == "c-7"
    assert_follow_up(done.json)
    # A failure starts nothing downstream: predict.batch (model.train's on_success) never went out.
    assert [m.json["type"] for m in live.results()].count("predict.batch") == 0


def test_without_on_start_only_the_outcome_is_published(live: Live) -> None:
    job_id = start(live, event_data("predict.batch", {"input": "gs://x"}))
    assert live.results() == []
    finish(live, job_id, SUCCEEDED)
    assert signal(live, job_id).status_code == 200
    done = only(live.results())
    assert done.json["type"] == "predict.batch_done"
    assert done.json["correlation_id"] == events.label_text(
        "correlation_id", live.vertex.jobs[job_id]["labels"]
    )


# --- idempotency, end to end --------------------------------------------------------------------


def test_repeated_signals_publish_one_key_and_start_one_downstream_job(live: Live) -> None:
    job_id = start(live, event_data("model.train", {"epochs": 1}, "order-7"))
    finish(live, job_id, SUCCEEDED)
    # The sink delivers at least once (a new message each time), Pub/Sub redelivers (the same
    # message again): every copy leads to the same event.
    same_message = signal_envelope(log_entry(job_id))
    for response in [
        signal(live, job_id),
        signal(live, job_id),
        live.post(same_message),
        live.post(same_message),
    ]:
        assert response.status_code == 200
    published = completions(live)
    assert len(published) == 4
    assert len({m.data for m in published}) == 1
    assert len({m.attributes["idempotency_key"] for m in published}) == 1

    # Downstream, every copy, each delivered several times, starts the same one job.
    jobs_before = set(live.vertex.jobs)
    answers = [redeliver(live, m).json() for m in published for _ in range(3)]
    downstream = set(live.vertex.jobs) - jobs_before
    key = published[0].json["idempotency_key"]
    assert downstream == {events.keyed_pipeline_job_id("train-model", "predict.batch", key)}
    assert [a["outcome"] for a in answers] == ["started"] + ["already_started"] * 11
    (new_job,) = downstream
    labels = live.vertex.jobs[new_job]["labels"]
    assert events.label_text("idempotency_key", labels) == key
    assert events.label_text("correlation_id", labels) == "order-7"


def test_an_event_with_an_idempotency_key_starts_one_job_however_often_published(
    live: Live,
) -> None:
    event = {**event_data("predict.batch", {"n": 1}, "c"), "idempotency_key": "Batch/2026-11-24"}
    responses = [live.deliver(event) for _ in range(10)]  # ten messages, ten message ids
    assert [r.status_code for r in responses] == [200] * 10
    job_id = only(list(live.vertex.jobs))
    key = event["idempotency_key"]
    assert job_id == events.keyed_pipeline_job_id("train-model", "predict.batch", key)
    assert {r.json()["pipeline_job"] for r in responses} == {f"{JOB_PREFIX}{job_id}"}


def test_a_chain_keeps_its_correlation_id_and_names_each_cause(live: Live) -> None:
    train = start(live, event_data("model.train", {"epochs": 2}, "Order-42/A"))
    finish(live, train, SUCCEEDED)
    assert signal(live, train).status_code == 200
    trained = only(completions(live))
    assert redeliver(live, trained).status_code == 200
    predict = only([j for j in live.vertex.jobs if j != train])
    finish(live, predict, SUCCEEDED)
    assert signal(live, predict).status_code == 200

    done = only([m for m in completions(live) if m.json["type"] == "predict.batch_done"])
    assert done.json["correlation_id"] == "Order-42/A"
    assert done.json["payload"]["source_event"] == {
        "type": "predict.batch",
        # the upstream completion's payload overlays the (empty) route parameters
        "parameters": trained.json["payload"],
        "idempotency_key": trained.json["idempotency_key"],
    }
    assert done.json["idempotency_key"] != trained.json["idempotency_key"]
    assert_follow_up(done.json)


# --- the entry is only a signal -----------------------------------------------------------------


def test_a_signal_for_an_unfinished_job_publishes_nothing(live: Live) -> None:
    job_id = start(live, event_data("predict.batch"))
    finish(live, job_id, "PIPELINE_STATE_RUNNING")
    response = signal(live, job_id, "PIPELINE_STATE_RUNNING")
    assert response.status_code == 200 and response.json()["outcome"] == "not_finished"
    # The entry says it ended but Vertex AI does not (yet): retry until they agree.
    claimed = signal_envelope(log_entry(job_id, SUCCEEDED))
    assert live.post(claimed).status_code == 503
    finish(live, job_id, SUCCEEDED)
    assert live.post(claimed).status_code == 200
    assert only(completions(live)).json["payload"]["outcome"] == "succeeded"
    assert live.dead_letters() == []


def test_the_job_not_the_entry_decides_the_outcome(live: Live) -> None:
    job_id = start(live, event_data("predict.batch"))
    finish(live, job_id, FAILED)
    assert signal(live, job_id, SUCCEEDED).status_code == 200  # the entry is wrong
    assert only(completions(live)).json["payload"]["outcome"] == "failed"


def test_an_entry_without_a_state_is_still_a_signal(live: Live) -> None:
    job_id = start(live, event_data("predict.batch"))
    finish(live, job_id, CANCELLED)
    assert signal(live, job_id, None).status_code == 200
    assert only(completions(live)).json["payload"]["outcome"] == "cancelled"


def test_a_log_entry_is_recognised_whichever_subscription_pushes_it(live: Live) -> None:
    job_id = start(live, event_data("predict.batch"))
    finish(live, job_id, SUCCEEDED)
    assert signal(live, job_id, subscription=SUBSCRIPTION).status_code == 200
    assert only(completions(live)).json["type"] == "predict.batch_done"


def test_a_late_signal_is_still_processed(live: Live) -> None:
    job_id = start(live, event_data("predict.batch"))
    finish(live, job_id, SUCCEEDED)
    response = signal(live, job_id, publish_time=rfc3339(time.time() - 10 * 3600))
    assert response.status_code == 200 and response.json()["outcome"] == "published"


# --- what cannot be handled: dead-lettered, or retried --------------------------------------------


BAD_SIGNALS: dict[str, tuple[str, Any]] = {
    "not a log entry": ("bad_pipeline_event", [1, 2]),
    "an event on the pipeline-events subscription": (
        "bad_pipeline_event",
        event_data("model.train"),
    ),
    "no resource": ("bad_pipeline_event", {"logName": EXAMPLE_ENTRY["logName"]}),
    "no job id": (
        "bad_pipeline_event",
        {**EXAMPLE_ENTRY, "resource": {"type": "aiplatform.googleapis.com/PipelineJob"}},
    ),
    "another log": (
        "bad_pipeline_event",
        {**log_entry("train-model-1"), "logName": "projects/p/logs/cloudaudit.googleapis.com"},
    ),
    "another workflow's job": ("unknown_pipeline_job", log_entry("train-model-eu-1")),
    "another project": ("unknown_pipeline_job", log_entry("train-model-1", project="other-proj")),
    "another region": ("unknown_pipeline_job", log_entry("train-model-1", location="us-east1")),
    "a job Vertex AI does not know": ("unknown_pipeline_job", log_entry("train-model-404")),
}


@pytest.mark.parametrize("case", sorted(BAD_SIGNALS))
def test_bad_pipeline_job_events_are_dead_lettered(live: Live, case: str) -> None:
    error, entry = BAD_SIGNALS[case]
    envelope = signal_envelope(entry)
    response = live.post(envelope)
    assert response.status_code == 200
    assert response.json() == {"outcome": "dead_lettered", "error": error}
    dead = only(live.dead_letters())
    assert dead.attributes["error"] == error and dead.attributes["error_detail"]
    assert dead.attributes["source_subscription"] == PIPELINE_EVENTS_SUBSCRIPTION
    assert json.loads(dead.data) == entry  # the entry, byte for byte what was pushed
    assert live.results() == [] and live.vertex.creates() == []


def test_a_job_of_another_workflow_is_refused_by_its_labels(live: Live) -> None:
    job_id = start(live, event_data("predict.batch"))
    finish(live, job_id, SUCCEEDED, labels={"workflow": "someone-else"})
    response = signal(live, job_id)
    assert response.json() == {"outcome": "dead_lettered", "error": "unknown_pipeline_job"}
    assert live.results() == []


def test_a_job_whose_route_is_gone_is_dead_lettered(live: Live) -> None:
    job_id = start(live, event_data("predict.batch"))
    labels = {**live.vertex.jobs[job_id]["labels"], "event_type": "model-evaluate"}
    finish(live, job_id, SUCCEEDED, labels=labels)
    response = signal(live, job_id)
    assert response.json() == {"outcome": "dead_lettered", "error": "unknown_route"}
    assert "model.evaluate" in only(live.dead_letters()).attributes["error_detail"]


@pytest.mark.parametrize("fault", [{"status": 503}, {"status": 403}, {"drop": True}])
def test_a_job_that_cannot_be_read_is_retried(live: Live, fault: dict[str, Any]) -> None:
    job_id = start(live, event_data("predict.batch"))
    finish(live, job_id, SUCCEEDED)
    envelope = signal_envelope(log_entry(job_id))
    live.vertex.fail("get", **fault)
    response = live.post(envelope)
    assert response.status_code == 503 and response.json()["outcome"] == "retry"
    assert live.results() == [] and live.dead_letters() == []
    assert live.post(envelope).status_code == 200
    assert len(completions(live)) == 1


def test_a_failed_publish_is_retried_and_the_retry_publishes_the_same_event(live: Live) -> None:
    job_id = start(live, event_data("predict.batch"))
    finish(live, job_id, SUCCEEDED)
    envelope = signal_envelope(log_entry(job_id))
    live.pubsub.fail("publish", 503)
    assert live.post(envelope).status_code == 503
    assert live.results() == []
    assert live.post(envelope).status_code == 200
    assert len(completions(live)) == 1


# --- events this workflow is not for ------------------------------------------------------------


def test_the_upstreams_unrouted_event_types_are_acknowledged_without_a_job(live: Live) -> None:
    response = live.deliver(event_data("upstream.failed", {"workflow": "ingest"}))
    assert response.status_code == 200 and response.json() == {"outcome": "ignored"}
    assert live.vertex.requests == [] and live.pubsub.requests == []
    line = only([line for line in live.logs() if "outcome" in line])
    assert line["severity"] == "INFO" and line["event_type"] == "upstream.failed"


def test_other_unrouted_types_are_still_dead_lettered(live: Live) -> None:
    response = live.deliver(event_data("upstream.finished"))
    assert response.json() == {"outcome": "dead_lettered", "error": "unknown_event_type"}


def test_the_signal_builder_round_trips() -> None:
    # Guard for the builders above: the entry is the message data, as a sink publishes it.
    envelope = signal_envelope(log_entry("train-model-1"))
    assert envelope["subscription"] == PIPELINE_EVENTS_SUBSCRIPTION
    data = base64.b64decode(envelope["message"]["data"])
    assert events.parse_pipeline_job_event(json.loads(data)).job_id == "train-model-1"

"""docs/events.schema.json says what the handler's own parser says: for every event below, the
published schema and `events.validate_event` agree. (The handler's follow-up events are checked
against it where they are made: test_handler_outcomes.py, test_handler_http.py and every
publish of test_handler_fuzz.py.)"""

from __future__ import annotations

import json
from typing import Any

import pytest
from event_schema import SCHEMA_PATH, assert_follow_up, schema_errors
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow_handler import events
from workflow_handler.events import PermanentError

GOOD: list[Any] = [
    {"type": "model.train", "payload": {}},
    {"type": "model.train", "payload": {"dataset": "gs://data/2026-01", "epochs": 5}},
    {"type": "a." + "b" * 126, "payload": {}, "correlation_id": "x" * 128},
    {"type": "model.retrain_v2", "payload": {"n": [1, None]}, "correlation_id": "order-42"},
    {"type": "predict.batch", "payload": {}, "idempotency_key": "Batch/2026-11-24"},
    {"type": "x1.y2.z3", "payload": {}, "correlation_id": "ü €", "idempotency_key": "k"},
    {"type": "workflow.probe", "payload": {"nonce": "0f3a-_Z"}, "correlation_id": "smoke-1"},
    {"type": "workflow.probe.ok", "payload": {"nonce": "n" * 64, "workflow": "train-eu"}},
    {"type": "workflow.probed", "payload": {}},  # not reserved: any payload
]
BAD: list[Any] = [
    [1, 2],
    "model.train",
    {"payload": {}},
    {"type": "model.train"},
    {"type": "train", "payload": {}},
    {"type": "Model.train", "payload": {}},
    {"type": "a." + "b" * 127, "payload": {}},
    {"type": "model.train", "payload": [1]},
    {"type": "model.train", "payload": {}, "extra": 1},
    {"type": "model.train", "payload": {}, "correlation_id": ""},
    {"type": "model.train", "payload": {}, "correlation_id": "x" * 129},
    {"type": "model.train", "payload": {}, "correlation_id": 7},
    {"type": "model.train", "payload": {}, "correlation_id": "a\nb"},
    {"type": "model.train", "payload": {}, "correlation_id": "a\n"},
    {"type": "model.train\n", "payload": {}},
    {"type": "model.train", "payload": {}, "idempotency_key": ""},
    {"type": "model.train", "payload": {}, "idempotency_key": "k" * 129},
    {"type": "model.train", "payload": {}, "idempotency_key": "\x7f"},
    {"type": "workflow.probe", "payload": {}},
    {"type": "workflow.probe", "payload": {"nonce": ""}},
    {"type": "workflow.probe", "payload": {"nonce": "n" * 65}},
    {"type": "workflow.probe", "payload": {"nonce": "a b"}},
    {"type": "workflow.probe", "payload": {"nonce": "ab\n"}},
    {"type": "workflow.probe", "payload": {"nonce": 7}},
    {"type": "workflow.probe", "payload": {"nonce": "n", "epochs": 5}},
    {"type": "workflow.probe.ok", "payload": {"nonce": "n"}},
    {"type": "workflow.probe.ok", "payload": {"nonce": "n", "workflow": "Train"}},
    {"type": "workflow.probe.ok", "payload": {"nonce": "n", "workflow": "train\n"}},
    {"type": "workflow.probe.ok", "payload": {"nonce": "n", "workflow": "train", "x": 1}},
]


def parser_accepts(obj: Any) -> bool:
    try:
        events.validate_event(obj)
    except PermanentError:
        return False
    return True


@pytest.mark.parametrize("obj", GOOD, ids=lambda o: json.dumps(o)[:40])
def test_what_the_handler_accepts_the_schema_accepts(obj: Any) -> None:
    assert parser_accepts(obj)
    assert schema_errors(obj) == []


@pytest.mark.parametrize("obj", BAD, ids=lambda o: json.dumps(o)[:40])
def test_what_the_handler_refuses_the_schema_refuses(obj: Any) -> None:
    assert not parser_accepts(obj)
    assert schema_errors(obj) != []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(
                ["model.train", "a.b_c", "Model.x", "x", "", "workflow.probe", "workflow.probe.ok"]
            )
            | json_values,
            "payload": st.dictionaries(st.text(max_size=5), json_values, max_size=3)
            | st.fixed_dictionaries(
                {"nonce": st.sampled_from(["n-1", "", "a b", "x\n"]) | json_values},
                optional={"workflow": st.sampled_from(["train", "T", "t\n"]) | json_values},
            )
            | json_values,
            "correlation_id": st.text(max_size=130) | json_values,
            "idempotency_key": st.text(max_size=130) | json_values,
            "extra": json_values,
        },
    )
)
def test_the_schema_and_the_parser_agree_on_any_object(obj: dict[str, Any]) -> None:
    assert parser_accepts(obj) == (schema_errors(obj) == [])


def test_the_schema_documents_a_follow_up_event() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    follow_up = {
        "type": "model.train",
        "payload": {
            "workflow": "ingest",
            "pipeline_job": "projects/123/locations/europe-west4/pipelineJobs/ingest-41827390",
            "outcome": "succeeded",
            "state": "PIPELINE_STATE_SUCCEEDED",
            "output_directory": "gs://acme-ai-dev-pipeline-root/ingest",
            "source_event": {"type": "data.ready", "parameters": {"day": "2026-11-24"}},
        },
        "correlation_id": "order-42",
        "idempotency_key": "0123456789abcdef0123456789abcdef",
    }
    assert_follow_up(follow_up)
    assert schema_errors(follow_up) == []  # a follow-up is an event, too
    wrong = {**follow_up, "payload": {**follow_up["payload"], "state": "PIPELINE_STATE_FAILED"}}
    assert schema_errors(wrong, follow_up=True) != []  # outcome and state must agree
    started = {**follow_up, "payload": {**follow_up["payload"], "outcome": "started"}}
    started["payload"]["state"] = "PIPELINE_STATE_PENDING"
    assert schema_errors(started, follow_up=True) == []
    assert schema_errors({**started, "payload": {**started["payload"], "error": {}}}, True) != []
    assert schema_errors({**follow_up, "idempotency_key": "K"}, follow_up=True) != []
    probe_answer = {**follow_up, "type": "workflow.probe.ok"}
    assert schema_errors(probe_answer, follow_up=True) != []  # never a reserved type
    assert set(schema["$defs"]) >= {"event", "follow_up_event", "follow_up_payload"}

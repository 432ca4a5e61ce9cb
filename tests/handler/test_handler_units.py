"""Unit tests of the handler's pure functions: the event contract, the envelope parser, the
identifiers and labels it derives, the configuration loader and the error classification."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from handler_envelopes import b64, event_data, make_envelope
from handler_fixtures import FUNCTION_SOURCE, ROUTES, handler_env

from workflow_handler import events, google_apis, logs
from workflow_handler.events import Event, PermanentError
from workflow_handler.settings import ConfigError, load_settings

# --- the event contract -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event_type", ["model.train", "predict.batch", "a.b", "model.retrain_v2", "x1.y2.z3"]
)
def test_valid_event_types(event_type: str) -> None:
    assert events.is_event_type(event_type)


@pytest.mark.parametrize(
    "event_type",
    ["", "model", "Model.train", "model.", ".model", "model..train", "1model.x", "model.train-x",
     "model. train", "a." + "b" * 127, None, 5, ["model.train"]],
)  # fmt: skip
def test_invalid_event_types(event_type: Any) -> None:
    assert not events.is_event_type(event_type)


def test_decode_event_accepts_the_contract() -> None:
    data = b'{"type": "model.train", "payload": {"n": 1}, "correlation_id": "c"}'
    assert events.decode_event(data) == Event("model.train", {"n": 1}, "c")
    assert events.decode_event(b'{"type":"a.b","payload":{}}') == Event("a.b", {}, None)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\xff", "bad_utf8"),
        (b"", "bad_json"),
        (b'{"type":"a.b","payload":{"x":NaN}}', "non_finite_number"),
        (b'{"type":"a.b","payload":{},"payload":{}}', "bad_json"),
        (b"[" * 100_000, "bad_json"),
        (b"[]", "schema_violation"),
        (b'{"type":"a.b"}', "schema_violation"),
        (b'{"payload":{}}', "schema_violation"),
        (b'{"type":"a.b","payload":{},"x":1}', "schema_violation"),
        (b'{"type":"a.b","payload":{},"correlation_id":""}', "schema_violation"),
    ],
)
def test_decode_event_rejections(data: bytes, code: str) -> None:
    with pytest.raises(PermanentError) as info:
        events.decode_event(data)
    assert info.value.code == code
    assert info.value.detail


def test_nesting_is_limited_so_that_re_encoding_cannot_recurse_too_deep() -> None:
    def nested(levels: int) -> bytes:  # the event object is level 1, the payload level 2
        inner = "[" * (levels - 2) + "]" * (levels - 2)
        return ('{"type":"a.b","payload":{"x":' + inner + "}}").encode()

    assert events.decode_event(nested(events.MAX_JSON_DEPTH)).type == "a.b"
    for levels in (events.MAX_JSON_DEPTH + 1, 991, 5000):
        with pytest.raises(PermanentError, match="nested deeper than 64") as info:
            events.decode_event(nested(levels))
        assert info.value.code == "bad_json"


def test_schema_violation_names_unknown_keys() -> None:
    with pytest.raises(PermanentError, match="extra"):
        events.validate_event({"type": "a.b", "payload": {}, "extra": 1})


def test_encode_event_round_trips_and_is_canonical() -> None:
    event = Event("workflow.started", {"b": 1, "a": "é"}, "c-1")
    encoded = events.encode_event(event)
    assert (
        encoded
        == '{"correlation_id":"c-1","payload":{"a":"é","b":1},"type":"workflow.started"}'.encode()
    )
    assert events.decode_event(encoded) == event
    assert events.event_attributes(event, workflow="w") == {
        "event_type": "workflow.started",
        "correlation_id": "c-1",
        "workflow": "w",
    }


def test_attributes_must_agree_with_the_event() -> None:
    event = Event("model.train", {}, "c")
    events.check_attributes_agree(event, {"event_type": "model.train", "correlation_id": "c"})
    events.check_attributes_agree(event, {"other": "x"})
    for attributes in ({"event_type": "model.retrain"}, {"correlation_id": "d"}):
        with pytest.raises(PermanentError):
            events.check_attributes_agree(event, attributes)


# --- the push envelope --------------------------------------------------------------------------


def test_parse_push_envelope() -> None:
    envelope = make_envelope(event_data(), message_id="77", attributes={"a": "b"})
    envelope["message"]["publishTime"] = "2026-03-01T12:00:00.123456789Z"
    envelope["deliveryAttempt"] = 3
    message = events.parse_push_envelope(json.dumps(envelope).encode())
    assert message.message_id == "77"
    assert message.attributes == {"a": "b"}
    assert message.publish_time == datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert message.delivery_attempt == 3
    assert message.subscription == "projects/test-project/subscriptions/train-model-push"
    assert json.loads(events.decode_message_data(message)) == event_data()


def test_envelope_with_only_snake_case_fields_and_no_optional_ones() -> None:
    body = {"message": {"message_id": "1", "publish_time": "2026-01-01T00:00:00Z"}}
    message = events.parse_push_envelope(json.dumps(body).encode())
    assert message.message_id == "1" and message.data_b64 == "" and message.attributes == {}
    assert message.subscription is None and message.delivery_attempt is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02t03:04:05.5z", datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)),
        (
            "2026-01-02T03:04:05.123+02:00",
            datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=timezone(timedelta(hours=2))),
        ),
        (
            "2026-01-02T03:04:05-05:30",
            datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
        ),
    ],
)
def test_parse_rfc3339(text: str, expected: datetime) -> None:
    assert events.parse_rfc3339(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "2026-01-02", "2026-01-02T03:04:05", "2026-13-01T00:00:00Z", "2026-01-02T03:04:60Z",
     "2026-01-02T03:04:05.1234567890Z", "2026-01-02T03:04:05+24:00", " 2026-01-02T03:04:05Z"],
)  # fmt: skip
def test_parse_rfc3339_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        events.parse_rfc3339(text)


def test_salvage_prefers_the_decoded_message_data() -> None:
    envelope = {"message": {"data": b64(b"payload"), "attributes": {"k": "v"}, "messageId": "9"}}
    salvage = events.salvage_request(b"raw", envelope)
    assert (salvage.data, salvage.data_source) == (b"payload", "message_data")
    assert salvage.attributes == {"k": "v"} and salvage.message_id == "9"
    broken = events.salvage_request(b"raw", {"message": {"data": "%%%", "attributes": [1]}})
    assert (broken.data, broken.data_source, broken.attributes) == (b"raw", "request_body", {})


# --- identifiers, labels, dead-letter attributes ------------------------------------------------


def test_pipeline_job_id_keeps_numeric_message_ids_readable() -> None:
    assert events.pipeline_job_id("train-model", "1234567890") == "train-model-1234567890"
    assert events.pipeline_job_id("Train_Model", "1") == "train-model-1"
    assert events.pipeline_job_id("9lives", "1") == "wf-9lives-1"


def test_pipeline_job_id_hashes_other_message_ids_deterministically() -> None:
    first = events.pipeline_job_id("w", "abc")
    assert first == events.pipeline_job_id("w", "abc")
    assert first != events.pipeline_job_id("w", "abd")
    assert first.startswith("w-h") and events.PIPELINE_JOB_ID_RE.match(first)
    # a digit string that is too long is hashed too, and cannot collide with a readable one
    long_id = "1" * 41
    assert events.pipeline_job_id("w", long_id).startswith("w-h")
    # different workflows never share a job id for the same message
    assert events.pipeline_job_id("a", "1") != events.pipeline_job_id("b", "1")


@pytest.mark.parametrize(
    ("value", "label"),
    [("model.train", "model-train"), ("Order-42/A", "order-42-a"), ("x" * 70, "x" * 63),
     ("snake_case", "snake_case"), ("ünï", "-n-")],
)  # fmt: skip
def test_label_value(value: str, label: str) -> None:
    assert events.label_value(value) == label


def test_effective_correlation_id() -> None:
    assert events.effective_correlation_id(Event("a.b", {}, "c"), "1") == "c"
    assert events.effective_correlation_id(Event("a.b", {}, None), "1") == "1"
    hashed = events.effective_correlation_id(Event("a.b", {}, None), "x" * 500)
    assert hashed.startswith("msg-") and events.is_correlation_id(hashed)


def test_dead_letter_attributes_respect_pubsub_limits() -> None:
    original = {f"k{i:03}": "v" for i in range(120)}
    original.update({"googclient_schemaname": "s", "error": "mine", "big": "é" * 2000})
    ours = {"error": "bad_json", "error_detail": "d" * 5000, "workflow": "w"}
    attributes, dropped = events.dead_letter_attributes(original, ours)
    assert len(attributes) <= 100
    assert attributes["error"] == "bad_json"  # ours win
    assert len(attributes["error_detail"].encode()) == 1024
    assert len(attributes["big"].encode()) <= 1024
    assert "googclient_schemaname" not in attributes
    assert dropped > 0 and attributes["dropped_attributes"] == str(dropped)
    assert all(not key.startswith("goog") for key in attributes)


def test_truncate_utf8_never_splits_a_character() -> None:
    assert events.truncate_utf8("é" * 10, 5) == "éé"  # 4 bytes, not half a character
    assert events.truncate_utf8("aé" * 10, 4) == "aéa"
    assert events.truncate_utf8("\ud800x", 10) == "?x"


# --- error classification -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "google_status", "kind"),
    [
        (200, None, "ok"),
        (204, None, "ok"),
        (409, "ALREADY_EXISTS", "already_exists"),
        (409, "ABORTED", "transient"),
        (409, None, "transient"),
        (0, None, "transient"),
        (401, None, "transient"),
        (403, None, "transient"),
        (408, None, "transient"),
        (429, None, "transient"),
        (500, None, "transient"),
        (503, None, "transient"),
        (400, None, "permanent"),
        (404, None, "permanent"),
        (412, None, "permanent"),
        (413, None, "permanent"),
    ],
)
def test_classify(status: int, google_status: str | None, kind: str) -> None:
    assert google_apis.classify(status, google_status) == kind


# --- logs ---------------------------------------------------------------------------------------


def test_log_line_is_one_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    logs.log("INFO", "hello", message_id="1", event_type=None, weird="\ud800")
    logs.log("ERROR", "bad")
    out, err = capsys.readouterr()
    assert json.loads(out) == {"severity": "INFO", "message": "hello", "message_id": "1",
                               "weird": "\ud800"}  # fmt: skip
    assert out.count("\n") == 1 and out.isascii()
    assert json.loads(err)["severity"] == "ERROR"


def test_trace_field() -> None:
    assert logs.trace_field("p", "abc123/1;o=1") == "projects/p/traces/abc123"
    assert logs.trace_field("p", None) is None
    assert logs.trace_field("p", "not a trace!/1") is None


# --- configuration ------------------------------------------------------------------------------


def good_env(**overrides: str) -> dict[str, str]:
    env = handler_env(None, None, **overrides)
    return {k: v for k, v in env.items() if v != "<unset>"}


def test_load_settings_defaults() -> None:
    env = good_env()
    del env["MAX_EVENT_AGE_SECONDS"], env["OUTBOUND_TIMEOUT_SECONDS"]
    settings = load_settings(env)
    assert settings.max_event_age_seconds == 86400
    assert settings.timeout_seconds == 10
    assert settings.vertex_endpoint == "https://europe-west4-aiplatform.googleapis.com"
    assert not settings.vertex_anonymous
    assert settings.pubsub_endpoint == "https://pubsub.googleapis.com"
    assert not settings.pubsub_anonymous
    assert set(settings.routes) == set(ROUTES)
    train, batch = settings.routes["model.train"], settings.routes["predict.batch"]
    assert (train.on_success, train.on_failure, train.on_start) == (
        "predict.batch",
        "workflow.failed",
        "model.training_started",
    )
    assert (batch.on_success, batch.on_failure, batch.on_start) == (
        "predict.batch_done",
        "workflow.failed",
        None,
    )
    assert settings.routes["predict.batch"].parameters == {}
    assert settings.ignored_event_types == {"upstream.failed", "upstream.started"}
    assert settings.pipeline_events_subscription == (
        "projects/test-project/subscriptions/train-model-pipeline-events-push"
    )


def test_ignored_event_types_default_to_none() -> None:
    env = good_env()
    del env["IGNORED_EVENT_TYPES"]
    assert load_settings(env).ignored_event_types == frozenset()
    assert load_settings(good_env(IGNORED_EVENT_TYPES="")).ignored_event_types == frozenset()


def test_the_renamed_route_key_is_named_in_the_error() -> None:
    routes = json.dumps({"model.train": {"template_uri": TEMPLATE, "result_event_type": "a.b"}})
    with pytest.raises(ConfigError) as info:
        load_settings(good_env(ROUTES=routes))
    assert "result_event_type is now on_success" in info.value.allowed


def test_pipeline_kms_key_is_optional_and_in_the_jobs_location() -> None:
    assert load_settings(good_env()).pipeline_kms_key is None
    assert load_settings(good_env(PIPELINE_KMS_KEY="")).pipeline_kms_key is None
    key = "projects/sec/locations/europe-west4/keyRings/r/cryptoKeys/k"
    assert load_settings(good_env(PIPELINE_KMS_KEY=key)).pipeline_kms_key == key
    with pytest.raises(ConfigError) as info:
        load_settings(good_env(PIPELINE_KMS_KEY=key.replace("europe-west4", "global")))
    assert str(info.value) == (
        "invalid configuration: PIPELINE_KMS_KEY="
        "'projects/sec/locations/global/keyRings/r/cryptoKeys/k': expected a Cloud KMS key "
        "projects/<p>/locations/europe-west4/keyRings/<ring>/cryptoKeys/<key> "
        "(in VERTEX_LOCATION europe-west4), or unset for Google-managed encryption"
    )


def test_load_settings_local_endpoints() -> None:
    settings = load_settings(
        good_env(PUBSUB_EMULATOR_HOST="localhost:8085", VERTEX_AI_ENDPOINT="http://127.0.0.1:9/")
    )
    assert settings.pubsub_endpoint == "http://localhost:8085" and settings.pubsub_anonymous
    assert settings.vertex_endpoint == "http://127.0.0.1:9" and settings.vertex_anonymous


TEMPLATE = "https://europe-west4-kfp.pkg.dev/test-project/p/t/v1"
DEEP: Any = []
for _ in range(70):
    DEEP = [DEEP]
DEEP = {"deep": DEEP}  # route parameters nested 70 levels deep
NAN = {"x": float("nan")}  # json.dumps writes NaN, which is not JSON
BAD_CONFIG = [
    ("WORKFLOW_NAME", "<unset>"),
    ("WORKFLOW_NAME", "Train Model"),
    ("GCP_PROJECT", ""),
    ("GCP_PROJECT", "My_Project"),
    ("VERTEX_LOCATION", "europe"),
    ("RESULTS_TOPIC", "results"),
    ("RESULTS_TOPIC", "projects/test-project/topics/goog-x"),
    ("DEAD_LETTER_TOPIC", "projects/test-project/subscriptions/x"),
    ("PIPELINE_ROOT", "s3://bucket/x"),
    ("PIPELINE_SERVICE_ACCOUNT", "pipeline"),
    ("ROUTES", "<unset>"),
    ("ROUTES", "{not json"),
    ("ROUTES", json.dumps({"model.train": {"template_uri": TEMPLATE}}).replace("}}", "}, }")),
    ("ROUTES", json.dumps({"model.train": {"template_uri": TEMPLATE, "parameters": NAN}})),
    ("ROUTES", json.dumps({"model.train": {"template_uri": TEMPLATE, "parameters": DEEP}})),
    ("ROUTES", "{}"),
    ("ROUTES", "[]"),
    (
        "ROUTES",
        '{"Model.Train": {"template_uri": "https://europe-west4-kfp.pkg.dev/test-project/p/t/v1"}}',
    ),
    ("ROUTES", '{"model.train": "https://europe-west4-kfp.pkg.dev/test-project/p/t/v1"}'),
    ("ROUTES", '{"model.train": {"template_uri": "http://example.com/t"}}'),
    ("ROUTES", '{"model.train": {"template_uri": "gs://bucket/pipeline.json"}}'),
    (
        "ROUTES",
        json.dumps({"model.train": {"template_uri": TEMPLATE, "params": {}}}),
    ),
    (
        "ROUTES",
        json.dumps({"model.train": {"template_uri": TEMPLATE, "parameters": []}}),
    ),
    (
        "ROUTES",
        json.dumps({"model.train": {"template_uri": TEMPLATE, "result_event_type": "a.b"}}),
    ),
    ("ROUTES", json.dumps({"model.train": {"template_uri": TEMPLATE, "on_success": "X"}})),
    ("ROUTES", json.dumps({"model.train": {"template_uri": TEMPLATE, "on_failure": None}})),
    ("ROUTES", json.dumps({"model.train": {"template_uri": TEMPLATE, "on_start": "a"}})),
    ("IGNORED_EVENT_TYPES", "workflow.failed"),
    ("IGNORED_EVENT_TYPES", '["Workflow.Failed"]'),
    ("IGNORED_EVENT_TYPES", '{"workflow.failed": 1}'),
    ("IGNORED_EVENT_TYPES", '["model.train"]'),
    ("MAX_EVENT_AGE_SECONDS", "0"),
    ("MAX_EVENT_AGE_SECONDS", "1h"),
    ("MAX_EVENT_AGE_SECONDS", "-5"),
    ("PUBSUB_EMULATOR_HOST", "http://localhost:8085"),
    ("VERTEX_AI_ENDPOINT", "europe-west4-aiplatform.googleapis.com"),
    ("VERTEX_AI_ENDPOINT", "https://host/v1"),
    ("OUTBOUND_TIMEOUT_SECONDS", "soon"),
    ("OUTBOUND_TIMEOUT_SECONDS", "0"),
    ("PIPELINE_KMS_KEY", "my-key"),
    ("PIPELINE_KMS_KEY", "projects/s/locations/us-east1/keyRings/r/cryptoKeys/k"),
    ("PIPELINE_KMS_KEY", "projects/s/locations/global/keyRings/r/cryptoKeys/k"),
]


@pytest.mark.parametrize(("variable", "value"), BAD_CONFIG)
def test_bad_configuration_names_variable_value_and_what_is_allowed(
    variable: str, value: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(good_env(**{variable: value}))
    error = info.value
    assert error.variable == variable
    assert error.allowed
    message = str(error)
    assert message.startswith(f"invalid configuration: {variable}=")
    assert ("<unset>" if value == "<unset>" else repr(value)[:40]) in message


def run_import_main(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import main; "
        "print(sorted(m for m in ('flask', 'requests', 'google.auth', 'werkzeug') "
        "if m in sys.modules))"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(FUNCTION_SOURCE.parent)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_import_main_is_light() -> None:
    """Cold start: `import main` loads none of flask, requests, google.auth (see
    tools/handler_import_time.py for the timing)."""
    result = run_import_main(good_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_bad_configuration_fails_at_import_with_one_log_line() -> None:
    result = run_import_main(good_env(ROUTES='{"model.train": {"template_uri": "ftp://x"}}'))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    entry = json.loads(line)
    assert entry["severity"] == "CRITICAL"
    assert entry["variable"] == "ROUTES"
    assert entry["value"] == '{"model.train": {"template_uri": "ftp://x"}}'
    assert "kfp.pkg.dev" in entry["allowed"]
    assert "ROUTES" in entry["message"]


# --- idempotency keys, labels that carry text exactly, pipeline job events -----------------------


def test_idempotency_key_is_part_of_the_event_contract() -> None:
    data = b'{"type": "a.b", "payload": {}, "idempotency_key": "K-1"}'
    event = events.decode_event(data)
    assert event.idempotency_key == "K-1"
    assert events.decode_event(events.encode_event(event)) == event
    assert events.event_attributes(event)["idempotency_key"] == "K-1"
    for bad in ('""', '"' + "k" * 129 + '"', "7", '"a\\nb"'):
        data = b'{"type": "a.b", "payload": {}, "idempotency_key": %s}' % bad.encode()
        with pytest.raises(PermanentError) as info:
            events.decode_event(data)
        assert info.value.code == "schema_violation"
    with pytest.raises(PermanentError):
        events.check_attributes_agree(event, {"idempotency_key": "K-2"})


def test_a_keyed_job_id_depends_on_the_key_and_type_only() -> None:
    event = Event("a.b", {}, None, "key-1")
    first = events.job_id_for("wf", "111", event)
    assert first == events.job_id_for("wf", "222", event)  # a re-published copy: same job
    assert first.startswith("wf-k") and events.PIPELINE_JOB_ID_RE.match(first)
    assert first != events.job_id_for("wf", "111", Event("a.b", {}, None, "key-2"))
    assert first != events.job_id_for("wf", "111", Event("a.c", {}, None, "key-1"))
    assert first != events.job_id_for("other", "111", event)
    assert events.job_id_for("wf", "111", Event("a.b", {})) == "wf-111"


@pytest.mark.parametrize("message_id", ["1", "12345678901234567", "1" * 41, "abc", "ü/x"])
def test_every_job_id_form_matches_its_workflows_pattern_only(message_id: str) -> None:
    from workflow_handler import contract

    for job_id in (
        events.pipeline_job_id("train", message_id),
        events.keyed_pipeline_job_id("train", "a.b", message_id),
    ):
        assert events.is_own_pipeline_job("train", job_id)
        assert re.fullmatch(contract.pipeline_job_id_pattern("train"), job_id)
        assert not events.is_own_pipeline_job("train-eu", job_id)
        assert not events.is_own_pipeline_job("trai", job_id)
    assert not events.is_own_pipeline_job("train", events.pipeline_job_id("train-eu", "1"))


@pytest.mark.parametrize(
    "text",
    ["order-42", "Order-42/A", "x" * 128, "ünï €", "a_b-c", "9" * 63, "9" * 64, "\ud800x"],
)
def test_text_labels_carry_any_text_exactly_within_the_label_rules(text: str) -> None:
    labels = events.text_labels("correlation_id", text)
    assert events.label_text("correlation_id", labels) == text
    assert len(labels) <= 1 + 14
    for key, value in labels.items():
        assert re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", key)
        assert re.fullmatch(r"[a-z0-9_-]{0,63}", value)


def test_text_labels_keep_label_safe_text_readable() -> None:
    assert events.text_labels("correlation_id", "order-42") == {"correlation_id": "order-42"}
    assert events.event_type_labels("model.train") == {"event_type": "model-train"}
    assert events.label_event_type({"event_type": "model-train"}) == "model.train"
    long_type = "a." + "b" * 126
    assert events.label_event_type(events.event_type_labels(long_type)) == long_type
    assert events.label_text("x", {}) is None
    assert events.label_text("x", {"x": "Not Safe"}) is None
    assert events.label_text("x", {"x_x0": "!!"}) is None


EXAMPLE_ENTRY = json.loads(
    (FUNCTION_SOURCE.parents[1] / "docs" / "examples" / "pipeline-job-event.json").read_text()
)


def test_the_documented_log_entry_is_a_pipeline_job_event() -> None:
    assert events.is_log_entry(EXAMPLE_ENTRY)
    signal = events.parse_pipeline_job_event(EXAMPLE_ENTRY)
    assert signal == events.PipelineJobSignal(
        job_id="ingest-4182739012345678",
        location="europe-west4",
        project="acme-ai-dev",
        claimed_state="PIPELINE_STATE_SUCCEEDED",
    )
    assert events.is_own_pipeline_job("ingest", signal.job_id)


def _entry(**changes: Any) -> dict[str, Any]:
    entry = json.loads(json.dumps(EXAMPLE_ENTRY))
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = entry
        for parent in parents:
            node = node[parent]
        if value is None:
            del node[leaf]
        else:
            node[leaf] = value
    return entry


def test_the_entry_is_only_a_signal_missing_hints_are_fine() -> None:
    entry = _entry(jsonPayload=None, logName=None, resource__type=None, labels=None)
    signal = events.parse_pipeline_job_event(entry)
    assert signal.job_id == "ingest-4182739012345678" and signal.claimed_state is None


@pytest.mark.parametrize(
    "entry",
    [
        [1],
        _entry(resource=None),
        _entry(resource__labels=None),
        _entry(resource__labels__pipeline_job_id=None),
        _entry(resource__labels__pipeline_job_id="Not_An_Id"),
        _entry(resource__type="cloud_run_revision"),
        _entry(
            logName="projects/acme-ai-dev/logs/aiplatform.googleapis.com%2Fpipeline_job_task_events"
        ),
    ],
)
def test_bad_pipeline_job_events_are_permanent(entry: Any) -> None:
    with pytest.raises(PermanentError) as info:
        events.parse_pipeline_job_event(entry)
    assert info.value.code == "bad_pipeline_event"


def test_the_outcome_key_names_the_job_and_the_outcome() -> None:
    key = events.outcome_key("projects/1/locations/l/pipelineJobs/j", "succeeded")
    assert key == events.outcome_key("projects/1/locations/l/pipelineJobs/j", "succeeded")
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    assert key != events.outcome_key("projects/1/locations/l/pipelineJobs/j", "failed")
    assert key != events.outcome_key("projects/1/locations/l/pipelineJobs/k", "succeeded")


def _job(**extra: Any) -> dict[str, Any]:
    return {
        "name": "projects/1/locations/l/pipelineJobs/w-1",
        "state": "PIPELINE_STATE_SUCCEEDED",
        "labels": {"workflow": "w", "event_type": "a-b", "correlation_id": "c"},
        "runtimeConfig": {"gcsOutputDirectory": "gs://b/w", "parameterValues": {"n": 1}},
        **extra,
    }


def test_outputs_come_from_the_root_task_when_the_job_exposes_them() -> None:
    detail = {
        "taskDetails": [
            {"taskId": "2", "parentTaskId": "1", "outputs": {"x": {"artifacts": [{"uri": "u"}]}}},
            {
                "taskId": "1",
                "outputs": {"model": {"artifacts": [{"uri": "gs://b/w/model"}, {"no": "uri"}]}},
                "execution": {"metadata": {"output:accuracy": 0.93, "input:n": 1}},
            },
        ]
    }
    view = events.job_view(_job(jobDetail=detail))
    assert view is not None
    assert view.outputs == {
        "artifacts": {"model": ["gs://b/w/model"]},
        "parameters": {"accuracy": 0.93},
    }
    assert events.job_view(_job()).outputs == {}  # type: ignore[union-attr]
    assert events.job_view({"state": "x"}) is None


def test_outputs_too_large_for_an_event_are_left_out_and_said_so() -> None:
    big = {"taskDetails": [{"execution": {"metadata": {"output:blob": "x" * 300_000}}}]}
    view = events.job_view(_job(jobDetail=big))
    assert view is not None
    event = events.outcome_event(
        "a.done", "w", view, "succeeded", source_event_type="a.b", correlation_id="c",
        source_idempotency_key=None,
    )  # fmt: skip
    assert "outputs" not in event.payload and event.payload["outputs_omitted"] is True

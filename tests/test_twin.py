"""The twin's parts, without bringing one up: reading the stack and resolving its references,
sink filters, the Vertex AI stand-in running jobs, the command line's one-line errors, and
tools/publish.py finding a running twin. End to end: tests/test_twin_e2e.py."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from environments import ROOT

TOOLS = ROOT / "tools"
if str(TOOLS) not in sys.path:
    sys.path.append(str(TOOLS))

from local_standins import (  # noqa: E402
    JobRunner,
    OutcomeRule,
    PubSubStandIn,
    VertexStandIn,
    pipeline_job_log_entry,
)
from twin.logfilter import FilterError, compile_filter, matches  # noqa: E402
from twin.stack import Address, Stack, StackError, parse_reference  # noqa: E402
from twin.state import start_time, write_state  # noqa: E402

EXAMPLE_ENTRY = json.loads((ROOT / "docs" / "examples" / "pipeline-job-event.json").read_text())
TWIN = [sys.executable, str(TOOLS / "twin")]


def twin_command(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TWIN, *args], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT
    )


def one_line_error(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    (line,) = result.stderr.splitlines()
    assert line.startswith("twin: error: ")
    return line


@pytest.fixture(scope="module")
def dev_stack(synth_outdir: Path) -> Stack:
    stack = Stack.load(synth_outdir / "stacks" / "dev" / "cdk.tf.json")
    for name in stack.resources("google_cloudfunctions2_function"):
        stack.function_urls[name] = f"http://127.0.0.1:9/{name}/"
    return stack


@pytest.fixture(scope="module")
def prod_stack(synth_outdir: Path) -> Stack:
    stack = Stack.load(synth_outdir / "stacks" / "prod" / "cdk.tf.json")
    for name in stack.resources("google_cloudfunctions2_function"):
        stack.function_urls[name] = f"http://127.0.0.1:9/{name}/"
    return stack


# --- the stack ----------------------------------------------------------------------------------


def test_functions_get_their_environment_from_the_json_with_references_resolved(
    dev_stack: Stack,
) -> None:
    functions = {f.workflow: f for f in dev_stack.functions()}
    assert set(functions) == {"ingest", "train", "batch-predict"}
    env = functions["train"].environment
    assert env["RESULTS_TOPIC"] == "projects/acme-ai-dev/topics/train-results"
    assert env["DEAD_LETTER_TOPIC"] == "projects/acme-ai-dev/topics/train-dead-letter"
    assert env["PIPELINE_ROOT"] == "gs://acme-ai-dev-pipeline-root/train"
    assert env["PIPELINE_SERVICE_ACCOUNT"] == "train-pipe@acme-ai-dev.iam.gserviceaccount.com"
    assert env["GCP_PROJECT"] == "acme-ai-dev"
    for function in functions.values():
        assert not any("${" in value for value in function.environment.values())
        assert function.entry_point == "handler"
        assert function.source_zip is not None and function.source_zip.is_file()
        assert function.threads == 3  # max 3 instances x 1 request each


def test_secrets_become_placeholders(prod_stack: Stack) -> None:
    (predict,) = [f for f in prod_stack.functions() if f.workflow == "batch-predict"]
    assert predict.secrets == {"SCORING_API_KEY": "twin-secret:acme-ai-prod/scoring-api-key/latest"}


def test_subscriptions_are_created_as_declared_with_local_push_endpoints(
    dev_stack: Stack,
) -> None:
    subscriptions = {s.name: s.rest_body() for s in dev_stack.subscriptions()}
    push = subscriptions["train-push"]
    assert push == {
        "topic": "projects/acme-ai-dev/topics/ingest-results",
        "ackDeadlineSeconds": 20,
        "messageRetentionDuration": "604800s",
        "retainAckedMessages": False,
        "labels": push["labels"],
        "expirationPolicy": {},
        "pushConfig": {
            "pushEndpoint": "http://127.0.0.1:9/train_function/",
            "oidcToken": {
                "serviceAccountEmail": "train-push@acme-ai-dev.iam.gserviceaccount.com",
                "audience": "http://127.0.0.1:9/train_function/",
            },
        },
        "retryPolicy": {"minimumBackoff": "10s", "maximumBackoff": "600s"},
        "deadLetterPolicy": {
            "deadLetterTopic": "projects/acme-ai-dev/topics/train-dead-letter",
            "maxDeliveryAttempts": 5,
        },
    }
    assert push["labels"]["workflow"] == "train"
    pull = subscriptions["train-dead-letter-pull"]
    assert "pushConfig" not in pull and pull["ackDeadlineSeconds"] == 60


def test_topics_keep_labels_and_retention_and_drop_cmek(prod_stack: Stack) -> None:
    topics = {t.path: t for t in prod_stack.topics()}
    topic = topics["projects/acme-ai-prod/topics/ingest-trigger"]
    assert topic.kms_key_name  # declared ...
    assert topic.rest_body() == {  # ... but not emulated
        "labels": topic.labels,
        "messageRetentionDuration": "604800s",
    }


def test_sinks_publish_to_their_resolved_topic(dev_stack: Stack) -> None:
    sinks = dev_stack.sinks()
    if not sinks:
        pytest.skip("completion events not synthesized yet: no google_logging_project_sink")
    for sink in sinks:
        workflow = sink.name.removesuffix("-pipeline-events")
        assert sink.topic == f"projects/acme-ai-dev/topics/{workflow}-pipeline-events"
        compile_filter(sink.filter)  # the twin can evaluate it


def test_references_the_twin_cannot_resolve_are_one_line_errors(tmp_path: Path) -> None:
    doc = {
        "provider": {"google": [{"project": "acme-ai-test", "region": "europe-west4"}]},
        "resource": {
            "google_pubsub_topic": {
                "a": {"name": "a-topic", "labels": {"x": "${google_thing.b.secret_sauce}"}},
                "c": {"name": "${upper(var.x)}"},
                "d": {"name": "d-$${literal}"},
            }
        },
    }
    path = tmp_path / "cdk.tf.json"
    path.write_text(json.dumps(doc))
    stack = Stack.load(path)
    with pytest.raises(StackError, match=r"google_thing\.b: referenced, but the stack does not"):
        stack.resolve(stack.body(Address("google_pubsub_topic", "a"))["labels"], "labels")
    with pytest.raises(StackError, match="plain resource references only"):
        stack.attribute(Address("google_pubsub_topic", "c"), ["id"])
    assert stack.attribute(Address("google_pubsub_topic", "d"), ["id"]) == (
        "projects/acme-ai-test/topics/d-${literal}"
    )
    assert parse_reference("google_x.y.service_config[0].uri") == (
        Address("google_x", "y"),
        ["service_config", 0, "uri"],
    )
    result = twin_command("up", "--stack", str(path), "--twin-dir", str(tmp_path / "t"))
    line = one_line_error(result)
    assert "google_thing.b: referenced, but the stack does not declare it" in line


# --- sink filters ---------------------------------------------------------------------------------


FILTER = (
    'logName="projects/p/logs/aiplatform.googleapis.com%2Fpipeline_job_events"\n'
    'AND resource.labels.pipeline_job_id=~"^ingest-(?:[0-9]{1,40}|[hk][0-9a-f]{40})$"\n'
    'AND jsonPayload.state=("PIPELINE_STATE_SUCCEEDED" OR "PIPELINE_STATE_FAILED")'
)


def entry(job_id: str = "ingest-42", state: str = "PIPELINE_STATE_SUCCEEDED") -> dict[str, Any]:
    found = copy.deepcopy(EXAMPLE_ENTRY)
    found["logName"] = "projects/p/logs/aiplatform.googleapis.com%2Fpipeline_job_events"
    found["resource"]["labels"]["pipeline_job_id"] = job_id
    found["jsonPayload"]["state"] = state
    return found


@pytest.mark.parametrize(
    ("text", "log_entry", "expected"),
    [
        (FILTER, entry(), True),
        (FILTER, entry(state="PIPELINE_STATE_FAILED"), True),
        (FILTER, entry(state="PIPELINE_STATE_RUNNING"), False),
        (FILTER, entry(job_id="ingest-eu-42"), False),
        (FILTER, entry(job_id="train-42"), False),
        (FILTER, entry(job_id="ingest-k" + "a" * 40), True),
        ("severity>=WARNING", {"severity": "ERROR"}, True),
        ("severity>=WARNING", {"severity": "INFO"}, False),
        ("a=1 OR b=2 c=3", {"a": 1, "c": 3}, True),  # OR binds tighter than (implicit) AND
        ("a=1 OR b=2 c=3", {"a": 1}, False),
        ("NOT a=1", {}, True),
        ("-labels.x:*", {"labels": {"x": "y"}}, False),
        ('labels.x:"FOO"', {"labels": {"x": "a-foo-b"}}, True),
        ('labels.x!="y"', {"labels": {"x": "z"}}, True),
        ("", {"anything": 1}, True),
    ],
)
def test_sink_filters(text: str, log_entry: dict[str, Any], expected: bool) -> None:
    assert matches(text, log_entry) is expected


@pytest.mark.parametrize("text", ["sample(insertId, 0.1)", "plain words", "a=(b", 'a=~"("'])
def test_filters_beyond_the_twin_are_errors(text: str) -> None:
    with pytest.raises(FilterError):
        compile_filter(text)


# --- the Vertex AI stand-in runs jobs ----------------------------------------------------------

BASE = "/v1/projects/acme-ai-test/locations/europe-west4/pipelineJobs"


def job_body(template: str = "https://europe-west4-kfp.pkg.dev/p/r/train-model/v1",
             **labels: str) -> dict[str, Any]:  # fmt: skip
    return {
        "displayName": "train model.train 1",
        "templateUri": template,
        "runtimeConfig": {"gcsOutputDirectory": "gs://b/train", "parameterValues": {"e": 1}},
        "serviceAccount": "train-pipe@acme-ai-test.iam.gserviceaccount.com",
        "labels": {"workflow": "train", **labels},
    }


def create(vertex: VertexStandIn, job_id: str, **body: Any) -> requests.Response:
    return requests.post(
        f"{vertex.url}{BASE}?pipelineJobId={job_id}", json=job_body(**body), timeout=5
    )


def wait_until(probe: Any, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def runner_vertex() -> Any:
    emitted: list[dict[str, Any]] = []
    runner = JobRunner(
        delay=0.05,
        rules=[
            OutcomeRule(outcome="FAILED", template="/broken-model/"),
            OutcomeRule(outcome="CANCELLED", label="correlation_id=stop-me", delay=0.01),
        ],
    )
    vertex = VertexStandIn(runner=runner, emit=emitted.append).start()
    try:
        yield vertex, emitted
    finally:
        vertex.stop()


def test_jobs_run_to_their_outcome_and_emit_each_state_change(runner_vertex: Any) -> None:
    vertex, emitted = runner_vertex
    assert create(vertex, "train-1").json()["state"] == "PIPELINE_STATE_PENDING"
    create(vertex, "train-2", template="https://europe-west4-kfp.pkg.dev/p/r/broken-model/v1")
    create(vertex, "train-3", correlation_id="stop-me")
    wait_until(lambda: len(emitted) == 6 and not vertex.busy())

    def state(job_id: str) -> Any:
        return requests.get(f"{vertex.url}{BASE}/{job_id}", timeout=5).json()

    assert [state(j)["state"] for j in ("train-1", "train-2", "train-3")] == [
        "PIPELINE_STATE_SUCCEEDED",
        "PIPELINE_STATE_FAILED",
        "PIPELINE_STATE_CANCELLED",
    ]
    job = state("train-1")
    assert job["labels"] == {"workflow": "train"}
    assert job["runtimeConfig"]["parameterValues"] == {"e": 1}
    assert job["createTime"] <= job["startTime"] <= job["endTime"]
    assert state("train-2")["error"]["code"] == 9
    by_job: dict[str, list[str]] = {}
    for log_entry in emitted:
        job_id = log_entry["resource"]["labels"]["pipeline_job_id"]
        by_job.setdefault(job_id, []).append(log_entry["jsonPayload"]["state"])
    assert by_job["train-1"] == ["PIPELINE_STATE_RUNNING", "PIPELINE_STATE_SUCCEEDED"]
    # Idempotent on pipelineJobId, as the real API: 409 ALREADY_EXISTS.
    again = create(vertex, "train-1")
    assert again.status_code == 409
    assert again.json()["error"]["status"] == "ALREADY_EXISTS"


def test_log_entries_have_the_documented_shape(runner_vertex: Any) -> None:
    vertex, emitted = runner_vertex
    create(vertex, "train-7")
    wait_until(lambda: len(emitted) == 2)

    def shape(value: Any, at: str = "") -> set[str]:
        if isinstance(value, dict):
            return {p for k, v in value.items() for p in shape(v, f"{at}.{k}")} | {at}
        return {at}

    log_entry = emitted[-1]
    assert shape(log_entry) == shape(EXAMPLE_ENTRY)
    assert log_entry["logName"] == (
        "projects/acme-ai-test/logs/aiplatform.googleapis.com%2Fpipeline_job_events"
    )
    assert log_entry["resource"] == {
        "type": "aiplatform.googleapis.com/PipelineJob",
        "labels": {
            "location": "europe-west4",
            "pipeline_job_id": "train-7",
            "resource_container": "acme-ai-test",
        },
    }
    assert log_entry["labels"]["pipeline_name"] == "train-model"
    assert log_entry["jsonPayload"]["state"] == "PIPELINE_STATE_SUCCEEDED"


def test_the_control_api_configures_emits_again_and_fails_every_call(
    runner_vertex: Any,
) -> None:
    vertex, emitted = runner_vertex
    control = f"{vertex.url}/_twin"
    config = requests.post(f"{control}/config", json={"outcome": "failed"}, timeout=5).json()
    assert config["runner"]["outcome"] == "FAILED" and len(config["runner"]["rules"]) == 2
    create(vertex, "train-8")
    wait_until(lambda: len(emitted) == 2 and not vertex.busy())
    assert emitted[-1]["jsonPayload"]["state"] == "PIPELINE_STATE_FAILED"
    requests.post(f"{control}/emit", json={"job_id": "train-8", "times": 3}, timeout=5)
    wait_until(lambda: len(emitted) == 5)
    assert emitted[2:] == [emitted[1]] * 3

    requests.post(f"{control}/config", json={"unavailable": 503}, timeout=5)
    assert create(vertex, "train-9").status_code == 503
    assert requests.get(f"{vertex.url}{BASE}/train-8", timeout=5).status_code == 503
    assert requests.get(f"{control}/stats", timeout=5).json()["jobs"] == 1  # control still works
    requests.post(f"{control}/config", json={"unavailable": None}, timeout=5)
    assert create(vertex, "train-9").status_code == 200
    jobs = requests.get(f"{control}/jobs", timeout=5).json()["jobs"]
    assert [j["name"].rsplit("/", 1)[1] for j in jobs] == ["train-8", "train-9"]
    bad = requests.post(f"{control}/config", json={"outcome": "MAYBE"}, timeout=5)
    assert bad.status_code == 400


def test_without_a_runner_jobs_stay_as_created() -> None:
    vertex = VertexStandIn().start()
    try:
        create(vertex, "train-1")
        time.sleep(0.1)
        assert vertex.jobs["train-1"]["state"] == "PIPELINE_STATE_PENDING"
        assert vertex.log_entries == [] and not vertex.busy()
    finally:
        vertex.stop()


@pytest.mark.parametrize(
    ("spec", "rule"),
    [
        ("label.workflow=train:FAILED", OutcomeRule(outcome="FAILED", label="workflow=train")),
        (
            "template=https://europe-west4-kfp.pkg.dev/p/r/x/v1:cancelled",
            OutcomeRule(outcome="CANCELLED", template="https://europe-west4-kfp.pkg.dev/p/r/x/v1"),
        ),
    ],
)
def test_outcome_rules_parse(spec: str, rule: OutcomeRule) -> None:
    assert OutcomeRule.parse(spec) == rule


def test_the_log_entry_of_a_job() -> None:
    job = {
        "name": "projects/1/locations/europe-west4/pipelineJobs/ingest-5",
        "state": "PIPELINE_STATE_SUCCEEDED",
        "templateUri": "https://europe-west4-kfp.pkg.dev/acme/pipelines/prepare-data/latest",
        "serviceAccount": "ingest-pipe@acme.iam.gserviceaccount.com",
    }
    log_entry = pipeline_job_log_entry(job, "acme-ai-dev", "europe-west4", when=0)
    assert log_entry["timestamp"] == "1970-01-01T00:00:00.000000Z"
    assert log_entry["labels"]["template_uri"] == job["templateUri"]
    assert log_entry["jsonPayload"]["pipelineName"] == "prepare-data"


# --- the command line -----------------------------------------------------------------------------


def without_java_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(Path(sys.executable).parent)  # no java there
    return env


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ("emulator", ["google-cloud-cli-pubsub-emulator"]),
        ("java", ["openjdk-17-jre-headless"]),
        ("both", ["google-cloud-cli-pubsub-emulator", "openjdk-17-jre-headless"]),
    ],
)
def test_a_missing_emulator_or_java_is_one_line_naming_what_to_install(
    tmp_path: Path, missing: str, named: list[str]
) -> None:
    env = without_java_env() if missing in ("java", "both") else dict(os.environ)
    if missing in ("emulator", "both"):
        env["TWIN_PUBSUB_EMULATOR"] = str(tmp_path / "no-such-launcher")
    result = twin_command("up", "--env", "dev", "--twin-dir", str(tmp_path), env=env)
    line = one_line_error(result)
    for package in named:
        assert package in line
    assert "apt-get install" in line
    assert not (tmp_path / "dev").exists()  # nothing was started


def test_a_missing_stack_is_one_line(tmp_path: Path) -> None:
    result = twin_command("up", "--stack", str(tmp_path / "cdk.tf.json"))
    assert "no such file" in one_line_error(result)


def test_bad_arguments_are_one_line(tmp_path: Path) -> None:
    for args in (["up", "--rule", "workflow=train"], ["up", "--outcome", "MAYBE"], ["sideways"]):
        one_line_error(twin_command(*args, "--twin-dir", str(tmp_path)) if args[0] == "up" else
                       twin_command(*args))  # fmt: skip


def test_down_and_status_when_nothing_is_up(tmp_path: Path) -> None:
    down = twin_command("down", "--env", "qa", "--twin-dir", str(tmp_path))
    assert down.returncode == 0
    assert down.stdout.startswith("[twin] qa is not up")
    status = twin_command("status", "--env", "qa", "--twin-dir", str(tmp_path))
    assert "qa is not up" in one_line_error(status, 1)


def test_make_up_synthesizes_first_and_make_down_stops() -> None:
    def dry_run(*args: str) -> str:
        return subprocess.run(
            ["make", "--no-print-directory", "-n", *args],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip

    up = dry_run("up", "ENV=qa", "DELAY=0.5", "OUTCOMES=label.workflow=train:FAILED")
    assert up.index('main.py --env "qa"') < up.index("tools/twin up --env")
    assert '--delay "0.5"' in up and '--rules "label.workflow=train:FAILED"' in up
    assert 'tools/twin down --env "qa"' in dry_run("down", "ENV=qa")


# --- make publish finds a running twin ------------------------------------------------------------


def test_publish_uses_a_running_twin_of_the_topics_project(tmp_path: Path) -> None:
    """A state.json whose supervisor is alive (here: this test) sends tools/publish.py to that
    twin's emulator (here: the Pub/Sub stand-in); PUBSUB_EMULATOR_HOST still wins; a twin
    that is gone is ignored."""
    pubsub = PubSubStandIn().start()
    try:
        directory = tmp_path / "dev"
        directory.mkdir()
        state = {
            "env": "dev",
            "project": "acme-ai-dev",
            "ready": True,
            "supervisor": {"pid": os.getpid(), "start": start_time(os.getpid())},
            "emulator": {"host": pubsub.host_port},
        }
        write_state(directory, state)
        env = {k: v for k, v in os.environ.items() if k != "PUBSUB_EMULATOR_HOST"}
        env["AI_WORKFLOW_TWIN_DIR"] = str(tmp_path)
        topic = "projects/acme-ai-dev/topics/ingest-trigger"
        command = [sys.executable, str(TOOLS / "publish.py"), "--topic", topic,
                   "--type", "data.ready", "--data", "{}"]  # fmt: skip
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert f"PUBSUB_EMULATOR_HOST={pubsub.host_port}" in result.stderr
        assert len(pubsub.messages(topic)) == 1

        other = subprocess.run(
            [*command[:3], "projects/acme-ai-prod/topics/ingest-trigger", *command[4:]],
            env={**env, "PUBSUB_EMULATOR_HOST": "127.0.0.1:9"},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert "127.0.0.1:9" in other.stderr and other.returncode == 1

        write_state(directory, {**state, "supervisor": {"pid": os.getpid(), "start": "0"}})
        isolated = {k: v for k, v in env.items() if not k.startswith(("GOOGLE_", "CLOUDSDK_"))}
        isolated.update(CLOUDSDK_CONFIG=str(tmp_path), HOME=str(tmp_path), NO_GCE_CHECK="True")
        gone = subprocess.run(command, env=isolated, capture_output=True, text=True, timeout=60)
        assert gone.returncode == 1 and "no Google credentials" in gone.stderr  # real Pub/Sub
        assert len(pubsub.messages(topic)) == 1
    finally:
        pubsub.stop()

"""End to end against the twin (`make up`): Google's real Pub/Sub emulator, the real Functions
Framework serving the synthesized function source, the Vertex AI stand-in running the jobs, all
built from the synthesized cdk.tf.json (tools/twin).

Each class brings one twin up on free ports in a tmp folder and always takes it down:
- TestDev: the tests' dev stack (tests/fixtures/config/dev.toml): one job per trigger, a
  poison message, redelivered triggers; and, once the stack has log sinks, the chain on
  outcomes: causal order, correlation id, failure, duplicates at every stage;
- TestTransientFailure: a one-workflow stack with a 1-2 s backoff and 5 attempts, Vertex AI
  answering 503 every time: the emulator's own dead-letter policy takes the message;
- TestTwentyWorkflowChain: 20 chained workflows in one environment.
"""

from __future__ import annotations

import datetime
import itertools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from environments import ROOT

# The twin is one of the project's tools (tests import tools, never the reverse). Appended, so
# that a tool's module name never shadows anything else.
TOOLS = ROOT / "tools"
if str(TOOLS) not in sys.path:
    sys.path.append(str(TOOLS))

from twin.client import Message, TwinClient  # noqa: E402
from twin.stack import Stack  # noqa: E402
from twin_stacks import start_twin, synthesized  # noqa: E402

JOB_DELAY = "0.3"  # seconds each pipeline job "runs" in the stand-in


def stack_has_sinks() -> bool:
    """The dev stack routes job outcomes (completion events are synthesized)."""
    return bool(Stack.load(synthesized("dev")).resources("google_logging_project_sink"))


# Evaluated when each test is set up (a string condition), so collecting the suite synthesizes
# nothing.
needs_completion_events = pytest.mark.skipif(
    "not stack_has_sinks()",
    reason="completion events not synthesized yet: the stack has no google_logging_project_sink",
)


def unique(prefix: str) -> str:
    """A correlation id that is also a valid label value (lowercase, [a-z0-9-])."""
    return f"{prefix}-{secrets.token_hex(4)}"


def only(items: list[Any]) -> Any:
    assert len(items) == 1, items
    return items[0]


def routes(stack: Path) -> dict[str, dict[str, Any]]:
    """Each workflow's ROUTES, as the JSON gives its function."""
    return {f.workflow: json.loads(f.environment["ROUTES"]) for f in Stack.load(stack).functions()}


def moment(timestamp: str) -> datetime.datetime:
    """An RFC 3339 UTC timestamp with 0 to 9 fractional digits (the emulator writes 3, the
    stand-in 6)."""
    whole, _, fraction = timestamp.rstrip("Z").partition(".")
    moment = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.UTC)
    return moment + datetime.timedelta(microseconds=int((fraction + "000000")[:6]))


MILLISECOND = datetime.timedelta(milliseconds=1)  # the emulator's publishTime is cut to ms


def events_with(tap_messages: list[Message], correlation_id: str) -> list[Message]:
    return [m for m in tap_messages if m.json.get("correlation_id") == correlation_id]


# --- the dev stack --------------------------------------------------------------------------------


@pytest.fixture(scope="class")
def dev_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwinClient]:
    """The dev stack's twin, shared by TestDev's tests (jobs run JOB_DELAY seconds)."""
    directory = tmp_path_factory.mktemp("twin")
    with start_twin(directory, synthesized("dev"), "--delay", JOB_DELAY) as twin:
        yield twin


class TestDev:
    @pytest.fixture
    def twin(self, dev_twin: TwinClient) -> TwinClient:
        return dev_twin

    @pytest.fixture(autouse=True)
    def _fresh(self, twin: TwinClient) -> None:
        """Every test starts from jobs that succeed, and from a twin at rest."""
        twin.configure_vertex(
            outcome="SUCCEEDED", delay=float(JOB_DELAY), rules=[], unavailable=None
        )
        twin.settle(quiet=0.5)

    # --- with any handler: what a trigger does ---------------------------------------------------

    def test_one_data_ready_gives_exactly_one_ingest_job(self, twin: TwinClient) -> None:
        correlation_id = unique("one")
        message_id = twin.publish_event("ingest-trigger", "data.ready", {}, correlation_id)
        twin.wait_for(
            lambda: twin.jobs(workflow="ingest", correlation_id=correlation_id),
            what="the ingest job",
        )
        twin.settle()

        job = only(twin.jobs(workflow="ingest", correlation_id=correlation_id))
        assert job["name"].endswith(f"/pipelineJobs/ingest-{message_id}")
        # The function's environment came from the JSON, references resolved.
        assert job["runtimeConfig"]["gcsOutputDirectory"] == "gs://acme-ai-dev-pipeline-root/ingest"
        assert job["serviceAccount"] == "ingest-pipe@acme-ai-dev.iam.gserviceaccount.com"
        assert (
            job["templateUri"] == routes(synthesized("dev"))["ingest"]["data.ready"]["template_uri"]
        )
        assert job["labels"]["event_type"] == "data-ready"

    def test_poison_message_is_dead_lettered_by_the_handler_after_one_delivery(
        self, twin: TwinClient
    ) -> None:
        probe = unique("poison")
        data = b'{"type": "data.ready", "payload": {'  # not JSON: cut short
        message_id = twin.publish("ingest-trigger", data, {"probe": probe})
        mailbox = twin.mailbox("ingest-dead-letter-pull")  # the stack's own subscription
        dead = twin.wait_for(
            lambda: [m for m in mailbox.pull() if m.attributes.get("probe") == probe],
            what="the poison message on ingest-dead-letter",
        )
        twin.settle()

        message = only(dead)
        assert message.data == data
        assert message.attributes["error"] == "bad_json"
        assert message.attributes["source_message_id"] == message_id
        assert message.attributes["source_subscription"].endswith("/subscriptions/ingest-push")
        # The handler sent it, after one delivery: not the emulator's dead-letter policy.
        assert not any(k.startswith("CloudPubSubDeadLetter") for k in message.attributes)
        deliveries = [
            line for line in twin.function_log("ingest") if line.get("message_id") == message_id
        ]
        assert [line["outcome"] for line in deliveries] == ["dead_lettered"]
        assert twin.jobs(workflow="ingest", correlation_id=probe) == []

    def test_a_trigger_delivered_10_times_gives_one_job(self, twin: TwinClient) -> None:
        correlation_id = unique("redelivered")
        event = {"type": "data.ready", "payload": {}, "correlation_id": correlation_id}
        attributes = {"event_type": "data.ready", "correlation_id": correlation_id}
        data = json.dumps(event).encode()
        message_id = twin.publish("ingest-trigger", data, attributes)  # delivery 1: the emulator
        twin.wait_for(
            lambda: twin.jobs(workflow="ingest", correlation_id=correlation_id),
            what="the ingest job",
        )
        # Deliveries 2-10: the same message again, as Pub/Sub's at-least-once push may deliver
        # it: 4 one after the other, then 5 at once.
        envelope = twin.envelope("ingest-push", data, attributes, message_id)
        answers = [twin.push("ingest", envelope) for _ in range(4)]
        threads = [
            threading.Thread(target=lambda: answers.append(twin.push("ingest", envelope)))
            for _ in range(5)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        twin.settle()

        assert [a.status_code for a in answers] == [200] * 9, [a.text for a in answers]
        assert only(twin.jobs(workflow="ingest", correlation_id=correlation_id))
        deliveries = [
            line for line in twin.function_log("ingest") if line.get("message_id") == message_id
        ]
        assert len(deliveries) == 10

    def test_make_publish_reaches_the_twin(self, twin: TwinClient) -> None:
        """`make publish` (tools/publish.py) finds a running twin of the topic's project."""
        correlation_id = unique("published")
        env = {k: v for k, v in os.environ.items() if k != "PUBSUB_EMULATOR_HOST"}
        env["AI_WORKFLOW_TWIN_DIR"] = str(twin.state.directory.parent)
        result = subprocess.run(
            ["make", "--no-print-directory", "publish",
             "TOPIC=projects/acme-ai-dev/topics/ingest-trigger", "EVENT=data.ready", "DATA={}",
             f"CORRELATION_ID={correlation_id}"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert f"PUBSUB_EMULATOR_HOST={twin.state.emulator_host}" in result.stderr
        assert "published data.ready to projects/acme-ai-dev/topics/ingest-trigger" in result.stdout
        twin.wait_for(
            lambda: twin.jobs(workflow="ingest", correlation_id=correlation_id),
            what="the ingest job of the published event",
        )

    # --- completion events: the chain fires on outcomes ------------------------------------------

    CHAIN = ("ingest", "train", "batch-predict")

    def run_chain(self, twin: TwinClient, correlation_id: str) -> dict[str, Any]:
        """Publish data.ready; wait until batch-predict's outcome event is out and all is
        still. Returns the taps on the three results topics."""
        taps = {workflow: twin.tap(f"{workflow}-results") for workflow in self.CHAIN}
        twin.publish_event("ingest-trigger", "data.ready", {}, correlation_id)
        twin.wait_for(
            lambda: events_with(taps["batch-predict"].pull(), correlation_id),
            timeout=60,
            what="batch-predict's outcome event",
        )
        twin.settle()
        return taps

    @needs_completion_events
    def test_chain_runs_each_stage_once_on_success_in_causal_order(self, twin: TwinClient) -> None:
        correlation_id = unique("chain")
        taps = self.run_chain(twin, correlation_id)
        stages = routes(synthesized("dev"))

        jobs = {w: only(twin.jobs(workflow=w, correlation_id=correlation_id)) for w in self.CHAIN}
        events = {w: only(events_with(taps[w].pull(), correlation_id)) for w in self.CHAIN}
        trigger = {"ingest": "data.ready", "train": "model.train", "batch-predict": "predict.batch"}
        for workflow in self.CHAIN:
            job, event = jobs[workflow], events[workflow]
            assert job["state"] == "PIPELINE_STATE_SUCCEEDED"
            assert job["labels"]["correlation_id"] == correlation_id
            assert event.json["type"] == stages[workflow][trigger[workflow]]["on_success"]
            assert event.json["correlation_id"] == correlation_id
            assert event.attributes["correlation_id"] == correlation_id
            assert event.json["payload"]["pipeline_job"] == job["name"]
            # An outcome event follows its job's end.
            assert moment(event.publish_time) + MILLISECOND >= moment(job["endTime"])
        # Each stage starts after the one before it ended, from that one's event.
        for upstream, downstream in itertools.pairwise(self.CHAIN):
            created = moment(jobs[downstream]["createTime"])
            assert moment(jobs[upstream]["endTime"]) <= created
            assert moment(events[upstream].publish_time) <= created

    @needs_completion_events
    @pytest.mark.parametrize("outcome", ["FAILED", "CANCELLED"])
    def test_a_failing_pipeline_gives_a_failure_event_and_no_downstream_job(
        self, twin: TwinClient, outcome: str
    ) -> None:
        correlation_id = unique(outcome.lower())
        twin.configure_vertex(
            rules=[{"label": f"correlation_id={correlation_id}", "outcome": outcome}]
        )
        tap = twin.tap("ingest-results")
        twin.publish_event("ingest-trigger", "data.ready", {}, correlation_id)
        event = twin.wait_for(
            lambda: events_with(tap.pull(), correlation_id),
            what="ingest's failure event",
        )
        twin.settle()

        job = only(twin.jobs(workflow="ingest", correlation_id=correlation_id))
        assert job["state"] == f"PIPELINE_STATE_{outcome}"
        failure = only(event)
        on_failure = routes(synthesized("dev"))["ingest"]["data.ready"]["on_failure"]
        assert failure.json["type"] == on_failure
        assert failure.json["payload"]["pipeline_job"] == job["name"]
        assert only(events_with(tap.pull(), correlation_id)) == failure
        assert twin.jobs(workflow="train", correlation_id=correlation_id) == []
        assert twin.jobs(workflow="batch-predict", correlation_id=correlation_id) == []

    @needs_completion_events
    def test_duplicates_at_every_stage_still_give_one_job_per_stage(self, twin: TwinClient) -> None:
        """Each stage's trigger delivered 10 times (the same message, or the same event
        published again) and each completion event 10 times: one job per stage."""
        correlation_id = unique("dup")
        taps = self.run_chain(twin, correlation_id)
        jobs = {w: only(twin.jobs(workflow=w, correlation_id=correlation_id)) for w in self.CHAIN}
        before = {w: len(twin.function_log(w)) for w in self.CHAIN}

        # ingest's trigger: the same message 9 more times (a producer's event has no key).
        message_id = jobs["ingest"]["name"].rsplit("-", 1)[1]
        event = {"type": "data.ready", "payload": {}, "correlation_id": correlation_id}
        attributes = {"event_type": "data.ready", "correlation_id": correlation_id}
        envelope = twin.envelope("ingest-push", json.dumps(event).encode(), attributes, message_id)
        for _ in range(9):
            assert twin.push("ingest", envelope).status_code == 200
        # train's and batch-predict's triggers: the upstream outcome event, published 9 more
        # times (new message ids; the idempotency key is what they share).
        for upstream in self.CHAIN[:-1]:
            outcome = only(events_with(taps[upstream].pull(), correlation_id))
            for _ in range(9):
                twin.publish(f"{upstream}-results", outcome.data, outcome.attributes)
        # Every completion event: the sink delivers it 9 more times.
        for job in jobs.values():
            twin.emit_again(job["name"].rsplit("/", 1)[1], 9)
        twin.settle(quiet=2.0)

        delivered = {w: len(twin.function_log(w)) - before[w] for w in self.CHAIN}
        for workflow in self.CHAIN:
            job = only(twin.jobs(workflow=workflow, correlation_id=correlation_id))
            assert job["name"] == jobs[workflow]["name"]
            # 9 more triggers and 9 more completion events at least (downstream stages also
            # get the events the upstream handler publishes again for its repeated completions).
            assert delivered[workflow] >= 18, delivered
        print(f"10x duplicates: deliveries after the first run {delivered}; one job per stage")


# --- transient failure: the emulator's retry and dead-letter policies ---------------------------


FLAKY = {
    "project_id": "acme-ai-flaky",
    "region": "europe-west4",
    "workflows": [
        {
            "name": "flaky",
            "min_retry_backoff_seconds": 1,
            "max_retry_backoff_seconds": 2,
            "max_delivery_attempts": 5,
            "routes": {
                "model.train": {
                    "template_uri": "https://europe-west4-kfp.pkg.dev/acme-ai-flaky/p/train/v1"
                }
            },
        }
    ],
}


class TestTransientFailure:
    def test_vertex_503_every_time_ends_in_the_emulators_dead_letter_topic(
        self, tmp_path: Path
    ) -> None:
        stack = synthesized("flaky", json.dumps(FLAKY))
        with start_twin(tmp_path, stack, "--unavailable", "503") as twin:
            self.check(twin)

    def check(self, twin: TwinClient) -> None:
        subscription = twin.admin.get(twin.subscription("flaky-push"))
        assert subscription["deadLetterPolicy"] == {
            "deadLetterTopic": twin.topic("flaky-dead-letter"),
            "maxDeliveryAttempts": 5,
        }
        assert subscription["retryPolicy"] == {"minimumBackoff": "1s", "maximumBackoff": "2s"}
        correlation_id = unique("transient")
        event = {"type": "model.train", "payload": {"epochs": 1}, "correlation_id": correlation_id}
        attributes = {"event_type": "model.train", "correlation_id": correlation_id}
        data = json.dumps(event).encode()
        started = time.monotonic()
        message_id = twin.publish("flaky-trigger", data, attributes)
        mailbox = twin.mailbox("flaky-dead-letter-pull")
        dead = twin.wait_for(
            lambda: [m for m in mailbox.pull() if m.data == data], timeout=90, what="dead letter"
        )
        took = time.monotonic() - started

        message = only(dead)
        # Nothing lost: the original data and attributes, moved by the emulator's policy.
        assert {k: message.attributes[k] for k in attributes} == attributes
        assert message.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
        assert message.attributes["CloudPubSubDeadLetterSourceSubscription"] == "flaky-push"
        assert "error" not in message.attributes  # not the handler's dead letter
        deliveries = [
            line for line in twin.function_log("flaky") if line.get("message_id") == message_id
        ]
        assert [(line["outcome"], line["http_status"]) for line in deliveries] == [
            ("retry", 503)
        ] * 5
        assert twin.vertex_stats()["creates"] == 5 and twin.jobs() == []
        assert took < 60, took


# --- scale: 20 workflows chained in one environment ---------------------------------------------

CHAIN_LENGTH = 20


def chain_settings(length: int) -> dict[str, Any]:
    workflows: list[dict[str, Any]] = []
    for i in range(length):
        workflow: dict[str, Any] = {
            "name": f"wf{i:02d}",
            "routes": {
                f"step{i}.run": {
                    "template_uri": f"https://europe-west4-kfp.pkg.dev/acme-ai-chain/p/step{i}/v1",
                    "on_success": f"step{i + 1}.run",
                }
            },
        }
        if i:
            workflow["trigger"] = f"wf{i - 1:02d}"
        workflows.append(workflow)
    return {"project_id": "acme-ai-chain", "region": "europe-west4", "workflows": workflows}


class TestTwentyWorkflowChain:
    @needs_completion_events
    def test_a_chain_of_20_workflows_runs_end_to_end(self, tmp_path: Path) -> None:
        stack = synthesized("chain", json.dumps(chain_settings(CHAIN_LENGTH)))
        started = time.monotonic()
        with start_twin(tmp_path, stack, "--delay", "0.2") as twin:
            print(f"20-workflow twin up in {time.monotonic() - started:.1f} s")
            self.check(twin)

    def check(self, twin: TwinClient) -> None:
        correlation_id = unique("chain20")
        last = f"wf{CHAIN_LENGTH - 1:02d}"
        tap = twin.tap(f"{last}-results")
        started = time.monotonic()
        twin.publish_event("wf00-trigger", "step0.run", {}, correlation_id)
        end = twin.wait_for(
            lambda: events_with(tap.pull(), correlation_id), timeout=240, what=f"{last}'s event"
        )
        took = time.monotonic() - started
        twin.settle()

        assert only(end).json["type"] == f"step{CHAIN_LENGTH}.run"
        jobs = [
            only(twin.jobs(workflow=f"wf{i:02d}", correlation_id=correlation_id))
            for i in range(CHAIN_LENGTH)
        ]
        assert len(twin.jobs(correlation_id=correlation_id)) == CHAIN_LENGTH
        assert all(job["state"] == "PIPELINE_STATE_SUCCEEDED" for job in jobs)
        for upstream, downstream in itertools.pairwise(jobs):
            assert upstream["endTime"] <= downstream["createTime"]
        print(f"20-workflow chain: {took:.1f} s from the first publish to the last event")


# --- the twin's own life: up, down, Ctrl-C, two environments ----------------------------------


def twin_processes() -> set[int]:
    """Every emulator and Functions Framework process on the machine."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"cloud-pubsub-emulator" in command or b"functions-framework" in command:
                found.add(int(entry.name))
    return found


def run_twin(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOLS / "twin"), *args],
        capture_output=True,
        text=True,
        timeout=180,
    )


class TestLifecycle:
    def test_down_stops_everything_up_started(self, tmp_path: Path) -> None:
        from twin.state import group_members, read_state

        before = twin_processes()
        with start_twin(tmp_path, synthesized("dev")) as twin:
            data = twin.state.data
            leaders = [data["emulator"]["pid"]] + [f["pid"] for f in data["functions"].values()]
            assert all(group_members(pid) for pid in leaders)
            assert len(twin_processes() - before) >= 1 + 2 * len(data["functions"])
            url = twin.function("ingest")["url"]
        assert read_state(tmp_path / "dev") is None
        assert all(group_members(pid) == [] for pid in leaders)
        assert twin_processes() - before == set()
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=2)

    def test_two_environments_side_by_side_and_up_twice(self, tmp_path: Path) -> None:
        dev, prod = synthesized("dev"), synthesized("prod")
        with start_twin(tmp_path, dev) as first, start_twin(tmp_path, prod) as second:
            assert first.state.directory != second.state.directory
            ports = {first.state.emulator_host, second.state.emulator_host}
            ports |= {f["url"] for f in first.state.data["functions"].values()}
            ports |= {f["url"] for f in second.state.data["functions"].values()}
            assert len(ports) == 2 + len(first.state.data["functions"]) + len(
                second.state.data["functions"]
            )
            again = run_twin("up", "--stack", str(dev), "--twin-dir", str(tmp_path))
            assert again.returncode == 2
            assert again.stderr.startswith("twin: error: dev is already up (")
            assert len(again.stderr.splitlines()) == 1
            # Each function runs with its own stack's environment (prod's secret: a placeholder).
            environ = Path(f"/proc/{second.function('batch-predict')['pid']}/environ")
            variables = dict(
                item.split("=", 1) for item in environ.read_text().split("\0") if "=" in item
            )
            assert variables["GCP_PROJECT"] == "acme-ai-prod"
            assert variables["SCORING_API_KEY"] == "twin-secret:acme-ai-prod/scoring-api-key/latest"
            assert variables["PUBSUB_EMULATOR_HOST"] == second.state.emulator_host

    def test_ctrl_c_in_the_foreground_stops_everything(self, tmp_path: Path) -> None:
        from twin.state import read_state

        before = twin_processes()
        process = subprocess.Popen(
            [sys.executable, str(TOOLS / "twin"), "up", "--foreground",
             "--stack", str(synthesized("dev")), "--twin-dir", str(tmp_path)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while not ((state := read_state(tmp_path / "dev")) and state.ready):
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
            process.send_signal(signal.SIGINT)
            output, _ = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 0, output
        assert output.rstrip().endswith("[twin] dev stopped")
        assert twin_processes() - before == set()

    def test_ctrl_c_while_up_is_starting_stops_everything(self, tmp_path: Path) -> None:
        before = twin_processes()
        process = subprocess.Popen(
            [sys.executable, str(TOOLS / "twin"), "up",
             "--stack", str(synthesized("dev")), "--twin-dir", str(tmp_path)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while not (tmp_path / "dev" / "twin.log").exists():
                assert time.monotonic() < deadline
                time.sleep(0.01)
            time.sleep(0.3)  # the supervisor is starting the emulator and the functions
            process.send_signal(signal.SIGINT)
            output, _ = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 130, output
        assert "interrupted; everything it started is stopped." in output
        time.sleep(0.5)
        assert twin_processes() - before == set()

    def test_a_function_that_cannot_start_is_one_line_and_leaves_nothing(
        self, tmp_path: Path
    ) -> None:
        """The handler's own start-up check (one CRITICAL line) stops `up`, which says why."""
        source = synthesized("dev")
        doc = json.loads(source.read_text())
        function = doc["resource"]["google_cloudfunctions2_function"]["train_function"]
        function["service_config"]["environment_variables"]["MAX_EVENT_AGE_SECONDS"] = "1 day"
        stack = tmp_path / "stacks" / "dev" / "cdk.tf.json"
        shutil.copytree(source.parent, stack.parent)
        stack.write_text(json.dumps(doc))
        before = twin_processes()

        result = run_twin("up", "--stack", str(stack), "--twin-dir", str(tmp_path / "twin"))
        assert result.returncode == 1, result.stderr
        (line,) = result.stderr.splitlines()
        assert line.startswith("twin: error: dev did not come up: function train-handler exited")
        assert "MAX_EVENT_AGE_SECONDS='1 day'" in line
        assert twin_processes() - before == set()

"""The operator tools end to end against the twin (Google's real Pub/Sub emulator, the real
Functions Framework serving the synthesized handler): `tools/smoke.py` (make smoke) and
`tools/replay_dead_letters.py` (make replay-dead-letters), run as the user runs them, as
subprocesses; every twin on free ports in a tmp folder, always taken down.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from environments import ROOT
from twin_stacks import start_twin, synthesized

from workflow_handler import events

if TYPE_CHECKING:
    from twin.client import TwinClient  # tools/, on sys.path through twin_stacks

SMOKE = ROOT / "tools" / "smoke.py"
REPLAY = ROOT / "tools" / "replay_dead_letters.py"
ENV_VARS_REMOVED = ("PUBSUB_", "GOOGLE_", "CLOUDSDK_", "AI_WORKFLOW_TWIN_DIR", "REPLAY_")


def tool(script: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The tool as a user runs it, with a clean environment plus `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(ENV_VARS_REMOVED)}
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**base, **env},
        cwd=ROOT,
    )


def smoke_subscriptions(twin: TwinClient) -> list[str]:
    listed = twin.admin.get(f"projects/{twin.project}/subscriptions").get("subscriptions", [])
    return [s["name"] for s in listed if "-smoke-" in s["name"]]


# --- make smoke -----------------------------------------------------------------------------------


@pytest.fixture(scope="class")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TwinClient, Path, Path]]:
    """The tests' dev stack (three chained workflows) running in a twin."""
    directory = tmp_path_factory.mktemp("twin")
    stack = synthesized("dev")
    with start_twin(directory, stack, "--delay", "0.3") as twin:
        yield twin, stack, directory


PASS_LINE = re.compile(
    r"PASS (\S+): workflow\.probe\.ok in (\d+\.\d\d) s \(projects/acme-ai-dev/topics/(\S+) -> "
    r"projects/acme-ai-dev/topics/(\S+)\)"
)


class TestSmoke:
    def run(self, dev: tuple[TwinClient, Path, Path], *args: str, **env: str) -> Any:
        _, stack, directory = dev
        return tool(
            SMOKE, "--env", "dev", "--stack", str(stack), *args,
            AI_WORKFLOW_TWIN_DIR=str(directory), **env,
        )  # fmt: skip

    def test_every_workflow_passes_through_its_real_subscriptions(self, dev: Any) -> None:
        twin = dev[0]
        jobs_before = len(twin.jobs())
        result = self.run(dev, "--timeout", "60")

        assert result.returncode == 0, result
        assert result.stderr == ""
        lines = result.stdout.splitlines()
        matches = [PASS_LINE.fullmatch(line) for line in lines]
        assert all(matches), lines
        routes = {m[1]: (m[3], m[4]) for m in matches if m}
        # Each probe went in where the workflow's push subscription reads: a chained workflow's
        # trigger is its upstream's results topic.
        assert routes == {
            "batch-predict": ("train-results", "batch-predict-results"),
            "ingest": ("ingest-trigger", "ingest-results"),
            "train": ("ingest-results", "train-results"),
        }
        assert all(float(m[2]) < 60 for m in matches if m)
        twin.settle(quiet=1.0)
        assert len(twin.jobs()) == jobs_before  # no pipeline started
        assert smoke_subscriptions(twin) == []  # the temporary subscriptions are gone
        # The downstream handlers took the upstream's answers for what they are.
        train_log = twin.function_log("train")
        ignored = [line for line in train_log if line.get("event_type") == "workflow.probe.ok"]
        assert ignored and all(
            (line["outcome"], line["http_status"]) == ("ignored", 200) for line in ignored
        )
        answered = [line for line in train_log if line.get("outcome") == "probe_answered"]
        assert answered and answered[-1]["result_event_type"] == "workflow.probe.ok"

    def test_one_workflow(self, dev: Any) -> None:
        result = self.run(dev, "--workflow", "train", "--timeout", "30")
        assert result.returncode == 0, result
        assert [line.split(":")[0] for line in result.stdout.splitlines()] == ["PASS train"]

    @pytest.mark.parametrize(
        ("args", "env", "message"),
        [
            (
                ["--project", "acme-ai-other"],
                {},
                "smoke.py: error: --project: got 'acme-ai-other', allowed the environment's "
                "project 'acme-ai-dev' (or --allow-other-project)",
            ),
            (
                [],
                {"PUBSUB_PROJECT_ID": "acme-ai-other"},
                "smoke.py: error: the Pub/Sub emulator at PUBSUB_EMULATOR_HOST={host}: is for "
                "project 'acme-ai-other' (PUBSUB_PROJECT_ID), allowed the environment's project "
                "'acme-ai-dev' (or --allow-other-project)",
            ),
            (
                ["--workflow", "trian"],
                {},
                "smoke.py: error: --workflow: got 'trian', allowed one of batch-predict, ingest, "
                "train",
            ),
            (
                ["--timeout", "0"],
                {},
                "smoke.py: error: --timeout: got 0, allowed 0 < seconds <= 3600",
            ),
            (
                ["--timeout", "soon"],
                {},
                "smoke.py: error: argument --timeout: invalid float value: 'soon'",
            ),
        ],
    )
    def test_refusals_and_bad_arguments_are_one_line_and_touch_nothing(
        self, dev: Any, args: list[str], env: dict[str, str], message: str
    ) -> None:
        twin = dev[0]
        if env:
            env = {**env, "PUBSUB_EMULATOR_HOST": twin.state.emulator_host}
        result = self.run(dev, *args, **env)
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr == message.format(host=twin.state.emulator_host) + "\n"
        assert smoke_subscriptions(twin) == []

    def test_the_flag_allows_another_project(self, dev: Any) -> None:
        twin = dev[0]
        result = self.run(
            dev,
            "--allow-other-project",
            "--workflow",
            "ingest",
            PUBSUB_EMULATOR_HOST=twin.state.emulator_host,
            PUBSUB_PROJECT_ID="acme-ai-other",
        )
        assert result.returncode == 0, result
        assert result.stdout.startswith("PASS ingest: ")

    def test_the_credentials_project_must_be_the_environments(
        self, dev: Any, tmp_path: Path
    ) -> None:
        """Without an emulator or a twin: Application Default Credentials of another project
        are refused before any call (no network needed)."""
        credentials = tmp_path / "adc.json"
        credentials.write_text(
            json.dumps(
                {
                    "type": "authorized_user",
                    "client_id": "x.apps.googleusercontent.com",
                    "client_secret": "s",
                    "refresh_token": "r",
                }
            )
        )
        result = tool(
            SMOKE,
            "--env",
            "dev",
            "--stack",
            str(dev[1]),
            AI_WORKFLOW_TWIN_DIR=str(tmp_path / "no-twins"),
            GOOGLE_APPLICATION_CREDENTIALS=str(credentials),
            GOOGLE_CLOUD_PROJECT="acme-ai-other",
        )
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr == (
            "smoke.py: error: https://pubsub.googleapis.com: is for project 'acme-ai-other' "
            "(the Application Default Credentials), allowed the environment's project "
            "'acme-ai-dev' (or --allow-other-project)\n"
        )

    def test_a_missing_stack_is_one_line(self, tmp_path: Path) -> None:
        result = tool(SMOKE, "--env", "qa", "--stack", str(tmp_path / "cdk.tf.json"))
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr == (
            f"smoke.py: error: {tmp_path / 'cdk.tf.json'}: no such file (run `make synth` first)\n"
        )

    def test_a_workflow_that_does_not_answer_fails_within_the_timeout(self, dev: Any) -> None:
        """Its push subscription is gone (as after a half-applied deploy): FAIL for it, PASS for
        the others, exit 1, and the temporary subscriptions are deleted all the same."""
        twin = dev[0]
        push = twin.subscription("batch-predict-push")
        saved = twin.admin.get(push)
        twin.admin.delete(push)
        try:
            started = time.monotonic()
            result = self.run(dev, "--timeout", "3")
            took = time.monotonic() - started
        finally:
            body = {k: v for k, v in saved.items() if k not in ("name", "state")}
            twin.admin.create_subscription(push, body)

        assert result.returncode == 1, result
        lines = result.stdout.splitlines()
        assert lines[0] == (
            "FAIL batch-predict: no workflow.probe.ok within 3 s (projects/acme-ai-dev/topics/"
            "train-results -> projects/acme-ai-dev/topics/batch-predict-results); look at the "
            "function's logs and projects/acme-ai-dev/subscriptions/batch-predict-dead-letter-pull"
        )
        assert [line.split(":")[0] for line in lines[1:]] == ["PASS ingest", "PASS train"]
        assert took < 3 + 15, took
        assert smoke_subscriptions(twin) == []

    def test_ctrl_c_during_the_wait_deletes_the_subscriptions(self, dev: Any) -> None:
        """A probe that is never answered (batch-predict's push subscription is gone), Ctrl-C
        while the tool waits: one line, exit 130, nothing left behind."""
        twin, stack, directory = dev
        push = twin.subscription("batch-predict-push")
        saved = twin.admin.get(push)
        twin.admin.delete(push)
        base = {k: v for k, v in os.environ.items() if not k.startswith(ENV_VARS_REMOVED)}
        try:
            process = subprocess.Popen(
                [sys.executable, str(SMOKE), "--env", "dev", "--stack", str(stack)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
                env={**base, "AI_WORKFLOW_TWIN_DIR": str(directory)},
            )
            twin.wait_for(
                lambda: len(smoke_subscriptions(twin)) == 3, what="the smoke subscriptions"
            )
            time.sleep(1)  # the answers of the other two are in: only batch-predict is waited for
            process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=30)
        finally:
            body = {k: v for k, v in saved.items() if k not in ("name", "state")}
            twin.admin.create_subscription(push, body)
        assert (process.returncode, stdout) == (130, "")
        assert stderr == "smoke.py: error: interrupted; the temporary subscriptions were deleted\n"
        assert smoke_subscriptions(twin) == []


# --- make replay-dead-letters ------------------------------------------------------------------

REPLAYED = {
    "project_id": "acme-ai-replay",
    "region": "europe-west4",
    "workflows": [
        {
            "name": "replay",
            "min_retry_backoff_seconds": 1,
            "max_retry_backoff_seconds": 2,
            "max_delivery_attempts": 5,
            "routes": {
                "model.train": {
                    "template_uri": "https://europe-west4-kfp.pkg.dev/acme-ai-replay/p/train/v1"
                }
            },
        }
    ],
}
REDELIVERY_SECONDS = 10


def quick_redelivery(stack: Path, directory: Path) -> Path:
    """A copy of the stack whose dead-letter pull subscription has the shortest ack deadline
    Pub/Sub allows (10 s, not 60), so that a message a crashed replay did not acknowledge comes
    back within the test. Only that value differs; the copy sits beside the original assets."""
    doc = json.loads(stack.read_text())
    subscription = doc["resource"]["google_pubsub_subscription"]["replay_dead_letter_subscription"]
    assert subscription["name"] == "replay-dead-letter-pull"
    subscription["ack_deadline_seconds"] = REDELIVERY_SECONDS
    copy = stack.parent / "quick-redelivery.tf.json"
    copy.write_text(json.dumps(doc))
    return copy


def producer_event(correlation_id: str) -> tuple[bytes, dict[str, str]]:
    event = {"type": "model.train", "payload": {"epochs": 1}, "correlation_id": correlation_id}
    attributes = {
        "event_type": "model.train",
        "correlation_id": correlation_id,
        "producer": "etl",
    }
    return json.dumps(event).encode(), attributes


LINE = re.compile(r"(replayed|would replay|skipped) (\d+) \(error ([a-z_]+)\)(.*)")


def parsed(stdout: str) -> list[tuple[str, str, str]]:
    """(what, message id, error) of each message line (the last line is the summary)."""
    found = [LINE.fullmatch(line) for line in stdout.splitlines()[:-1]]
    assert all(found), stdout
    return [(m[1], m[2], m[3]) for m in found if m]


def test_replay_is_at_least_once_even_when_it_crashes_between_publish_and_ack(
    tmp_path: Path,
) -> None:
    stack = quick_redelivery(synthesized("replay", json.dumps(REPLAYED)), tmp_path)
    with start_twin(tmp_path / "twin", stack, "--delay", "0.2") as twin:
        run_replay_scenario(twin, stack, tmp_path / "twin")


def run_replay_scenario(twin: TwinClient, stack: Path, twin_dir: Path) -> None:
    def replay(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return tool(
            REPLAY, "--env", "replay", "--stack", str(stack), "--workflow", "replay", *args,
            AI_WORKFLOW_TWIN_DIR=str(twin_dir), **env,
        )  # fmt: skip

    dead = twin.tap("replay-dead-letter")
    trigger = twin.tap("replay-trigger")
    # 1. Three events Vertex AI rejects (400: the handler dead-letters them, vertex_rejected),
    #    a poison message (bad_json), and one Vertex AI answers 503 until the emulator's own
    #    dead-letter policy moves it (max_delivery_attempts).
    twin.configure_vertex(unavailable=400)
    rejected = {}
    for n in range(3):
        data, attributes = producer_event(f"rejected-{n}")
        rejected[twin.publish("replay-trigger", data, attributes)] = (data, attributes)
    twin.publish("replay-trigger", b'{"type": "model.train",', {"producer": "etl"})
    twin.wait_for(lambda: len(dead.pull()) == 4, what="4 dead letters from the handler")
    twin.configure_vertex(unavailable=503)
    data, attributes = producer_event("exhausted")
    twin.publish("replay-trigger", data, attributes)
    twin.wait_for(lambda: len(dead.pull()) == 5, timeout=90, what="the emulator's dead letter")
    twin.configure_vertex(unavailable=None)
    twin.settle(quiet=0.5)
    trigger.pull()
    published_before = len(trigger.seen)

    # What the handler and Pub/Sub add is exactly what a replay drops.
    for message in dead.seen:
        added = set(message.attributes) - {"event_type", "correlation_id", "producer"}
        pubsub = {k for k in added if k.startswith("CloudPubSubDeadLetterSource")}
        assert added - pubsub <= set(events.DEAD_LETTER_ATTRIBUTES), message.attributes
    source_ids = {m.attributes.get("source_message_id") for m in dead.seen}
    dead_ids = {m.message_id for m in dead.seen}

    # 2. A dry run lists all five, publishes and acknowledges nothing: a second one lists them
    #    again.
    first = replay("--dry-run")
    assert first.returncode == 0, first
    listed = parsed(first.stdout)
    assert sorted(error for _, _, error in listed) == [
        "bad_json",
        "max_delivery_attempts",
        "vertex_rejected",
        "vertex_rejected",
        "vertex_rejected",
    ]
    assert {what for what, _, _ in listed} == {"would replay"}
    assert {mid for _, mid, _ in listed} == dead_ids
    assert first.stdout.splitlines()[-1] == (
        "dry run: would replay 5; nothing published, nothing acknowledged"
    )
    again = replay("--dry-run")
    assert {mid for _, mid, _ in parsed(again.stdout)} == dead_ids
    assert len(trigger.pull()) == published_before

    # 3. Crash right after the first publish, before its acknowledgement.
    crashed = replay(
        "--error", "vertex_rejected", "--limit", "1", REPLAY_DEAD_LETTERS_CRASH_AFTER_PUBLISH="1"
    )
    assert crashed.returncode == 3, crashed
    assert "REPLAY_DEAD_LETTERS_CRASH_AFTER_PUBLISH: exiting after publishing" in crashed.stdout
    assert len(trigger.pull()) == published_before + 1

    # 4. Rerun until every vertex_rejected message was replayed and acknowledged: the one the
    #    crash left unacknowledged comes back after the ack deadline and is published again.
    replayed: list[str] = []
    deadline = time.monotonic() + REDELIVERY_SECONDS * 4
    while len(set(replayed)) < 3:
        assert time.monotonic() < deadline, replayed
        run = replay("--error", "vertex_rejected")
        assert run.returncode == 0, run
        lines = parsed(run.stdout)
        replayed += [mid for what, mid, error in lines if what == "replayed"]
        skipped = {error for what, _, error in lines if what == "skipped"}
        assert skipped == {"bad_json", "max_delivery_attempts"}, run.stdout
        if len(set(replayed)) < 3:
            time.sleep(2)
    assert len(replayed) == 3  # each once in the reruns (the crashed one's first copy: step 3)

    # 5. The rest: the emulator's dead letter; the poison message stays.
    moved = replay("--error", "max_delivery_attempts")
    assert sorted((w, e) for w, _, e in parsed(moved.stdout)) == [
        ("replayed", "max_delivery_attempts"),
        ("skipped", "bad_json"),
    ]
    left = parsed(replay("--dry-run").stdout)
    assert [(w, e) for w, _, e in left] == [("would replay", "bad_json")]

    # What was republished: the original data, the producer's attributes only.
    twin.settle(quiet=1.0)
    republished = trigger.pull()[published_before:]
    assert len(republished) == 5  # 3 + the crashed one's duplicate + the emulator's
    for message in republished:
        assert message.attributes == {
            "event_type": "model.train",
            "correlation_id": message.json["correlation_id"],
            "producer": "etl",
        }
    originals = {data for data, _ in rejected.values()}
    assert sum(m.data in originals for m in republished) == 4
    assert source_ids >= set(rejected)  # the handler named the messages it dead-lettered

    # Nothing lost, at most duplicated: every event got its job; the crash's cost is one more.
    jobs = {f"rejected-{n}": twin.jobs(correlation_id=f"rejected-{n}") for n in range(3)}
    counts = sorted(len(found) for found in jobs.values())
    assert counts == [1, 1, 2], jobs
    assert len(twin.jobs(correlation_id="exhausted")) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--limit", "0"], "--limit: got '0', allowed a whole number >= 1"),
        (["--limit", "x"], "--limit: got 'x', allowed a whole number >= 1"),
        (
            ["--error", "bad_jsn"],
            "--error: got 'bad_jsn', allowed one of bad_base64, bad_envelope, bad_json, "
            "bad_pipeline_event, bad_utf8, event_too_large, non_finite_number, "
            "not_a_push_envelope, request_not_serializable, results_publish_rejected, "
            "schema_violation, unknown_event_type, unknown_pipeline_job, unknown_route, "
            "unpaired_surrogate, vertex_rejected, max_delivery_attempts",
        ),
        (
            ["--project", "acme-ai-prod"],
            "--project: got 'acme-ai-prod', allowed the environment's project 'acme-ai-dev' "
            "(or --allow-other-project)",
        ),
    ],
)
def test_replay_bad_arguments_are_one_line(args: list[str], message: str) -> None:
    stack = synthesized("dev")
    result = tool(REPLAY, "--env", "dev", "--stack", str(stack), "--workflow", "train", *args)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"replay_dead_letters.py: error: {message}\n"


def test_replay_needs_a_workflow() -> None:
    result = tool(REPLAY, "--env", "dev", "--stack", str(synthesized("dev")))
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "replay_dead_letters.py: error: the following arguments are required: --workflow"
    )


def test_the_readme_shows_what_the_tools_print() -> None:
    """README "Operating": its example lines have the tools' exact formats."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Operating\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```\n(.*?)^```", section, re.M | re.S)
    smoke_lines = blocks[0].splitlines()
    assert smoke_lines[0] == "$ make smoke ENV=dev"
    assert PASS_LINE.fullmatch(smoke_lines[1]) and PASS_LINE.fullmatch(smoke_lines[2])
    assert re.fullmatch(
        r"FAIL train: no workflow\.probe\.ok within 120 s \(projects/acme-ai-dev/topics/"
        r"ingest-results -> projects/acme-ai-dev/topics/train-results\); look at the function's "
        r"logs and projects/acme-ai-dev/subscriptions/train-dead-letter-pull",
        smoke_lines[3],
    )
    replay_lines = blocks[1].splitlines()
    assert replay_lines[0].startswith("$ make replay-dead-letters ")
    assert parsed("\n".join(replay_lines[1:])) == [
        ("replayed", "8", "vertex_rejected"),
        ("skipped", "14", "unknown_event_type"),
    ]
    assert replay_lines[-1].startswith("replayed 1 from projects/acme-ai-dev/subscriptions/")

"""The handler's tools: tools/publish.py (the producer), tools/run_function.py (local server)
and tools/handler_import_time.py (cold-start measurement), each run as a real subprocess.
Ctrl-C is sent the way a terminal sends it: SIGINT to the tool's whole process group."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Live
from handler_envelopes import make_envelope
from handler_fixtures import REPO
from local_standins import StandIns, free_port

TOOLS = REPO / "tools"
TRIGGER = "projects/test-project/topics/train-model-trigger"


def run_tool(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOLS / args[0]), *args[1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


BAD_PUBLISH_ARGS = [
    (["--type", "Model.Train"], "--type 'Model.Train'", "dotted lowercase"),
    (["--type", "train"], "--type 'train'", "dotted lowercase"),
    (["--data", "{not json"], "--data '{not json'", "not valid JSON"),
    (["--data", "[1, 2]"], "--data '[1, 2]'", "expected a JSON object"),
    (["--data", '{"x": NaN}'], "--data '{\"x\": NaN}': x: got NaN", "allowed a finite number"),
    (["--data", '{"x": 1e400}'], "--data '{\"x\": 1e400}': x: got 1e400", "allowed a finite"),
    (["--correlation-id", ""], "--correlation-id ''", "1 to 128 characters"),
    (["--topic", "trigger"], "--topic 'trigger'", "projects/<project>/topics/<topic>"),
    (["--topic", "projects/my-proj/topics/t"], "--topic", "topic: 3-255 characters"),
    # Bytes that are not UTF-8 reach Python as lone surrogates; so does a JSON \ud800 escape.
    (["--data", '{"a": "\udcff"}'], "--data", "not UTF-8 text"),
    (["--data", '{"a": "\\ud800"}'], "--data", "lone surrogate"),
    (["--correlation-id", "\udcff"], "--correlation-id", "1 to 128 characters"),
    (["--push-endpoint", "localhost:8080"], "--push-endpoint 'localhost:8080'", "http://"),
]


@pytest.mark.parametrize(("args", "names", "allowed"), BAD_PUBLISH_ARGS)
def test_publish_rejects_bad_arguments_in_one_line(
    args: list[str], names: str, allowed: str
) -> None:
    base = {"--topic": TRIGGER, "--type": "model.train", "--data": "{}"}
    for key, value in zip(args[::2], args[1::2], strict=True):
        base[key] = value
    argv = [item for pair in base.items() for item in pair]
    result = run_tool("publish.py", *argv)
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("publish.py: error: ")
    assert names in line and allowed in line
    assert "Traceback" not in result.stderr


def test_publish_missing_argument_is_one_line() -> None:
    result = run_tool("publish.py", "--topic", TRIGGER)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "publish.py: error: the following arguments are required: --type"
    ]


def test_publish_failure_is_one_line(stand_ins: StandIns) -> None:
    env = dict(os.environ, PUBSUB_EMULATOR_HOST=f"127.0.0.1:{free_port()}")  # nobody listens
    result = run_tool("publish.py", "--topic", TRIGGER, "--type", "model.train", env=env)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("publish.py: error: POST http://127.0.0.1:")
    assert "cannot connect" in line and "PUBSUB_EMULATOR_HOST=127.0.0.1:" in line


def test_publish_without_credentials_says_what_to_do(tmp_path: Path) -> None:
    """To real Pub/Sub with no Application Default Credentials: one line naming the ways out
    (the env has no credentials file, no gcloud config and no metadata server check)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "CLOUDSDK_"))}
    env.pop("PUBSUB_EMULATOR_HOST", None)
    env.update(CLOUDSDK_CONFIG=str(tmp_path), HOME=str(tmp_path), NO_GCE_CHECK="True")
    # Nor a running twin (`make up`) of the project, which publish.py would use instead.
    env.update(AI_WORKFLOW_TWIN_DIR=str(tmp_path))
    result = run_tool(
        "publish.py", "--env", "dev", "--workflow", "ingest", "--type", "data.ready",
        "--data", '{"day": "2026-11-24"}', env=env,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("publish.py: error: no Google credentials")
    for way_out in ("gcloud auth application-default login", "PUBSUB_EMULATOR_HOST", "PUSH="):
        assert way_out in line


def test_push_to_nothing_is_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}/"  # nobody listens
    result = run_tool("publish.py", "--push-endpoint", url, "--topic", TRIGGER, "--type", "a.b")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"publish.py: error: POST {url}: cannot connect ([Errno 111] Connection refused); is the "
        "function served there? Start it with `make run-function` (PORT=8080 by default) or "
        "pass its URL"
    ]


def test_push_exit_status_is_whether_the_handler_acknowledged(live: Live) -> None:
    push = ["publish.py", "--push-endpoint", live.server.url, "--topic", TRIGGER]
    dead_lettered = run_tool(*push, "--type", "no.route")
    assert dead_lettered.returncode == 0, dead_lettered.stderr  # 200: acknowledged
    assert '-> HTTP 200 {"outcome": "dead_lettered", "error": "unknown_event_type"}' in (
        dead_lettered.stdout
    )
    live.vertex.fail("create", 503)
    retried = run_tool(*push, "--type", "model.train")
    assert retried.returncode == 1  # 503: Pub/Sub would redeliver it
    assert re.fullmatch(r"message \d+ -> HTTP 503 .*retry.*\n", retried.stdout)
    assert retried.stderr == ""


def test_published_event_is_accepted_by_the_handler(live: Live) -> None:
    """The producer and the consumer agree: what publish.py sends, the handler starts."""
    env = dict(os.environ, PUBSUB_EMULATOR_HOST=live.pubsub.host_port)
    result = run_tool(
        "publish.py", "--topic", TRIGGER, "--type", "model.train",
        "--data", '{"epochs": 7}', "--correlation-id", "corr-7", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (published,) = live.pubsub.messages(TRIGGER)
    assert result.stdout.strip().endswith(f"message id {published.message_id}")
    assert published.json == {
        "type": "model.train",
        "payload": {"epochs": 7},
        "correlation_id": "corr-7",
    }
    assert published.attributes == {"event_type": "model.train", "correlation_id": "corr-7"}

    # Deliver it as the push subscription would.
    envelope = make_envelope(
        data=published.data, attributes=published.attributes, message_id=published.message_id
    )
    response = live.post(envelope)
    assert response.status_code == 200 and response.json()["outcome"] == "started"
    assert live.results()[0].json["correlation_id"] == "corr-7"


class RunFunction:
    """tools/run_function.py in a process group of its own, as a terminal would start it."""

    def __init__(self, tmp_path: Path, *args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = tmp_path / "run.log"
        local = ("PUBSUB_EMULATOR_HOST", "VERTEX_AI_ENDPOINT", "PORT")
        env = {k: v for k, v in os.environ.items() if k not in local}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(TOOLS / "run_function.py"), "--port", str(self.port), *args],
                env=env,
                cwd=REPO,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.output()}"
            time.sleep(0.02)

    def ctrl_c(self) -> int:
        """SIGINT to the process group, as the terminal's Ctrl-C; the exit status."""
        try:
            os.killpg(self.process.pid, signal.SIGINT)
            return self.process.wait(timeout=20)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_run_function_serves_the_handler_with_stand_ins(tmp_path: Path) -> None:
    server = RunFunction(tmp_path)
    try:
        server.wait_for("[run-function] serving ")
        result = run_tool(
            "publish.py", "--push-endpoint", server.url, "--topic", TRIGGER,
            "--type", "model.train", "--data", '{"epochs": 2}',
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "HTTP 200" in result.stdout and '"outcome": "started"' in result.stdout
    finally:
        server.process.send_signal(signal.SIGTERM)  # SIGTERM stops it like Ctrl-C
        assert server.process.wait(timeout=20) == 0
    output = server.output()
    assert (
        f"[run-function] serving workflow 'local-workflow' (local defaults, no --env) on "
        f"{server.url} — routes: model.train, predict.batch\n"
    ) in output
    assert "pipeline job started" in output
    assert output.endswith("[run-function] stopped.\n")


def test_run_function_names_the_workflow_it_serves(tmp_path: Path) -> None:
    server = RunFunction(tmp_path, "--env", "dev", "--workflow", "train")
    try:
        server.wait_for("[run-function] Ctrl-C to stop")
    finally:
        assert server.ctrl_c() == 0
    lines = server.output().splitlines()
    assert (
        f"[run-function] serving workflow 'train' of dev (config/dev.toml) on {server.url} "
        "— routes: model.retrain, model.train"
    ) in lines
    assert (
        "[run-function] deliver an event: make publish ENV=dev WORKFLOW=train EVENT=model.retrain "
        f"DATA='{{}}' PUSH={server.url}"
    ) in lines


@pytest.mark.parametrize("when", ["serving", "starting"])
def test_run_function_ctrl_c_is_one_line_and_exit_0(tmp_path: Path, when: str) -> None:
    """Ctrl-C while serving, or while the Functions Framework is still importing (before
    gunicorn has signal handlers): one line, no traceback, the server gone, the port free."""
    server = RunFunction(tmp_path, "--env", "dev")
    server.wait_for("[run-function] serving " if when == "serving" else "VERTEX_AI_ENDPOINT=")
    assert server.ctrl_c() == 0
    output = server.output()
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert output.endswith("[run-function] stopped.\n"), output
    assert output.count("stopped.") == 1
    assert port_is_free(server.port)


def test_run_function_on_a_busy_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_tool("run_function.py", "--port", str(port), "--env", "dev")
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    match = re.fullmatch(
        rf"run_function.py: error: port {port} is in use; set PORT=<free port> "
        r"\(make run-function PORT=(\d+)\)",
        line,
    )
    assert match is not None, line
    assert int(match.group(1)) != port


BAD_RUN_FUNCTION_ARGS = [
    (["--port", "abc"], {}, "--port 'abc': expected a port number from 1 to 65535"),
    (["--port", "0"], {}, "--port '0': expected a port number from 1 to 65535"),
    (["--port", "65536"], {}, "--port '65536': expected a port number from 1 to 65535"),
    ([], {"PORT": "80a"}, "PORT '80a': expected a port number from 1 to 65535"),
    (["--env", "nope"], {}, "--env 'nope': allowed one of dev, prod"),
    (["--env", "dev", "--workflow", "nope"], {}, "--workflow 'nope': allowed one of ingest,"),
    (["--workflow", "train"], {}, "--workflow 'train': only allowed together with --env"),
    (["--host", "no-such-host.invalid"], {}, "--host 'no-such-host.invalid': cannot listen"),
    (["--bogus"], {}, "unrecognized arguments: --bogus"),
]


@pytest.mark.parametrize(("args", "environ", "message"), BAD_RUN_FUNCTION_ARGS)
def test_run_function_rejects_bad_arguments_in_one_line(
    args: list[str], environ: dict[str, str], message: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PORT"} | environ
    result = run_tool("run_function.py", *args, env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"run_function.py: error: {message}")


def test_handler_import_time_reports_json() -> None:
    result = run_tool("handler_import_time.py", "--runs", "2", "--json", "--budget-ms", "5000")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["runs"] == 2 and len(report["samples_ms"]) == 2
    assert 0 < report["median_ms"] < 5000
    assert report["heavy_modules_imported"] == []
    assert report["within_budget"] is True


def test_handler_import_time_fails_over_budget_and_on_bad_config() -> None:
    assert run_tool("handler_import_time.py", "--runs", "1", "--budget-ms", "0.001").returncode == 1
    env = dict(os.environ, ROUTES="{}")
    result = run_tool("handler_import_time.py", "--runs", "1", env=env)
    assert result.returncode == 1
    assert "ROUTES" in result.stderr and "Traceback" not in result.stderr

"""The handler tests' fixtures: the real Functions Framework server serving function_src/main.py
as a subprocess, and the handler environment the tests give it, pointed at the local stand-ins
for Pub/Sub and Vertex AI (tools/local_standins.py, which tools/run_function.py uses too).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
FUNCTION_SOURCE = REPO / "function_src" / "main.py"
TOOLS = REPO / "tools"
# The stand-ins are a module of the project's tools (tests import tools, never the reverse).
# Appended, so that a tool's module name never shadows anything else.
if str(TOOLS) not in sys.path:
    sys.path.append(str(TOOLS))

from local_standins import StandIn, free_port  # noqa: E402

__all__ = [
    "DEAD_LETTER_TOPIC",
    "FUNCTION_SOURCE",
    "IGNORED_EVENT_TYPES",
    "PIPELINE_EVENTS_SUBSCRIPTION",
    "REPO",
    "RESULTS_TOPIC",
    "ROUTES",
    "SUBSCRIPTION",
    "TRAIN_TEMPLATE",
    "FunctionServer",
    "functions_framework_command",
    "handler_env",
]


def functions_framework_command(port: int) -> list[str]:
    script = Path(sys.executable).parent / "functions-framework"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "functions_framework"]
    return [
        *base,
        "--target",
        "handler",
        "--source",
        str(FUNCTION_SOURCE),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


@dataclass
class FunctionServer:
    """`functions-framework --target handler --source function_src/main.py` as a subprocess,
    its stdout and stderr captured to one file (read with `log_lines`)."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 30.0) -> FunctionServer:
        import requests

        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            functions_framework_command(self.port),
            env=self.env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"functions-framework exited with {self.process.returncode}:\n"
                    + self.log_path.read_text(errors="replace")
                )
            try:
                requests.get(self.url, timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("functions-framework did not start listening in time")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def log_lines(self, since: int = 0) -> list[dict[str, Any]]:
        """The JSON log lines written after byte offset `since` (non-JSON lines fail loudly)."""
        with self.log_path.open("rb") as handle:
            handle.seek(since)
            raw = handle.read().decode("utf-8", "replace")
        return [json.loads(line) for line in raw.splitlines() if line.strip()]


def handler_env(pubsub: StandIn | None, vertex: StandIn | None, **overrides: str) -> dict[str, str]:
    """The contract's environment variables, pointed at the stand-ins."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GOOGLE_", "CLOUDSDK_", "PUBSUB_", "VERTEX_"))
    }
    env.update(
        WORKFLOW_NAME="train-model",
        GCP_PROJECT="test-project",
        VERTEX_LOCATION="europe-west4",
        RESULTS_TOPIC=RESULTS_TOPIC,
        DEAD_LETTER_TOPIC=DEAD_LETTER_TOPIC,
        PIPELINE_ROOT="gs://test-bucket/train-model",
        PIPELINE_SERVICE_ACCOUNT="pipeline@test-project.iam.gserviceaccount.com",
        ROUTES=json.dumps(ROUTES),
        IGNORED_EVENT_TYPES=json.dumps(IGNORED_EVENT_TYPES),
        MAX_EVENT_AGE_SECONDS="3600",
        OUTBOUND_TIMEOUT_SECONDS="1",
        PYTHONUNBUFFERED="1",
    )
    if pubsub is not None:
        env["PUBSUB_EMULATOR_HOST"] = pubsub.host_port
    if vertex is not None:
        env["VERTEX_AI_ENDPOINT"] = vertex.url
    env.update(overrides)
    return env


RESULTS_TOPIC = "projects/test-project/topics/train-model-results"
DEAD_LETTER_TOPIC = "projects/test-project/topics/train-model-dead-letter"
SUBSCRIPTION = "projects/test-project/subscriptions/train-model-push"
PIPELINE_EVENTS_SUBSCRIPTION = (
    "projects/test-project/subscriptions/train-model-pipeline-events-push"
)
TRAIN_TEMPLATE = "https://europe-west4-kfp.pkg.dev/test-project/pipelines/train/v1"
# model.train chains onto predict.batch within this one handler, so that the tests can feed a
# completion event back in as the next stage's trigger.
ROUTES: dict[str, Any] = {
    "model.train": {
        "template_uri": TRAIN_TEMPLATE,
        "parameters": {"epochs": 3, "learning_rate": 0.1},
        "on_success": "predict.batch",
        "on_start": "model.training_started",
    },
    "model.retrain": {
        "template_uri": "https://europe-west4-kfp.pkg.dev/test-project/pipelines/retrain/sha256:abc123",
        "parameters": {"epochs": 1},
        "on_success": "model.retrained",
        "on_failure": "model.retrain_failed",
        "on_start": "model.retrain_started",
    },
    "predict.batch": {
        "template_uri": "https://europe-west4-kfp.pkg.dev/test-project/pipelines/predict/latest",
        "on_success": "predict.batch_done",
    },
}
IGNORED_EVENT_TYPES = ["upstream.failed", "upstream.started"]

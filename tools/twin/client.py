"""Driving a running twin from Python: what the end-to-end tests (tests/test_twin_*.py) use.

    with twin_up(stack_json, tmp_dir, delay=0.2) as twin:
        tap = twin.tap("ingest-results")          # a pull subscription of our own, to watch
        twin.publish_event("ingest-trigger", "data.ready", {}, correlation_id="c-1")
        job = twin.wait_for(lambda: twin.jobs(workflow="ingest"), what="an ingest job")
        twin.settle()                              # until nothing moves any more

`twin_up` starts it with `tools/twin up` (detached, watching this process so it never outlives
it) and always stops it with `tools/twin down`.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests

from .emulator import PubSubAdmin
from .state import State, read_state

MAIN = Path(__file__).resolve().parent
T = TypeVar("T")
TIMEOUT = 15


@dataclass
class Message:
    data: bytes
    attributes: dict[str, str]
    message_id: str
    publish_time: str

    @property
    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class Tap:
    """A pull subscription of the test's own on a topic: every message published to it after
    the tap was made, kept in `seen`."""

    admin: PubSubAdmin
    subscription: str
    seen: list[Message] = field(default_factory=list)

    def pull(self) -> list[Message]:
        """Everything seen so far (pulling what is new first)."""
        while True:
            batch = self.admin.pull(self.subscription)
            for raw in batch:
                self.seen.append(
                    Message(
                        data=raw["data"],
                        attributes=dict(raw.get("attributes", {})),
                        message_id=str(raw.get("messageId", "")),
                        publish_time=str(raw.get("publishTime", "")),
                    )
                )
            if not batch:
                return list(self.seen)


class TwinClient:
    def __init__(self, state: State) -> None:
        self.state = state
        self.project = state.project
        self.admin = PubSubAdmin(state.emulator_host)
        self.http = requests.Session()
        self._mailboxes: dict[str, Tap] = {}

    # --- names ------------------------------------------------------------------------------

    def topic(self, name: str) -> str:
        return name if name.startswith("projects/") else f"projects/{self.project}/topics/{name}"

    def subscription(self, name: str) -> str:
        if name.startswith("projects/"):
            return name
        return f"projects/{self.project}/subscriptions/{name}"

    def function(self, workflow: str) -> dict[str, Any]:
        for function in self.state.data["functions"].values():
            if function["workflow"] == workflow:
                return dict(function)
        raise KeyError(f"no function serves workflow {workflow!r}")

    # --- Pub/Sub ----------------------------------------------------------------------------

    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        return self.admin.publish(self.topic(topic), data, attributes)

    def publish_event(
        self, topic: str, event_type: str, payload: dict[str, Any], correlation_id: str | None
    ) -> str:
        """A well-formed event (docs/handler.md), with its attributes."""
        event: dict[str, Any] = {"type": event_type, "payload": payload}
        attributes = {"event_type": event_type}
        if correlation_id is not None:
            event["correlation_id"] = correlation_id
            attributes["correlation_id"] = correlation_id
        return self.publish(topic, json.dumps(event).encode(), attributes)

    def tap(self, topic: str) -> Tap:
        """A new pull subscription on `topic`: sees what is published from now on."""
        name = f"twin-tap-{secrets.token_hex(4)}"
        path = self.subscription(name)
        self.admin.create_subscription(path, {"topic": self.topic(topic), "ackDeadlineSeconds": 60})
        return Tap(self.admin, path)

    def mailbox(self, subscription: str) -> Tap:
        """The stack's own pull subscription (e.g. `ingest-dead-letter-pull`), read through one
        object, so that what one test pulls (and so acknowledges) another still sees."""
        path = self.subscription(subscription)
        if path not in self._mailboxes:
            self._mailboxes[path] = Tap(self.admin, path)
        return self._mailboxes[path]

    # --- functions --------------------------------------------------------------------------

    def push(self, workflow: str, envelope: dict[str, Any]) -> requests.Response:
        """POST a push envelope to the workflow's function, as a push subscription does."""
        return self.http.post(self.function(workflow)["url"], json=envelope, timeout=TIMEOUT)

    def envelope(
        self,
        subscription: str,
        data: bytes,
        attributes: dict[str, str],
        message_id: str,
        publish_time: str | None = None,
    ) -> dict[str, Any]:
        """The envelope the emulator pushes for a message (both spellings of its fields)."""
        published = publish_time or time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        encoded = base64.b64encode(data).decode()
        return {
            "subscription": self.subscription(subscription),
            "message": {
                "data": encoded,
                "attributes": attributes,
                "messageId": message_id,
                "message_id": message_id,
                "publishTime": published,
                "publish_time": published,
            },
        }

    def function_log(self, workflow: str) -> list[dict[str, Any]]:
        """The handler's JSON log lines (the Functions Framework's own lines are skipped)."""
        lines = []
        text = Path(self.function(workflow)["log"]).read_text(errors="replace")
        for line in text.splitlines():
            if line.startswith("{"):
                with suppress(ValueError):
                    lines.append(json.loads(line))
        return lines

    # --- Vertex AI stand-in -----------------------------------------------------------------

    def _control(self, method: str, what: str, body: dict[str, Any] | None = None) -> Any:
        url = f"{self.state.vertex_url}/_twin/{what}"
        response = self.http.request(method, url, json=body, timeout=TIMEOUT)
        response.raise_for_status()
        return response.json()

    def jobs(self, **labels: str) -> list[dict[str, Any]]:
        """The stand-in's jobs, oldest first, those with all of `labels` only."""
        jobs = self._control("GET", "jobs")["jobs"]
        wanted = [j for j in jobs if all(j["labels"].get(k) == v for k, v in labels.items())]
        return sorted(wanted, key=lambda j: j["createTime"])

    def log_entries(self) -> list[dict[str, Any]]:
        return list(self._control("GET", "log-entries")["entries"])

    def vertex_stats(self) -> dict[str, Any]:
        return dict(self._control("GET", "stats"))

    def configure_vertex(self, **body: Any) -> dict[str, Any]:
        """`outcome`, `delay`, `rules` ([{"outcome", "template" | "label"}]), `unavailable`."""
        return dict(self._control("POST", "config", body))

    def emit_again(self, job_id: str, times: int) -> None:
        """The job's last log entry, `times` more times through the sinks."""
        self._control("POST", "emit", {"job_id": job_id, "times": times})

    # --- waiting ----------------------------------------------------------------------------

    def wait_for(
        self, probe: Callable[[], T], timeout: float = 60, what: str = "the condition"
    ) -> T:
        """`probe()`'s first truthy value, polled; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.1)

    def _activity(self) -> tuple[Any, ...]:
        stats = self.vertex_stats()
        sizes = tuple(Path(f["log"]).stat().st_size for f in self.state.data["functions"].values())
        return stats["requests"], stats["busy"], len(self.log_entries()), sizes

    def settle(self, quiet: float = 1.5, timeout: float = 90) -> None:
        """Until no job runs and neither the stand-in nor any function has seen anything new
        for `quiet` seconds (a redelivery due later than that is not waited for)."""
        deadline = time.monotonic() + timeout
        last = self._activity()
        since = time.monotonic()
        while time.monotonic() - since < quiet or last[1]:
            if time.monotonic() > deadline:
                raise AssertionError(f"the twin did not settle in {timeout:.0f} s")
            time.sleep(0.2)
            now = self._activity()
            if now != last:
                last, since = now, time.monotonic()


def run_twin_command(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(MAIN), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )


@contextmanager
def twin_up(stack: Path, twin_dir: Path, *options: str) -> Iterator[TwinClient]:
    """A twin of `stack` in `twin_dir`/<env>, for the duration of the block; always stopped.
    `options`: more `tools/twin up` arguments (`--delay 0.2`, `--rule ...`)."""
    from .stack import Stack

    env = Stack.load(stack).name
    up = ["up", "--stack", str(stack), "--twin-dir", str(twin_dir)]
    try:
        result = run_twin_command(*up, "--watch-pid", str(os.getpid()), *options)
        if result.returncode != 0:
            log = twin_dir / env / "twin.log"
            detail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"twin up failed: {result.stderr.strip()}\n{detail}")
        state = read_state(twin_dir / env)
        assert state is not None and state.ready
        yield TwinClient(state)
    finally:
        run_twin_command("down", "--stack", str(stack), "--twin-dir", str(twin_dir))

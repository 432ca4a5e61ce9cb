"""The running twin: one process that owns the emulator, the functions and the Vertex AI
stand-in, and stops them all when it stops (SIGTERM, SIGINT, SIGHUP, or the watched process
going away).

Start-up, all of it resolved from the stack before anything is started:
1. a free port per function: its `service_config[0].uri` is `http://127.0.0.1:<port>/`;
2. Google's Pub/Sub emulator on a free port (its own process group);
3. one Functions Framework server per google_cloudfunctions2_function (each in its own
   process group), serving the function's source (the stack's zip asset) with the function's
   environment_variables from the JSON, secrets as `twin-secret:...` placeholders, and
   PUBSUB_EMULATOR_HOST / VERTEX_AI_ENDPOINT pointing at the twin;
4. the Vertex AI stand-in (a thread here), which runs each job to its outcome and emits its
   state changes as log entries; each one goes to every google_logging_project_sink whose
   filter matches it, published to the sink's destination topic as the sink would;
5. every google_pubsub_topic, then every google_pubsub_subscription, created in the emulator
   as declared (ack deadline, retention, retry and dead-letter policies, push endpoint).

state.json is written as soon as processes exist (so `down` can always clean up) and marked
ready when everything answers.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_standins import JobRunner, VertexStandIn, free_port

from .emulator import Emulator, PubSubAdmin, check_prerequisites, stop_group
from .logfilter import FilterError, Predicate, compile_filter
from .stack import Function, Stack, Subscription, Topic
from .state import REPO, start_time, write_state

PREFIX = "[twin]"
FALLBACK_SOURCE = REPO / "function_src"
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "SYSTEMROOT")
SINK_TIMESTAMP_ATTRIBUTE = "logging.googleapis.com/timestamp"


@dataclass
class RoutedSink:
    name: str
    address: str
    project: str
    topic: str | None
    matches: Predicate | None
    exclusions: list[Predicate]
    problem: str | None


@dataclass
class Served:
    function: Function
    port: int
    source: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None
    reported_exit: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


def _say(message: str) -> None:
    print(f"{PREFIX} {message}", flush=True)


def _log_project(entry: dict[str, Any]) -> str:
    parts = str(entry.get("logName", "")).split("/")
    return parts[1] if len(parts) > 1 and parts[0] == "projects" else ""


class Twin:
    def __init__(
        self,
        stack_path: Path,
        directory: Path,
        runner: JobRunner,
        unavailable: int | None = None,
        watch_pid: int | None = None,
    ) -> None:
        self.launcher = check_prerequisites()
        self.stack_path = stack_path.resolve()
        self.directory = directory.resolve()
        self.stack = Stack.load(self.stack_path)
        self.runner = runner
        self.unavailable = unavailable
        self.watch_pid = watch_pid
        self.stop_event = threading.Event()
        self.emulator: Emulator | None = None
        self.vertex: VertexStandIn | None = None
        self.admin: PubSubAdmin | None = None
        # Everything the stack declares is resolved here, before anything starts.
        self.served: list[Served] = []
        for logical_name in self.stack.resources("google_cloudfunctions2_function"):
            self.stack.function_urls[logical_name] = f"http://127.0.0.1:{free_port()}/"
        functions = self.stack.functions()
        self.topics: list[Topic] = self.stack.topics()
        self.subscriptions: list[Subscription] = self.stack.subscriptions()
        self.sinks = [self._route(sink) for sink in self.stack.sinks()]
        self.project = self.stack.project
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "functions").mkdir(exist_ok=True)
        for function in functions:
            url = self.stack.function_urls[function.logical_name]
            self.served.append(
                Served(
                    function=function,
                    port=int(url.rsplit(":", 1)[1].rstrip("/")),
                    source=self._source(function),
                    log=self.directory / "functions" / f"{function.name}.log",
                )
            )

    # --- preparing --------------------------------------------------------------------------

    def _route(self, sink: Any) -> RoutedSink:
        problem = None
        matches = None
        exclusions: list[Predicate] = []
        try:
            matches = compile_filter(sink.filter)
            exclusions = [compile_filter(text) for text in sink.exclusions]
        except FilterError as exc:
            problem = f"its filter is beyond the twin ({exc}): it routes nothing here"
        if sink.topic is None:
            problem = f"destination {sink.destination!r} is not a Pub/Sub topic: not routed"
        if sink.disabled:
            problem = "disabled"
        return RoutedSink(
            sink.name, sink.address, sink.project, sink.topic, matches, exclusions, problem
        )

    def _source(self, function: Function) -> Path:
        """The function's main.py: from the stack's zip asset, unpacked once per zip."""
        archive = function.source_zip
        if archive is None or not archive.is_file():
            _say(
                f"{function.name}: the stack's source zip {archive} is missing; serving "
                f"{FALLBACK_SOURCE.relative_to(REPO)}/ instead"
            )
            return FALLBACK_SOURCE / "main.py"
        target = self.directory / "source" / archive.stem
        if not (target / "main.py").is_file():
            target.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(archive) as bundle:
                bundle.extractall(target)
        return target / "main.py"

    def _function_env(self, served: Served, vertex_url: str, emulator_host: str) -> dict[str, str]:
        env = {key: os.environ[key] for key in _INHERITED if key in os.environ}
        env.update(served.function.environment)
        env.update(served.function.secrets)
        env.update(
            PUBSUB_EMULATOR_HOST=emulator_host,
            VERTEX_AI_ENDPOINT=vertex_url,
            PYTHONUNBUFFERED="1",
            PYTHONDONTWRITEBYTECODE="1",
            # Cloud Run's settings, as the Functions Framework reads them there.
            K_SERVICE=served.function.name,
            THREADS=str(served.function.threads),
            CLOUD_RUN_TIMEOUT_SECONDS=str(served.function.timeout_seconds),
        )
        return env

    # --- running ----------------------------------------------------------------------------

    def run(self, on_ready: Callable[[], None] | None = None) -> int:
        """Start everything, serve until told to stop, stop everything. 0, or 1 if start-up
        failed (the reason is printed). `on_ready` is called once everything serves."""
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, lambda *_: self.stop_event.set())
        try:
            self._start()
        except Exception as exc:
            _say(f"error: {exc}")
            self._stop()
            return 1
        self._write_state(ready=True)
        _say(f"{self.stack.name} is up")
        if on_ready is not None:
            on_ready()
        while not self.stop_event.wait(0.5):
            self._watch()
        self._stop()
        return 0

    def _start(self) -> None:
        emulator_port = free_port()
        self.emulator = Emulator(self.launcher, emulator_port, self.directory / "emulator.log")
        self.vertex = VertexStandIn(runner=self.runner, emit=self.route_log_entry)
        if self.unavailable is not None:
            self.vertex.configure({"unavailable": self.unavailable})
        started = time.monotonic()
        self.emulator.start()
        ff = Path(sys.executable).parent / "functions-framework"
        base = [str(ff)] if ff.exists() else [sys.executable, "-m", "functions_framework"]
        for served in self.served:
            env = self._function_env(served, self.vertex.url, self.emulator.host)
            command = [
                *base,
                "--target",
                served.function.entry_point,
                "--source",
                str(served.source),
                "--host",
                "127.0.0.1",
                "--port",
                str(served.port),
            ]
            with open(served.log, "ab") as log:
                served.process = subprocess.Popen(
                    command,
                    env=env,
                    cwd=served.source.parent,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    process_group=0,
                )
        self._write_state(ready=False)
        self.vertex.start()
        self.emulator.wait_ready()
        self.admin = PubSubAdmin(self.emulator.host)
        _say(f"Pub/Sub emulator on {self.emulator.host} ({time.monotonic() - started:.1f} s)")
        for topic in self.topics:
            self.admin.create_topic(topic.path, topic.rest_body())
        for subscription in self.subscriptions:
            self.admin.create_subscription(subscription.path, subscription.rest_body())
        _say(f"created {len(self.topics)} topics, {len(self.subscriptions)} subscriptions")
        self._wait_functions(deadline=time.monotonic() + 120)
        _say(f"{len(self.served)} functions serving ({time.monotonic() - started:.1f} s)")

    def _wait_functions(self, deadline: float) -> None:
        waiting = list(self.served)
        while waiting:
            for served in list(waiting):
                assert served.process is not None
                if served.process.poll() is not None:
                    tail = served.log.read_text(errors="replace").strip().splitlines()[-3:]
                    raise RuntimeError(
                        f"function {served.function.name} exited with status "
                        f"{served.process.returncode} at start-up: {' | '.join(tail)} "
                        f"(see {served.log})"
                    )
                try:
                    socket.create_connection(("127.0.0.1", served.port), timeout=0.5).close()
                    waiting.remove(served)
                except OSError:
                    pass
            if self.stop_event.is_set():
                raise RuntimeError("stopped while starting")
            if waiting and time.monotonic() > deadline:
                names = ", ".join(s.function.name for s in waiting)
                raise RuntimeError(f"functions not serving after 120 s: {names}")
            if waiting:
                time.sleep(0.1)

    def _watch(self) -> None:
        if self.watch_pid is not None:
            try:
                os.kill(self.watch_pid, 0)
            except ProcessLookupError:
                _say(f"process {self.watch_pid} is gone: stopping")
                self.stop_event.set()
        for served in self.served:
            exited = served.process is not None and served.process.poll() is not None
            if exited and not served.reported_exit:
                served.reported_exit = True
                assert served.process is not None
                _say(
                    f"function {served.function.name} exited with status "
                    f"{served.process.returncode} (see {served.log})"
                )
        if self.emulator and self.emulator.process and self.emulator.process.poll() is not None:
            _say(f"the Pub/Sub emulator exited (see {self.emulator.log_path}): stopping")
            self.stop_event.set()

    def _stop(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        stoppers = [
            threading.Thread(target=stop_group, args=(served.process,))
            for served in self.served
            if served.process is not None
        ]
        if self.emulator is not None:
            stoppers.append(threading.Thread(target=self.emulator.stop))
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()
        if self.vertex is not None:
            self.vertex.stop()
        (self.directory / "state.json").unlink(missing_ok=True)
        _say(f"{self.stack.name} stopped")

    # --- log sinks --------------------------------------------------------------------------

    def route_log_entry(self, entry: dict[str, Any]) -> None:
        """What Cloud Logging does with one entry: every project sink of the entry's project
        whose filter matches (and no exclusion does) publishes it to its topic."""
        job = entry.get("resource", {}).get("labels", {}).get("pipeline_job_id", "?")
        state = entry.get("jsonPayload", {}).get("state", "?")
        for sink in self.sinks:
            if sink.problem or sink.matches is None or sink.topic is None:
                continue
            if _log_project(entry) != sink.project or not sink.matches(entry):
                continue
            if any(exclude(entry) for exclude in sink.exclusions):
                continue
            data = json.dumps(entry).encode()
            attributes = {SINK_TIMESTAMP_ATTRIBUTE: str(entry.get("timestamp", ""))}
            for attempt in range(5):
                try:
                    assert self.admin is not None
                    message_id = self.admin.publish(sink.topic, data, attributes)
                    _say(f"sink {sink.name}: {job} {state} -> {sink.topic} ({message_id})")
                    break
                except Exception as exc:
                    if attempt == 4:
                        _say(f"sink {sink.name}: {job} {state} not published: {exc}")
                    time.sleep(0.2 * (attempt + 1))

    # --- state ------------------------------------------------------------------------------

    def _write_state(self, ready: bool) -> None:
        assert self.emulator is not None and self.vertex is not None
        pushes: dict[str, list[str]] = {}
        for subscription in self.subscriptions:
            if subscription.push_endpoint:
                pushes.setdefault(subscription.push_endpoint, []).append(subscription.name)
        emulator_pid = self.emulator.process.pid if self.emulator.process else None
        data = {
            "env": self.stack.name,
            "project": self.project,
            "stack": str(self.stack_path),
            "ready": ready,
            "supervisor": {"pid": os.getpid(), "start": start_time(os.getpid())},
            "emulator": {
                "host": self.emulator.host,
                "pid": emulator_pid,
                "start": start_time(emulator_pid) if emulator_pid else None,
                "log": str(self.emulator.log_path),
            },
            "vertex": {
                "url": self.vertex.url,
                "control": f"{self.vertex.url}/_twin/",
                "runner": self.runner.as_json(),
                "unavailable": self.unavailable,
            },
            "functions": {
                served.function.name: {
                    "address": served.function.address,
                    "workflow": served.function.workflow,
                    "url": served.url,
                    "pid": served.process.pid if served.process else None,
                    "start": start_time(served.process.pid) if served.process else None,
                    "log": str(served.log),
                    "source": str(served.source),
                    "subscriptions": pushes.get(served.url, []),
                }
                for served in self.served
            },
            "topics": [topic.path for topic in self.topics],
            "subscriptions": {
                s.path: {
                    "topic": s.topic,
                    "push_endpoint": s.push_endpoint,
                    "dead_letter_topic": s.dead_letter_topic,
                    "max_delivery_attempts": s.max_delivery_attempts,
                }
                for s in self.subscriptions
            },
            "sinks": [{"name": s.name, "topic": s.topic, "problem": s.problem} for s in self.sinks],
            "not_emulated": self._not_emulated(),
        }
        write_state(self.directory, data)

    def _not_emulated(self) -> list[str]:
        notes = ["IAM", "OIDC tokens on pushes"]
        if any(s.filter for s in self.subscriptions):
            notes.append("subscription filters (the emulator delivers every message)")
        if any(t.kms_key_name for t in self.topics):
            notes.append("CMEK")
        if any(s.unsupported for s in self.subscriptions):
            notes.append("BigQuery/Cloud Storage subscriptions (created as pull)")
        runtimes = sorted({s.function.runtime for s in self.served if s.function.runtime})
        here = f"python{sys.version_info.major}{sys.version_info.minor}"
        if runtimes and runtimes != [here]:
            notes.append(f"runtime {', '.join(runtimes)} (served on this {here})")
        return notes

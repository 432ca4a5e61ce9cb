"""Serve function_src/main.py on localhost with the real Functions Framework (`make run-function`).

The handler's environment (docs/handler.md) is that of a workflow in config/<env>.toml with
--env (what `make run-function` passes: ENV, default dev, and WORKFLOW, default the first
workflow), else local defaults (below); a variable set in this process's environment wins
either way. Unless --real-gcp is given, Pub/Sub and Vertex AI are local stand-ins started here
(tools/local_standins.py, the ones the tests use too) for whichever of
PUBSUB_EMULATOR_HOST / VERTEX_AI_ENDPOINT is unset, so nothing reaches Google.

    make run-function                          # workflow ingest of config/dev.toml on :8080
    make run-function WORKFLOW=train PORT=8081 # another workflow, another port
    PUBSUB_EMULATOR_HOST=localhost:8085 make run-function   # a real Pub/Sub emulator
    .venv/bin/python tools/run_function.py     # no --env: the local defaults below
    .venv/bin/python tools/run_function.py --real-gcp --env dev   # real APIs, Application
                                                                  # Default Credentials

Once it prints `serving workflow ...`, deliver an event the way a push subscription would,
from another terminal:
    make publish ENV=dev WORKFLOW=ingest EVENT=data.ready DATA='{}' PUSH=http://127.0.0.1:8080/

Ctrl-C (SIGINT) or SIGTERM stops the server and the stand-ins and prints one line,
`[run-function] stopped.`; the exit status is then 0. A bad argument or a busy port: one line
naming it, exit status 2. If the Functions Framework exits by itself (e.g. the handler's
configuration is invalid: its one CRITICAL line), its exit status is passed on.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, NoReturn

from workflow_handler import contract

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "function_src" / "main.py"
PROG = "run_function.py"
PREFIX = "[run-function]"

# Used only for variables that are not set and when no --env is given.
_LOCAL_WORKFLOW = "local-workflow"
_LOCAL_PROJECT = "local-project"
LOCAL_DEFAULTS: dict[str, str] = {
    contract.ENV_WORKFLOW_NAME: _LOCAL_WORKFLOW,
    contract.ENV_GCP_PROJECT: _LOCAL_PROJECT,
    contract.ENV_VERTEX_LOCATION: "europe-west4",
    contract.ENV_RESULTS_TOPIC: contract.topic_path(
        _LOCAL_PROJECT, contract.results_topic(_LOCAL_WORKFLOW)
    ),
    contract.ENV_DEAD_LETTER_TOPIC: contract.topic_path(
        _LOCAL_PROJECT, contract.dead_letter_topic(_LOCAL_WORKFLOW)
    ),
    contract.ENV_PIPELINE_ROOT: contract.pipeline_root(
        f"{_LOCAL_PROJECT}-pipelines", _LOCAL_WORKFLOW
    ),
    contract.ENV_PIPELINE_SERVICE_ACCOUNT: contract.service_account_email(
        "pipeline", _LOCAL_PROJECT
    ),
    contract.ENV_ROUTES: contract.routes_json(
        {
            "model.train": {
                contract.ROUTE_TEMPLATE_URI: (
                    "https://europe-west4-kfp.pkg.dev/local-project/pipelines/train/v1"
                ),
                contract.ROUTE_PARAMETERS: {"epochs": 3},
            },
            "predict.batch": {
                contract.ROUTE_TEMPLATE_URI: (
                    "https://europe-west4-kfp.pkg.dev/local-project/pipelines/predict/latest"
                ),
                contract.ROUTE_ON_SUCCESS: "predict.batch_done",
                contract.ROUTE_ON_START: "predict.batch_started",
            },
        }
    ),
    contract.ENV_MAX_EVENT_AGE_SECONDS: str(contract.DEFAULT_MAX_EVENT_AGE_SECONDS),
}


def local_environment(
    base: dict[str, str] | None = None, defaults: dict[str, str] | None = None
) -> dict[str, str]:
    """`base` (default: os.environ) with `defaults` (LOCAL_DEFAULTS) for what it lacks."""
    env = dict(os.environ if base is None else base)
    for key, value in (LOCAL_DEFAULTS if defaults is None else defaults).items():
        env.setdefault(key, value)
    return env


def workflow_environment(config_dir: Path, env_name: str, workflow: str | None) -> dict[str, str]:
    """The env vars the deployed handler of `workflow` in config/<env>.toml gets; exits 2
    with one line naming the problem."""
    # Plain Python: the settings modules start no jsii kernel (Node).
    from ai_workflow.errors import ConfigError
    from ai_workflow_app.config import (
        first_problem,
        literal_handler_environment,
        resolve_workflow,
    )

    try:
        env, name = resolve_workflow(config_dir, env_name, workflow)
    except ConfigError as exc:
        _fail(first_problem(exc))
    return literal_handler_environment(env, name)


def _fail(message: str) -> NoReturn:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (argparse prints the usage first), exit 2."""

    def error(self, message: str) -> NoReturn:
        _fail(message)


def parse_port(value: str, name: str) -> int:
    """A TCP port from --port or $PORT, or exit 2 naming the value."""
    port = int(value) if value.strip().isdigit() else 0
    if not 1 <= port <= 65535:
        _fail(f"{name} {value!r}: expected a port number from 1 to 65535, e.g. 8080")
    return port


def _bind_error(host: str, port: int) -> OSError | None:
    """Why the server could not listen on host:port (None: it can), found by binding a socket
    there the way gunicorn does (SO_REUSEADDR, so a port in TIME_WAIT counts as free)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return OSError(errno.EADDRNOTAVAIL, str(exc.strerror))
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            return exc
    return None


def check_port(host: str, port: int) -> None:
    """Exit 2 with one line unless the server can listen on host:port."""
    error = _bind_error(host, port)
    if error is None:
        return
    if error.errno == errno.EADDRINUSE:
        free = next((p for p in range(port + 1, port + 100) if _bind_error(host, p) is None), None)
        example = free if free is not None and free <= 65535 else 8081
        _fail(f"port {port} is in use; set PORT=<free port> (make run-function PORT={example})")
    if error.errno == errno.EACCES:
        _fail(f"--port {port}: not allowed to listen on ports below 1024; use e.g. 8080")
    _fail(f"--host {host!r}: cannot listen on {host}:{port} ({error.strerror or error})")


def functions_framework(port: int, host: str) -> list[str]:
    script = Path(sys.executable).parent / "functions-framework"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "functions_framework"]
    target = ["--target", "handler", "--source", str(SOURCE)]
    return [*base, *target, "--host", host, "--port", str(port)]


def _start_stand_ins(env: dict[str, str]) -> list[Any]:
    from local_standins import PubSubStandIn, VertexStandIn  # tools/local_standins.py

    started: list[Any] = []
    if not env.get(contract.ENV_PUBSUB_EMULATOR_HOST):
        pubsub = PubSubStandIn().start()
        pubsub.verbose = True
        env[contract.ENV_PUBSUB_EMULATOR_HOST] = pubsub.host_port
        started.append(pubsub)
    if not env.get(contract.ENV_VERTEX_AI_ENDPOINT):
        vertex = VertexStandIn().start()
        vertex.verbose = True
        env[contract.ENV_VERTEX_AI_ENDPOINT] = vertex.url
        started.append(vertex)
    return started


def _stop_all(stand_ins: list[Any]) -> None:
    """Stop the stand-ins side by side (each takes up to its 0.5 s poll interval)."""
    threads = [threading.Thread(target=stand_in.stop) for stand_in in stand_ins]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def routes_of(env: dict[str, str]) -> list[str]:
    """The event types ROUTES routes (empty if it is not a JSON object: the handler itself
    then stops with one line naming ROUTES)."""
    try:
        routes = json.loads(env.get(contract.ENV_ROUTES, ""))
    except ValueError:
        return []
    return sorted(routes) if isinstance(routes, dict) else []


def describe(
    env: dict[str, str], config: dict[str, str] | None, env_name: str | None, config_file: Path
) -> str:
    """`workflow 'ingest' of dev (config/dev.toml)`, and which settings the environment
    overrides."""
    name = env.get(contract.ENV_WORKFLOW_NAME, "?")
    if config is None or env_name is None:
        source = "(local defaults, no --env)"
        overridden = [k for k in LOCAL_DEFAULTS if k in os.environ]
    else:
        try:
            shown = config_file.resolve().relative_to(Path.cwd())
        except ValueError:
            shown = config_file
        source = f"of {env_name} ({shown.as_posix()})"
        overridden = [k for k in config if k in os.environ and os.environ[k] != config[k]]
    if overridden:
        source += f" with {', '.join(sorted(overridden))} from the environment"
    return f"workflow {name!r} {source}"


def publish_hint(
    env: dict[str, str], config: dict[str, str] | None, env_name: str | None, url: str
) -> str:
    """The command that delivers a routed event to this server as a push subscription would."""
    event_type = (routes_of(env) or ["model.train"])[0]
    if config is not None and env_name is not None:
        workflow = config[contract.ENV_WORKFLOW_NAME]
        return (
            f"make publish ENV={env_name} WORKFLOW={workflow} EVENT={event_type} DATA='{{}}' "
            f"PUSH={url}"
        )
    topic = contract.topic_path(env.get(contract.ENV_GCP_PROJECT, _LOCAL_PROJECT), "local-trigger")
    return (
        f".venv/bin/python tools/publish.py --push-endpoint {url} --topic {topic} "
        f"--type {event_type} --data '{{}}'"
    )


class Stop:
    """SIGINT, SIGTERM or SIGHUP: remember the first one and stop the server.

    The server runs in its own process group, so a terminal's Ctrl-C reaches only this
    process; it then sends SIGTERM, which stops the server quietly whether it is still
    importing (Python's default: just exit, no KeyboardInterrupt traceback) or already
    serving (gunicorn's graceful shutdown, immediate when no request is in flight)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            self.signum = signum
        if self.process is not None:
            self.process.terminate()

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self)


def _wait_until_listening(
    process: subprocess.Popen[bytes], host: str, port: int, stop: Stop
) -> bool:
    """True once the server accepts connections; False if it exited or a stop came first."""
    while process.poll() is None and stop.signum is None:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def main(argv: list[str] | None = None) -> int:
    stop = Stop()
    stop.install()
    parser = _Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", help="default: $PORT, else 8080")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--real-gcp",
        action="store_true",
        help="no stand-ins: unset endpoints mean Google's real APIs (needs credentials)",
    )
    parser.add_argument("--env", help="serve with the settings of a workflow in config/<env>.toml")
    parser.add_argument("--workflow", help="with --env: the workflow (default: the first one)")
    parser.add_argument("--config-dir", type=Path, default=REPO / "config")
    args = parser.parse_args(argv)

    if args.port is not None:
        port = parse_port(args.port, "--port")
    else:
        port = parse_port(os.environ.get("PORT") or "8080", "PORT")
    if args.workflow and not args.env:
        _fail(f"--workflow {args.workflow!r}: only allowed together with --env")
    config = workflow_environment(args.config_dir, args.env, args.workflow) if args.env else None
    check_port(args.host, port)
    env = local_environment(defaults=config)
    url = f"http://{args.host}:{port}/"
    stand_ins = [] if args.real_gcp else _start_stand_ins(env)
    returncode: int | None = None
    try:
        for stand_in in stand_ins:
            print(f"{PREFIX} {stand_in.name} stand-in on {stand_in.url}", file=sys.stderr)
        pubsub, vertex = contract.ENV_PUBSUB_EMULATOR_HOST, contract.ENV_VERTEX_AI_ENDPOINT
        print(
            f"{PREFIX} {pubsub}={env.get(pubsub, '<unset>')}, "
            f"{vertex}={env.get(vertex, '<default>')}",
            file=sys.stderr,
            flush=True,
        )
        if stop.signum is None:
            stop.process = subprocess.Popen(
                functions_framework(port, args.host), env=env, cwd=REPO, process_group=0
            )
            if stop.signum is not None:  # a signal came while it was being started
                stop.process.terminate()
            elif _wait_until_listening(stop.process, args.host, port, stop):
                routes = ", ".join(routes_of(env)) or "none"
                config_file = args.config_dir / f"{args.env}.toml"
                print(
                    f"{PREFIX} serving {describe(env, config, args.env, config_file)} "
                    f"on {url} — routes: {routes}",
                    file=sys.stderr,
                )
                hint = publish_hint(env, config, args.env, url)
                print(f"{PREFIX} deliver an event: {hint}", file=sys.stderr)
                print(f"{PREFIX} Ctrl-C to stop", file=sys.stderr, flush=True)
            returncode = stop.process.wait()
    finally:
        # Whatever happens now, finish stopping; a second Ctrl-C must not cut this short.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        process = stop.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        _stop_all(stand_ins)
    if stop.signum is not None:
        print(f"{PREFIX} stopped.", file=sys.stderr, flush=True)
        return 0
    print(f"{PREFIX} the Functions Framework exited with status {returncode}", file=sys.stderr)
    return returncode or 1


if __name__ == "__main__":
    sys.exit(main())

"""`tools/twin`: run a synthesized stack on this machine (`make up` / `make down`).

    .venv/bin/python tools/twin up [--env dev | --stack path/cdk.tf.json] [--delay 1]
        [--outcome SUCCEEDED] [--rule label.workflow=train:FAILED ...] [--foreground]
    .venv/bin/python tools/twin status [--env dev]
    .venv/bin/python tools/twin vertex [--env dev] [--outcome ...] [--delay ...] [--rule ...]
        [--unavailable 503 | --available]
    .venv/bin/python tools/twin down [--env dev]

`up` starts the twin in the background and returns once every function serves (with
`--foreground` it stays attached and Ctrl-C stops it); `down` stops everything `up` started.
`--twin-dir` (default $AI_WORKFLOW_TWIN_DIR, else .twin/) holds one folder per environment.
Errors: one line, `twin: error: ...`; exit 2 for what the caller must fix (arguments, a missing
emulator or Java, a stack the twin cannot read), 1 if start-up failed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import requests
from local_standins import JobRunner, OutcomeRule

from .emulator import MissingPrerequisite, check_prerequisites
from .stack import StackError
from .state import (
    REPO,
    State,
    group_members,
    read_state,
    same_process,
    state_dir,
    twin_root,
)

PROG = "twin"
PREFIX = "[twin]"
MAIN = Path(__file__).resolve().parent


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        _fail(message)


def _fail(message: str, code: int = 2) -> NoReturn:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def _say(message: str) -> None:
    print(f"{PREFIX} {message}", flush=True)


def _shown(path: Path | str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# --- arguments ----------------------------------------------------------------------------------


def _runner(args: argparse.Namespace) -> JobRunner:
    rules = []
    for spec in [*(args.rule or []), *(args.rules or "").split()]:
        try:
            rules.append(OutcomeRule.parse(spec))
        except ValueError as exc:
            _fail(f"--rule {exc}")
    try:
        return JobRunner(outcome=args.outcome, delay=args.delay, rules=rules)
    except ValueError as exc:
        _fail(str(exc))


def _stack_path(args: argparse.Namespace) -> Path:
    if args.stack:
        return Path(args.stack)
    return REPO / "cdktf.out" / "stacks" / args.env / "cdk.tf.json"


def _directory(args: argparse.Namespace, env: str) -> Path:
    root = Path(args.twin_dir) if args.twin_dir else twin_root()
    return state_dir(env, root)


def _env_of(args: argparse.Namespace) -> str:
    """The environment a command is about: --env, else the --stack's name."""
    if args.stack and not args.env_given:
        from .stack import Stack

        try:
            return Stack.load(Path(args.stack)).name
        except StackError as exc:
            _fail(str(exc))
    return str(args.env)


# --- up -----------------------------------------------------------------------------------------


def cmd_up(args: argparse.Namespace) -> int:
    from .supervisor import Twin

    runner = _runner(args)
    try:
        check_prerequisites()
    except MissingPrerequisite as exc:
        _fail(str(exc))
    stack_path = _stack_path(args)
    if not stack_path.is_file():
        hint = f"`make synth ENV={args.env}`" if not args.stack else "synthesize it first"
        _fail(f"{_shown(stack_path)}: no such file ({hint}; `make up` does it for you)")
    env = _env_of(args)
    directory = _directory(args, env)
    existing = read_state(directory)
    if existing is not None and existing.running():
        _fail(
            f"{env} is already up ({_shown(directory)}, emulator {existing.emulator_host}); "
            f"`make down ENV={env}` first"
        )
    if existing is not None:  # left by a twin that was killed: clean up what it left
        _stop(existing, quiet=True)
    try:
        # Resolve the whole stack here, so a problem is one line before anything starts.
        Twin(stack_path, directory, runner, args.unavailable)
    except StackError as exc:
        _fail(f"{_shown(stack_path)}: {exc}")
    if args.foreground:
        twin = Twin(stack_path, directory, runner, args.unavailable, args.watch_pid)

        def ready() -> None:
            state = read_state(directory)
            if state is not None:
                _summary(state)
                _say("Ctrl-C stops it")

        return twin.run(on_ready=ready)
    return _start_detached(args, stack_path, directory, runner, env)


def _start_detached(
    args: argparse.Namespace, stack_path: Path, directory: Path, runner: JobRunner, env: str
) -> int:
    command = [
        sys.executable,
        str(MAIN),
        "serve",
        "--stack",
        str(stack_path.resolve()),
        "--state-dir",
        str(directory.resolve()),
        "--runner",
        json.dumps(runner.as_json()),
    ]
    if args.unavailable is not None:
        command += ["--unavailable", str(args.unavailable)]
    if args.watch_pid is not None:
        command += ["--watch-pid", str(args.watch_pid)]
    log_path = directory / "twin.log"
    started = time.monotonic()
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives this command; `make down` stops it
            cwd=REPO,
        )
    try:
        while True:
            state = read_state(directory)
            if state is not None and state.ready and state.supervisor_pid == process.pid:
                break
            if process.poll() is not None:
                lines = log_path.read_text(errors="replace").splitlines()
                reason = next(
                    (line for line in reversed(lines) if "error:" in line),
                    f"see {_shown(log_path)}",
                )
                reason = reason.removeprefix(f"{PREFIX} ").removeprefix("error: ")
                _fail(f"{env} did not come up: {reason}", 1)
            time.sleep(0.1)
    except KeyboardInterrupt:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        state = read_state(directory)
        if state is not None:
            _stop(state, quiet=True)
        _say(f"{env}: interrupted; everything it started is stopped.")
        return 130
    _summary(state, time.monotonic() - started)
    return 0


def _summary(state: State, seconds: float | None = None) -> None:
    data = state.data
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    _say(f"{state.env} is up{took}: {_shown(data['stack'])}, project {state.project}")
    _say(f"  state, ports and logs: {_shown(state.directory)}/")
    subscriptions = data["subscriptions"]
    _say(
        f"  Pub/Sub emulator      PUBSUB_EMULATOR_HOST={state.emulator_host} "
        f"({len(data['topics'])} topics, {len(subscriptions)} subscriptions)"
    )
    runner = data["vertex"]["runner"]
    rules = "".join(
        f", {r.get('template') or r.get('label')} -> {r['outcome']}" for r in runner["rules"]
    )
    unavailable = data["vertex"].get("unavailable")
    behaviour = (
        f"answers {unavailable} to every call"
        if unavailable
        else f"jobs run {runner['delay']:g} s, then {runner['outcome']}{rules}"
    )
    _say(f"  Vertex AI stand-in    {state.vertex_url} ({behaviour})")
    width = max((len(name) for name in data["functions"]), default=0)
    for name, function in sorted(data["functions"].items()):
        pushed = ", ".join(function["subscriptions"]) or "no push subscription"
        _say(f"  {name:<{width}}  {function['url']} <- {pushed}")
    for sink in data["sinks"]:
        note = f" ({sink['problem']})" if sink["problem"] else ""
        _say(f"  log sink {sink['name']} -> {sink['topic']}{note}")
    if not data["sinks"]:
        _say("  no log sinks in the stack: job outcomes are not published")
    _say(f"  not emulated: {', '.join(data['not_emulated'])}")
    _say(
        f"publish: make publish ENV={state.env} EVENT=<type> DATA='{{}}'   "
        f"stop: make down ENV={state.env}"
    )


# --- down ---------------------------------------------------------------------------------------


def _stop(state: State, quiet: bool = False) -> list[str]:
    """Stop the supervisor, then anything of its children still alive; what was stopped."""
    stopped = []
    supervisor = state.data.get("supervisor", {})
    pid = int(supervisor.get("pid", 0))
    if pid and same_process(pid, supervisor.get("start")):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while same_process(pid, supervisor.get("start")) and time.monotonic() < deadline:
            time.sleep(0.1)
        if same_process(pid, supervisor.get("start")):
            os.kill(pid, signal.SIGKILL)
        stopped.append("supervisor")
    children = [("emulator", state.data.get("emulator", {}))]
    children += [(f"function {n}", f) for n, f in state.data.get("functions", {}).items()]
    for name, child in children:
        leader = child.get("pid")
        # A process group outlives its leader; the kernel never hands its id to a new process
        # while a member is alive, so members of this group are the child's.
        if leader and group_members(int(leader)):
            try:
                os.killpg(int(leader), signal.SIGKILL)
                stopped.append(name)
            except ProcessLookupError:
                pass
    (state.directory / "state.json").unlink(missing_ok=True)
    if not quiet and len(stopped) > 1:
        _say(f"left behind and stopped: {', '.join(stopped[1:])}")
    return stopped


def cmd_down(args: argparse.Namespace) -> int:
    env = _env_of(args)
    directory = _directory(args, env)
    state = read_state(directory)
    if state is None:
        _say(f"{env} is not up (no {_shown(directory)}/state.json)")
        return 0
    functions = len(state.data.get("functions", {}))
    _stop(state)
    _say(
        f"{env} stopped: the Pub/Sub emulator, {functions} functions and the Vertex AI "
        f"stand-in (logs kept in {_shown(directory)}/)"
    )
    return 0


# --- status, vertex -------------------------------------------------------------------------------


def _running(args: argparse.Namespace) -> State:
    env = _env_of(args)
    directory = _directory(args, env)
    state = read_state(directory)
    if state is None or not state.running():
        _fail(f"{env} is not up (`make up ENV={env}` starts it)", 1)
    return state


def cmd_status(args: argparse.Namespace) -> int:
    state = _running(args)
    _summary(state)
    return 0


def cmd_vertex(args: argparse.Namespace) -> int:
    state = _running(args)
    body: dict[str, Any] = {}
    if args.outcome_given:
        body["outcome"] = args.outcome
    if args.delay_given:
        body["delay"] = args.delay
    if args.rule or args.rules:
        body["rules"] = _runner(args).as_json()["rules"]
    if args.available:
        body["unavailable"] = None
    elif args.unavailable is not None:
        body["unavailable"] = args.unavailable
    response = requests.post(f"{state.vertex_url}/_twin/config", json=body, timeout=10)
    if response.status_code != 200:
        _fail(f"the Vertex AI stand-in refused {body}: {response.text.strip()}")
    config = response.json()
    state.data["vertex"].update(runner=config["runner"], unavailable=config["unavailable"])
    from .state import write_state

    write_state(state.directory, state.data)
    print(json.dumps(config, sort_keys=True))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .supervisor import Twin

    try:
        runner = JobRunner.from_json(json.loads(args.runner))
        twin = Twin(
            Path(args.stack), Path(args.state_dir), runner, args.unavailable, args.watch_pid
        )
    except (StackError, MissingPrerequisite, ValueError) as exc:
        print(f"{PREFIX} error: {exc}", flush=True)
        return 2
    return twin.run()


# --- main ---------------------------------------------------------------------------------------


class _Given(argparse.Action):
    """Stores the value and remembers that it was given (`<dest>_given`)."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        setattr(namespace, self.dest, values)
        setattr(namespace, f"{self.dest}_given", True)


def _parser() -> _Parser:
    parser = _Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser, metavar="{up,down,status,vertex}"
    )

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--env", default="dev", action=_Given, help="environment (default dev)")
        sub.add_argument("--stack", help="a cdk.tf.json (default cdktf.out/stacks/<env>/)")
        sub.add_argument("--twin-dir", help="folder of the twins' state (default .twin/)")

    def vertex_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--delay", type=float, default=1.0, action=_Given, help="seconds a job runs"
        )
        sub.add_argument(
            "--outcome",
            default="SUCCEEDED",
            action=_Given,
            help="SUCCEEDED, FAILED or CANCELLED (default SUCCEEDED)",
        )
        sub.add_argument(
            "--rule",
            action="append",
            help="template=<part of the URI>:OUTCOME or label.<key>=<value>:OUTCOME",
        )
        sub.add_argument("--rules", help="several --rule values, separated by spaces")
        sub.add_argument("--unavailable", type=int, help="answer every call with this status")

    up = commands.add_parser("up", help="start the twin of an environment")
    common(up)
    vertex_options(up)
    up.add_argument("--foreground", action="store_true", help="stay attached; Ctrl-C stops")
    up.add_argument("--watch-pid", type=int, help="stop when this process is gone (tests)")
    up.set_defaults(func=cmd_up)

    down = commands.add_parser("down", help="stop everything `up` started")
    common(down)
    down.set_defaults(func=cmd_down)

    status = commands.add_parser("status", help="what a running twin serves")
    common(status)
    status.set_defaults(func=cmd_status)

    vertex = commands.add_parser("vertex", help="change the Vertex AI stand-in while it runs")
    common(vertex)
    vertex_options(vertex)
    vertex.add_argument("--available", action="store_true", help="undo --unavailable")
    vertex.set_defaults(func=cmd_vertex)

    serve = commands.add_parser("serve")  # what `up` runs in the background
    serve.add_argument("--stack", required=True)
    serve.add_argument("--state-dir", required=True)
    serve.add_argument("--runner", required=True)
    serve.add_argument("--unavailable", type=int)
    serve.add_argument("--watch-pid", type=int)
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    for name in ("env", "delay", "outcome"):
        if not hasattr(args, f"{name}_given"):
            setattr(args, f"{name}_given", False)
    return int(args.func(args))

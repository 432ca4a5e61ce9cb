"""Serve function_src/main.py on localhost with the real Functions Framework (`make run-function`).

The handler's environment (docs/handler.md) comes from this process's environment; anything
unset gets a local default below. Unless --real-gcp is given, Pub/Sub and Vertex AI are local
stand-ins started here (the ones the tests use, tests/handler/handler_standins.py) for whichever
of PUBSUB_EMULATOR_HOST / VERTEX_AI_ENDPOINT is unset, so nothing reaches Google.

    make run-function                 # http://127.0.0.1:8080/, stand-ins for both APIs
    make run-function ENV=dev WORKFLOW=train   # that workflow's settings from config/dev.toml
    PORT=9000 make run-function
    PUBSUB_EMULATOR_HOST=localhost:8085 make run-function   # a real Pub/Sub emulator
    .venv/bin/python tools/run_function.py --real-gcp       # real APIs, Application Default
                                                            # Credentials, real project env

Then deliver an event as a push subscription would:
    .venv/bin/python tools/publish.py --push-endpoint http://127.0.0.1:8080/ \
        --topic projects/local-project/topics/local-trigger --type model.train --data '{}'
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "function_src" / "main.py"

# Used only for variables that are not set and when no --env is given.
LOCAL_DEFAULTS: dict[str, str] = {
    "WORKFLOW_NAME": "local-workflow",
    "GCP_PROJECT": "local-project",
    "VERTEX_LOCATION": "europe-west4",
    "RESULTS_TOPIC": "projects/local-project/topics/local-workflow-results",
    "DEAD_LETTER_TOPIC": "projects/local-project/topics/local-workflow-dead-letter",
    "PIPELINE_ROOT": "gs://local-project-pipelines/local-workflow",
    "PIPELINE_SERVICE_ACCOUNT": "pipeline@local-project.iam.gserviceaccount.com",
    "ROUTES": json.dumps(
        {
            "model.train": {
                "template_uri": "https://europe-west4-kfp.pkg.dev/local-project/pipelines/train/v1",
                "parameters": {"epochs": 3},
            },
            "predict.batch": {
                "template_uri": "https://europe-west4-kfp.pkg.dev/local-project/pipelines/predict/latest",
                "result_event_type": "predict.batch_started",
            },
        }
    ),
    "MAX_EVENT_AGE_SECONDS": "86400",
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
    sys.path.insert(0, str(REPO / "constructs"))
    from ai_workflow.config import first_problem, resolve_workflow
    from ai_workflow.errors import ConfigError
    from ai_workflow.handler_env import literal_handler_environment

    try:
        env, name = resolve_workflow(config_dir, env_name, workflow)
    except ConfigError as exc:
        _fail(first_problem(exc))
    return literal_handler_environment(env, name)


def _fail(message: str) -> NoReturn:
    print(f"run_function.py: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def functions_framework(port: int, host: str) -> list[str]:
    script = Path(sys.executable).parent / "functions-framework"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "functions_framework"]
    target = ["--target", "handler", "--source", str(SOURCE)]
    return [*base, *target, "--host", host, "--port", str(port)]


def _start_stand_ins(env: dict[str, str]) -> list[Any]:
    sys.path.insert(0, str(REPO / "tests" / "handler"))
    from handler_standins import PubSubStandIn, VertexStandIn  # tests/handler

    started: list[Any] = []
    if not env.get("PUBSUB_EMULATOR_HOST"):
        pubsub = PubSubStandIn().start()
        pubsub.verbose = True
        env["PUBSUB_EMULATOR_HOST"] = pubsub.host_port
        started.append(pubsub)
    if not env.get("VERTEX_AI_ENDPOINT"):
        vertex = VertexStandIn().start()
        vertex.verbose = True
        env["VERTEX_AI_ENDPOINT"] = vertex.url
        started.append(vertex)
    return started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8080))
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

    defaults = workflow_environment(args.config_dir, args.env, args.workflow) if args.env else None
    env = local_environment(defaults=defaults)
    stand_ins = [] if args.real_gcp else _start_stand_ins(env)
    for stand_in in stand_ins:
        print(f"[run-function] {stand_in.name} stand-in on {stand_in.url}", file=sys.stderr)
    print(
        f"[run-function] serving handler on http://{args.host}:{args.port}/ "
        f"(PUBSUB_EMULATOR_HOST={env.get('PUBSUB_EMULATOR_HOST', '<unset>')}, "
        f"VERTEX_AI_ENDPOINT={env.get('VERTEX_AI_ENDPOINT', '<default>')})",
        file=sys.stderr,
    )
    # SIGTERM (e.g. from a test or `timeout`) unwinds like Ctrl-C, so the server is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    process = subprocess.Popen(functions_framework(args.port, args.host), env=env, cwd=REPO)
    try:
        return process.wait()
    except KeyboardInterrupt:
        return 130
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        for stand_in in stand_ins:
            stand_in.stop()


if __name__ == "__main__":
    sys.exit(main())

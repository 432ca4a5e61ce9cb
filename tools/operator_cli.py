"""What the operator tools (tools/smoke.py, tools/replay_dead_letters.py) share on the command
line: `--env`/`--stack`, `--workflow`, `--project` and `--allow-other-project`; errors as one
line, `<prog>: error: ...`, exit 2 for what the caller must fix; and the refusal to touch a
project other than the environment's.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from pubsub_rest import ALLOW_FLAG, PubSub, PubSubError, check_project, find_endpoint
from stack_topics import StackError, WorkflowTopics, default_stack_path, load_workflows

USAGE = 2
FAILED = 1
INTERRUPTED = 130


def fail(prog: str, code: int, message: str) -> NoReturn:
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(code)


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line and exit 2, and the shared arguments."""

    def __init__(self, prog: str, description: str) -> None:
        super().__init__(prog=prog, description=description)
        self.add_argument("--env", required=True, help="the environment (config/<env>.toml)")
        self.add_argument(
            "--stack",
            type=Path,
            help="its synthesized JSON (default: cdktf.out/stacks/<env>/cdk.tf.json)",
        )
        self.add_argument("--project", help="the project to act on (default: the environment's)")
        self.add_argument(
            ALLOW_FLAG,
            dest="allow_other_project",
            action="store_true",
            help="act on a project other than the environment's",
        )

    def error(self, message: str) -> NoReturn:
        fail(self.prog, USAGE, message)


@dataclass
class Target:
    project: str
    workflows: list[WorkflowTopics]
    pubsub: PubSub


def connect(prog: str, args: argparse.Namespace, workflow: str | None) -> Target:
    """The environment's workflows (all, or `workflow`) in the project to act on, and a
    Pub/Sub client for it; exits 2 naming the problem (refusing another project) first."""
    stack = args.stack or default_stack_path(args.env)
    try:
        env_project, workflows = load_workflows(stack)
    except StackError as exc:
        fail(prog, USAGE, str(exc))
    if workflow is not None:
        names = [w.workflow for w in workflows]
        if workflow not in names:
            fail(prog, USAGE, f"--workflow: got {workflow!r}, allowed one of {', '.join(names)}")
        workflows = [w for w in workflows if w.workflow == workflow]
    refusal = check_project(env_project, args.project, None, args.allow_other_project)
    if refusal:
        fail(prog, USAGE, refusal)
    project = args.project or env_project
    try:
        endpoint = find_endpoint(project)
    except PubSubError as exc:
        fail(prog, FAILED, str(exc))
    refusal = check_project(env_project, args.project, endpoint, args.allow_other_project)
    if refusal:
        fail(prog, USAGE, refusal)
    if project != env_project:
        workflows = [w.in_project(project) for w in workflows]
    return Target(project, workflows, PubSub(endpoint))

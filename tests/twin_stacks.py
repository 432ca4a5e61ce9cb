"""Stacks for the end-to-end tests against the twin (tests/test_twin_e2e.py,
tests/test_operator_tools.py): synthesized once per session, and a twin that fails (never
skips) when Google's Pub/Sub emulator is missing."""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from environments import FIXTURE_CONFIG_DIR, ROOT, SOURCE_DIR

# The twin is one of the project's tools (tests import tools, never the reverse). Appended, so
# that a tool's module name never shadows anything else.
TOOLS = ROOT / "tools"
if str(TOOLS) not in sys.path:
    sys.path.append(str(TOOLS))

from twin.client import twin_up  # noqa: E402
from twin.emulator import MissingPrerequisite, check_prerequisites  # noqa: E402


@functools.cache
def _stacks_dir() -> Path:
    """Where the stacks are synthesized (made on first use, removed at exit)."""
    directory = Path(tempfile.mkdtemp(prefix="twin-stacks-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory


def _emulator_missing() -> str | None:
    try:
        check_prerequisites()
    except MissingPrerequisite as exc:
        return str(exc)
    return None


@functools.cache
def synthesized(name: str, config: str | None = None) -> Path:
    """cdk.tf.json of tests/fixtures/config/<name>.toml, or of `config` (JSON of a settings
    dict) as environment `name`, synthesized once per session in-process."""
    from ai_workflow.source_bundle import build_source_bundle
    from ai_workflow_app import load_environments
    from ai_workflow_app.config import parse_environment
    from ai_workflow_app.synth import synth_app

    if config is None:
        envs = load_environments([FIXTURE_CONFIG_DIR / f"{name}.toml"])
    else:
        envs = [parse_environment(name, "generated", json.loads(config))]
    outdir = _stacks_dir() / name
    synth_app(envs, build_source_bundle(SOURCE_DIR), outdir)
    return outdir / "stacks" / name / "cdk.tf.json"


def start_twin(directory: Path, stack: Path, *options: str) -> Any:
    """twin_up, failing (not skipping) when the emulator is missing: it is a prerequisite of
    this project's machines and CI, and the message says what to install."""
    problem = _emulator_missing()
    if problem:
        pytest.fail(f"the twin needs Google's Pub/Sub emulator: {problem}")
    return twin_up(stack, directory, *options)

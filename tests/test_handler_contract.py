"""The stack and the handler agree on the handler's environment variables."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from environments import (
    ENVIRONMENTS,
    EXAMPLE_CONFIG_DIR,
    EXAMPLE_ENVIRONMENTS,
    FIXTURE_CONFIG_DIR,
)
from stack_helpers import resources

from ai_workflow_app import load_environment
from ai_workflow_app.config import literal_handler_environment

ROOT = Path(__file__).resolve().parent.parent


def handler_settings() -> ModuleType:
    """The handler's own settings parser (function_src/workflow_handler/settings.py)."""
    source = str(ROOT / "function_src")
    if source not in sys.path:
        sys.path.append(source)  # appended: `main` stays the cdktf app for other tests
    return importlib.import_module("workflow_handler.settings")


SETTINGS_FILES = [EXAMPLE_CONFIG_DIR / f"{name}.toml" for name in EXAMPLE_ENVIRONMENTS] + [
    FIXTURE_CONFIG_DIR / f"{name}.toml" for name in ENVIRONMENTS
]


@pytest.mark.parametrize(
    "settings_file", SETTINGS_FILES, ids=[p.relative_to(ROOT).as_posix() for p in SETTINGS_FILES]
)
def test_handler_accepts_what_every_workflow_is_given(settings_file: Path) -> None:
    env = load_environment(settings_file)
    for workflow in env.workflows:
        settings = handler_settings().load_settings(literal_handler_environment(env, workflow.name))
        assert set(settings.routes) == set(workflow.routes)


def test_stack_sets_the_same_variables_as_the_local_run(dev: dict) -> None:
    env = load_environment(FIXTURE_CONFIG_DIR / "dev.toml")
    literal = literal_handler_environment(env, "train")
    deployed = resources(dev, "google_cloudfunctions2_function")["train_function"]
    variables = deployed["service_config"]["environment_variables"]
    assert set(variables) == set(literal)
    for key in ("WORKFLOW_NAME", "GCP_PROJECT", "VERTEX_LOCATION", "MAX_EVENT_AGE_SECONDS"):
        assert variables[key] == literal[key]
    assert json.loads(variables["ROUTES"]) == json.loads(literal["ROUTES"])
    assert literal["RESULTS_TOPIC"] == "projects/acme-ai-dev/topics/train-results"
    assert literal["PIPELINE_ROOT"] == "gs://acme-ai-dev-pipeline-root/train"


@pytest.mark.parametrize(("ack", "timeout"), [(10, 2), (20, 6), (32, 10), (600, 10)])
def test_outbound_timeout_fits_three_calls_in_the_ack_deadline(ack: int, timeout: int) -> None:
    from ai_workflow.handler_env import outbound_timeout_seconds

    assert outbound_timeout_seconds(ack) == timeout
    assert 3 * outbound_timeout_seconds(ack) < ack

"""Shared fixtures: each environment is synthesized once per test session, in-process, so
the suite pays for the provider import and jsii start-up once.

Two sets of settings, so a team's own edits to config/ never break the suite:
- tests/fixtures/config/ (FIXTURE_ENVIRONMENTS): copies owned by the tests. Exact
  inventories, IAM sets and snapshots (`synth_outdir`, `stacks`, `dev`, `prod`) use these.
- config/ (EXAMPLE_ENVIRONMENTS, whatever is there): checked by invariant tests that hold
  for any valid settings (`example_outdir`, `example_stacks`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from environments import (
    ENVIRONMENTS,
    EXAMPLE_CONFIG_DIR,
    EXAMPLE_ENVIRONMENTS,
    FIXTURE_CONFIG_DIR,
    ROOT,
    SCALE_WORKFLOWS,
    SOURCE_DIR,
    generated_environment,
)

import cdktf_fastsynth

# jsii uses the Node 22 that package.json pins, as `make` does.
_node = ROOT / "node_modules" / ".bin" / "node"
if _node.exists():
    os.environ.setdefault("JSII_NODE", str(_node))

# The suite synthesizes the way the app does: opted in to the speed-ups, before any test
# imports cdktf (tests/test_layers.py checks, in fresh processes, that the library alone
# changes nothing).
cdktf_fastsynth.enable()


def load_stack(outdir: Path, env: str) -> dict[str, Any]:
    return json.loads((outdir / "stacks" / env / "cdk.tf.json").read_text())


def _synth(config_dir: Path, names: tuple[str, ...], outdir: Path) -> Path:
    from ai_workflow.source_bundle import build_source_bundle
    from ai_workflow_app import load_environments
    from ai_workflow_app.synth import synth_app

    envs = load_environments([config_dir / f"{name}.toml" for name in names])
    synth_app(envs, build_source_bundle(SOURCE_DIR), outdir)
    return outdir


@pytest.fixture(scope="session")
def synth_outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cdktf.out-like directory holding the test-owned environments (tests/fixtures/config)."""
    return _synth(FIXTURE_CONFIG_DIR, ENVIRONMENTS, tmp_path_factory.mktemp("cdktf.out"))


@pytest.fixture(scope="session")
def example_outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cdktf.out-like directory holding every environment in config/, as `make synth` does."""
    outdir = tmp_path_factory.mktemp("cdktf.out-examples")
    return _synth(EXAMPLE_CONFIG_DIR, EXAMPLE_ENVIRONMENTS, outdir)


@pytest.fixture(scope="session")
def example_stacks(example_outdir: Path) -> dict[str, dict[str, Any]]:
    return {env: load_stack(example_outdir, env) for env in EXAMPLE_ENVIRONMENTS}


@pytest.fixture(scope="session")
def scale_outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cdktf.out-like directory holding one `scale` stack of SCALE_WORKFLOWS workflows."""
    from ai_workflow.source_bundle import build_source_bundle
    from ai_workflow_app.config import parse_environment
    from ai_workflow_app.synth import synth_app

    env = parse_environment("scale", "generated", generated_environment(SCALE_WORKFLOWS))
    outdir = tmp_path_factory.mktemp("cdktf.out-scale")
    synth_app([env], build_source_bundle(SOURCE_DIR), outdir)
    return outdir


@pytest.fixture(scope="session")
def stacks(synth_outdir: Path) -> dict[str, dict[str, Any]]:
    return {env: load_stack(synth_outdir, env) for env in ENVIRONMENTS}


@pytest.fixture(scope="session")
def dev(stacks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return stacks["dev"]


@pytest.fixture(scope="session")
def prod(stacks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return stacks["prod"]


@pytest.fixture(scope="session")
def backend_json_outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One stack per backend kind and variant (backend_cases.EXPECTED_BLOCKS), as JSON."""
    from backend_cases import synth_backend_stacks

    return synth_backend_stacks(tmp_path_factory.mktemp("backends-json"), hcl_output=False)


@pytest.fixture(scope="session")
def backend_hcl_outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same stacks as HCL (`cdktf synth --hcl` through the library)."""
    from backend_cases import synth_backend_stacks

    return synth_backend_stacks(tmp_path_factory.mktemp("backends-hcl"), hcl_output=True)

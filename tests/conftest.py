"""Shared fixtures: each environment is synthesized once per test session, in-process, so
the suite pays for the provider import and jsii start-up once."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "config"
SOURCE_DIR = ROOT / "function_src"
ENVIRONMENTS = ("dev", "prod")

# jsii uses the Node 22 that package.json pins, as `make` does.
_node = ROOT / "node_modules" / ".bin" / "node"
if _node.exists():
    os.environ.setdefault("JSII_NODE", str(_node))


def load_stack(outdir: Path, env: str) -> dict[str, Any]:
    return json.loads((outdir / "stacks" / env / "cdk.tf.json").read_text())


@pytest.fixture(scope="session")
def synth_outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cdktf.out-like directory holding the synthesized example environments."""
    from ai_workflow import load_environments
    from ai_workflow.source_bundle import build_source_bundle
    from ai_workflow.synth import synth_app

    envs = load_environments([CONFIG_DIR / f"{name}.toml" for name in ENVIRONMENTS])
    outdir = tmp_path_factory.mktemp("cdktf.out")
    synth_app(envs, build_source_bundle(SOURCE_DIR), outdir)
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

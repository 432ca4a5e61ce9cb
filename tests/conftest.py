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
SCALE_WORKFLOWS = 100

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


def generated_environment(workflows: int) -> dict[str, Any]:
    """`workflows` workflows in chains of five, like a long data -> train -> predict line."""
    items = []
    for i in range(workflows):
        item: dict[str, Any] = {
            "name": f"wf{i:03d}",
            "routes": {
                f"step{i}.run": {
                    "template_uri": f"https://europe-west4-kfp.pkg.dev/p/r/step{i}/v1",
                    "result_event_type": f"step{i + 1}.run",
                }
            },
        }
        if i % 5:
            item["trigger"] = f"wf{i - 1:03d}"
        items.append(item)
    return {"project_id": "acme-ai-scale", "region": "europe-west4", "workflows": items}


@pytest.fixture(scope="session")
def scale_outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cdktf.out-like directory holding one `scale` stack of SCALE_WORKFLOWS workflows."""
    from ai_workflow.config import parse_environment
    from ai_workflow.source_bundle import build_source_bundle
    from ai_workflow.synth import synth_app

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

"""Environments with one [backend] of each kind, for the backend and Terraform tests.

Each is the test-owned dev settings with a `[backend]` table (and the test-owned prod, which
uses gcs). `EXPECTED_BLOCKS` is what each writes under "terraform" besides
required_providers, in cdktf's own shape (what the deploy scope reads from the JSON).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from environments import FIXTURE_CONFIG_DIR, ROOT, SOURCE_DIR

from ai_workflow_app.config import EnvironmentConfig, parse_environment

DEV = tomllib.loads((FIXTURE_CONFIG_DIR / "dev.toml").read_text())
PROD = tomllib.loads((FIXTURE_CONFIG_DIR / "prod.toml").read_text())

# One environment per kind and variant: name -> [backend] table (None: no table).
BACKENDS: dict[str, dict[str, Any] | None] = {
    "dev": None,
    "local-path": {"kind": "local", "path": "state/local-path.tfstate"},
    "gcs-default": {"kind": "gcs", "bucket": "acme-ai-tfstate"},
    "cloud-named": {
        "kind": "cloud",
        "organization": "acme",
        "workspace": "ai-workflows-cloud-named",
        "project": "ML Platform",
        "hostname": "tfe.acme.example",
    },
    "cloud-tagged": {
        "kind": "cloud",
        "organization": "acme",
        "workspace_tags": ["ai-workflows", "env:cloud-tagged"],
    },
}
EXPECTED_BLOCKS: dict[str, dict[str, Any]] = {
    "dev": {"backend": {"local": {"path": "../../../terraform.dev.tfstate"}}},
    "local-path": {"backend": {"local": {"path": "../../../state/local-path.tfstate"}}},
    "gcs-default": {"backend": {"gcs": {"bucket": "acme-ai-tfstate", "prefix": "gcs-default"}}},
    "cloud-named": {
        "cloud": {
            "organization": "acme",
            "hostname": "tfe.acme.example",
            "workspaces": {"name": "ai-workflows-cloud-named", "project": "ML Platform"},
        }
    },
    "cloud-tagged": {
        "cloud": {
            "organization": "acme",
            "workspaces": {"tags": ["ai-workflows", "env:cloud-tagged"]},
        }
    },
    "prod": {"backend": {"gcs": {"bucket": "acme-ai-prod-tfstate", "prefix": "ai-workflows/prod"}}},
}
KIND = {
    name: next(iter(block["backend"])) if "backend" in block else "cloud"
    for name, block in EXPECTED_BLOCKS.items()
}


def environment(name: str, backend: dict[str, Any] | None, **top: Any) -> EnvironmentConfig:
    data = copy.deepcopy(PROD if name == "prod" else DEV)
    if backend is not None:
        data["backend"] = backend
    data.update(top)
    return parse_environment(name, f"config/{name}.toml", data)


def synth_backend_stacks(outdir: Path, hcl_output: bool) -> Path:
    """One stack per entry of EXPECTED_BLOCKS in `outdir`, from the settings files that
    `write_config_files` writes beside it. JSON: in-process. HCL: as `cdktf synth --hcl`
    runs the app, main.py with SYNTH_HCL_OUTPUT=true (each cdktf stack reads only that)."""
    config_dir = outdir.parent / f"{outdir.name}-config"
    write_config_files(config_dir)
    if hcl_output:
        subprocess.run(
            [sys.executable, "main.py", "--config-dir", str(config_dir), "--outdir", str(outdir)],
            cwd=ROOT,
            env={**os.environ, "SYNTH_HCL_OUTPUT": "true"},
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        return outdir
    from ai_workflow.source_bundle import build_source_bundle
    from ai_workflow_app import load_environments
    from ai_workflow_app.synth import synth_app

    envs = load_environments(sorted(config_dir.glob("*.toml")))
    synth_app(envs, build_source_bundle(SOURCE_DIR), outdir)
    return outdir


def write_config_files(config_dir: Path) -> None:
    """config/<env>.toml for every entry of EXPECTED_BLOCKS: the fixture's text with the
    [backend] table appended (its values are strings and lists of strings, which JSON and
    TOML write alike). Every environment but prod shares dev's project, so the project ids
    are made unique."""
    config_dir.mkdir()
    dev = (FIXTURE_CONFIG_DIR / "dev.toml").read_text()
    for name, backend in BACKENDS.items():
        text = dev if name == "dev" else dev.replace("acme-ai-dev", f"acme-ai-{name}")
        if backend is not None:
            text += "\n[backend]\n" + "".join(
                f"{k} = {json.dumps(v)}\n" for k, v in backend.items()
            )
        (config_dir / f"{name}.toml").write_text(text)
    (config_dir / "prod.toml").write_text((FIXTURE_CONFIG_DIR / "prod.toml").read_text())

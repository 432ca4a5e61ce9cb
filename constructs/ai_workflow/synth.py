"""Synthesize environments into cdktf.out without ever leaving a half-written result.

Everything is validated first, then synthesized into a sibling temporary directory, the
function source zip is written next to each stack, and only then the new output replaces
the old one. `terraform init` state inside a stack directory (.terraform/ and the lock
file) is carried over, so a re-synth does not force a re-init.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .config import EnvironmentConfig
from .source_bundle import SourceBundle, build_source_bundle

CARRIED_OVER = (".terraform", ".terraform.lock.hcl")


def synth_app(envs: Sequence[EnvironmentConfig], bundle: SourceBundle, outdir: Path) -> None:
    """Synthesize `envs` into `outdir` (which must be new or empty)."""
    from cdktf import App

    from .stack import ASSET_DIR, AiWorkflowStack

    app = App(outdir=str(outdir))
    for env in envs:
        AiWorkflowStack(app, env, bundle)
    app.synth()
    for env in envs:
        asset_dir = outdir / "stacks" / env.name / ASSET_DIR
        asset_dir.mkdir(parents=True, exist_ok=True)
        (asset_dir / bundle.file_name).write_bytes(bundle.data)


def synth_environments(
    envs: Sequence[EnvironmentConfig], source_dir: Path, outdir: Path
) -> list[Path]:
    """Synthesize into a temp dir, then swap it in; returns the stack JSON paths."""
    bundle = build_source_bundle(source_dir)
    outdir = outdir.resolve()
    outdir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.new-", dir=outdir.parent))
    try:
        synth_app(envs, bundle, staging)
        _carry_over_terraform_state(outdir, staging)
        _replace(outdir, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [outdir / "stacks" / env.name / "cdk.tf.json" for env in envs]


def _carry_over_terraform_state(old: Path, new: Path) -> None:
    stacks = old / "stacks"
    if not stacks.is_dir():
        return
    for stack_dir in stacks.iterdir():
        target = new / "stacks" / stack_dir.name
        if not target.is_dir():
            continue
        for name in CARRIED_OVER:
            if (stack_dir / name).exists():
                os.replace(stack_dir / name, target / name)


def _replace(outdir: Path, staging: Path) -> None:
    """Swap staging into place with renames; the old output is removed last."""
    retired = None
    if outdir.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.old-", dir=outdir.parent))
        os.replace(outdir, retired / "out")
    os.replace(staging, outdir)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)

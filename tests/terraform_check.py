"""Terraform's own verdict on a synthesized stack, offline when it has to be.

`terraform init -backend=false` parses and decodes the whole configuration before it looks
for providers. With no network, a stack Terraform accepts therefore fails *only* with the
provider-download errors below; any other error is a configuration Terraform rejects. Where
the providers can be installed (a user's machine, their CI), `terraform validate` runs too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# `init -json` (machine-readable diagnostics) arrived in Terraform 1.9.0.
MIN_VERSION = (1, 9, 0)
# The switch .ci/run sets: a missing or too old terraform fails the tests instead of skipping.
REQUIRE_SWITCH = "AI_WORKFLOW_REQUIRE_TERRAFORM"
# What init reports when it cannot reach the provider registry: the only acceptable errors.
PROVIDER_DOWNLOAD_ERRORS = frozenset(
    {"Failed to query available provider packages", "Failed to install provider"}
)
# Left behind by `terraform init`; never part of what is checked.
_INIT_LEFTOVERS = (".terraform", ".terraform.lock.hcl")


@dataclass
class TerraformVerdict:
    """What Terraform said about one stack directory."""

    rejected: list[str] = field(default_factory=list)
    """Errors other than provider download: each one `summary [where]: detail`."""
    download_errors: list[str] = field(default_factory=list)
    """Provider-download errors (expected offline)."""
    validated: bool = False
    """True when providers were installed and `terraform validate` ran."""


def terraform_version(binary: str) -> tuple[int, int, int]:
    out = subprocess.run(
        [binary, "version", "-json"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    major, minor, patch = re.findall(r"\d+", json.loads(out)["terraform_version"])[:3]
    return int(major), int(minor), int(patch)


def _diagnostics(output: str) -> list[dict[str, Any]]:
    """Error diagnostics from `-json` output (non-JSON lines are ignored)."""
    found = []
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        message = json.loads(line)
        diagnostic = message.get("diagnostic")
        if message.get("type") == "diagnostic" and diagnostic.get("severity") == "error":
            found.append(diagnostic)
    return found


def _describe(diagnostic: dict[str, Any]) -> str:
    summary = diagnostic["summary"].splitlines()[0]
    where = (diagnostic.get("snippet") or {}).get("context") or ""
    detail = " ".join(diagnostic.get("detail", "").split())
    return f"{summary}{f' [{where}]' if where else ''}: {detail}"


def check_stack(
    binary: str, stack_dir: Path, work_dir: Path, plugin_cache: Path
) -> TerraformVerdict:
    """Copy `stack_dir` to `work_dir` (without init leftovers) and let Terraform judge it.

    The CLI configuration is an empty file and the plugin cache a directory the caller owns,
    so nothing from this machine's Terraform set-up (mirrors, a warm cache) changes the verdict.
    """
    shutil.copytree(stack_dir, work_dir, ignore=shutil.ignore_patterns(*_INIT_LEFTOVERS))
    cli_config = work_dir.parent / f"{work_dir.name}.terraformrc"
    cli_config.write_text("")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TF_")},
        "TF_CLI_CONFIG_FILE": str(cli_config),
        "TF_PLUGIN_CACHE_DIR": str(plugin_cache),
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [binary, *args], cwd=work_dir, env=env, capture_output=True, text=True, timeout=600
        )

    verdict = TerraformVerdict()
    init = run("init", "-backend=false", "-input=false", "-json")
    for diagnostic in _diagnostics(init.stdout + init.stderr):
        if diagnostic["summary"] in PROVIDER_DOWNLOAD_ERRORS:
            verdict.download_errors.append(_describe(diagnostic))
        else:
            verdict.rejected.append(_describe(diagnostic))
    if init.returncode != 0 and not verdict.rejected and not verdict.download_errors:
        verdict.rejected.append(f"terraform init exited {init.returncode}: {init.stderr.strip()}")
    if init.returncode == 0:
        validate = run("validate", "-json")
        report = json.loads(validate.stdout)
        verdict.validated = True
        verdict.rejected += [
            _describe(d) for d in report.get("diagnostics", []) if d.get("severity") == "error"
        ]
    return verdict

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
from collections.abc import Callable
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
# What `terraform init` (with the backend) reports once it has decoded the backend or cloud
# block and goes on to use it, with no network and no credentials: the block is accepted.
BACKEND_REACHED_ERRORS = {
    # local: the backend is configured, then the providers cannot be downloaded.
    "local": PROVIDER_DOWNLOAD_ERRORS,
    # gcs: no Application Default Credentials (or, with some, no network to list the bucket).
    "gcs": frozenset({"storage.NewClient() failed", "Failed to get existing workspaces"}),
    # cloud: the host's service discovery (or, online, the missing API token).
    "cloud": frozenset(
        {"Failed to request discovery document", "Required token could not be found"}
    ),
}
# Left behind by `terraform init`; never part of what is checked.
_INIT_LEFTOVERS = (".terraform", ".terraform.lock.hcl")


@dataclass
class TerraformVerdict:
    """What Terraform said about one stack directory."""

    rejected: list[str] = field(default_factory=list)
    """Errors other than provider download: each one `summary [where]: detail`."""
    download_errors: list[str] = field(default_factory=list)
    """The errors expected offline: provider download (for a backend init, the backend's
    own service: BACKEND_REACHED_ERRORS)."""
    validated: bool = False
    """True when providers were installed and `terraform validate` ran."""
    warnings: list[str] = field(default_factory=list)
    """Warning diagnostics, each one `summary [where]: detail`."""
    backend_configured: bool = False
    """True when init said it configured the backend (only a backend init does)."""


def terraform_version(binary: str) -> tuple[int, int, int]:
    out = subprocess.run(
        [binary, "version", "-json"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    major, minor, patch = re.findall(r"\d+", json.loads(out)["terraform_version"])[:3]
    return int(major), int(minor), int(patch)


def _diagnostics(output: str, severity: str = "error") -> list[dict[str, Any]]:
    """Diagnostics of `severity` from `-json` output (non-JSON lines are ignored)."""
    found = []
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        message = json.loads(line)
        diagnostic = message.get("diagnostic")
        if message.get("type") == "diagnostic" and diagnostic.get("severity") == severity:
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
    """Copy `stack_dir` to `work_dir` (without init leftovers) and let Terraform judge it:
    `terraform init -backend=false`, then `terraform validate` if the providers installed."""
    run = _runner(binary, stack_dir, work_dir, plugin_cache)
    init = run("init", "-backend=false", "-input=false", "-json")
    verdict = _judge(init, PROVIDER_DOWNLOAD_ERRORS)
    if init.returncode == 0:
        validate = run("validate", "-json")
        report = json.loads(validate.stdout)
        verdict.validated = True
        verdict.rejected += [
            _describe(d) for d in report.get("diagnostics", []) if d.get("severity") == "error"
        ]
    return verdict


def check_backend(
    binary: str, stack_dir: Path, work_dir: Path, plugin_cache: Path, kind: str
) -> TerraformVerdict:
    """`terraform init` *with* the backend, on a copy of `stack_dir`: Terraform decodes the
    `backend` or `cloud` block (unknown arguments, both workspace name and tags, ...) before
    it uses it. Without network or credentials, an accepted block of `kind` fails only with
    BACKEND_REACHED_ERRORS[kind] (`download_errors`); anything else is `rejected`. Google
    credentials and API tokens of this machine are hidden, so the verdict is the same on
    every machine without network."""
    home = work_dir.parent / f"{work_dir.name}.home"
    home.mkdir()
    hidden = ("GOOGLE_", "CLOUDSDK_", "TF_TOKEN_")
    run = _runner(
        binary,
        stack_dir,
        work_dir,
        plugin_cache,
        drop=hidden,
        extra={"HOME": str(home), "CLOUDSDK_CONFIG": str(home / "gcloud")},
    )
    init = run("init", "-input=false", "-json")
    verdict = _judge(init, BACKEND_REACHED_ERRORS[kind])
    verdict.backend_configured = "Successfully configured the backend" in init.stdout
    return verdict


def _runner(
    binary: str,
    stack_dir: Path,
    work_dir: Path,
    plugin_cache: Path,
    drop: tuple[str, ...] = (),
    extra: dict[str, str] | None = None,
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Copy `stack_dir` to `work_dir` (without init leftovers); run terraform there with an
    empty CLI configuration and the caller's plugin cache, so nothing from this machine's
    Terraform set-up (mirrors, a warm cache) changes the verdict."""
    shutil.copytree(stack_dir, work_dir, ignore=shutil.ignore_patterns(*_INIT_LEFTOVERS))
    cli_config = work_dir.parent / f"{work_dir.name}.terraformrc"
    cli_config.write_text("")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TF_", *drop))},
        "TF_CLI_CONFIG_FILE": str(cli_config),
        "TF_PLUGIN_CACHE_DIR": str(plugin_cache),
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
        **(extra or {}),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [binary, *args], cwd=work_dir, env=env, capture_output=True, text=True, timeout=600
        )

    return run


def _judge(init: subprocess.CompletedProcess[str], expected: frozenset[str]) -> TerraformVerdict:
    """Sort init's errors into the `expected` ones (a summary in it, or starting with one
    of it followed by ":") and the rest."""
    verdict = TerraformVerdict()
    output = init.stdout + init.stderr
    for diagnostic in _diagnostics(output):
        summary = diagnostic["summary"]
        if summary in expected or summary.split(":")[0] in expected:
            verdict.download_errors.append(_describe(diagnostic))
        else:
            verdict.rejected.append(_describe(diagnostic))
    verdict.warnings = [_describe(d) for d in _diagnostics(output, "warning")]
    if init.returncode != 0 and not verdict.rejected and not verdict.download_errors:
        verdict.rejected.append(f"terraform init exited {init.returncode}: {init.stderr.strip()}")
    return verdict

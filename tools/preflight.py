"""Before `make plan/deploy/destroy` runs Terraform: is everything it needs there?

    .venv/bin/python tools/preflight.py --env dev [--config-dir config] [--outdir cdktf.out]

Checks, all of them every time, and prints one line per missing piece (what to do), exit 2:

1. `terraform` is on PATH at a supported version (>= 1.5, < 2; from `terraform version -json`);
2. the stack is current: `cdktf.out/stacks/<env>` holds exactly what the settings and the code
   synthesize now (`cdk.tf.json` and the zip under `assets/`, compared byte for byte with a
   fresh synth in a temp directory; `.terraform/` and the lock file are not compared);
3. credentials for the stack's backend (read from its `cdk.tf.json`) and the provider:
   - local or gcs backend: Google Application Default Credentials, i.e.
     GOOGLE_APPLICATION_CREDENTIALS (a readable file), GOOGLE_CREDENTIALS,
     GOOGLE_OAUTH_ACCESS_TOKEN, gcloud's `application_default_credentials.json` (in
     CLOUDSDK_CONFIG, default `~/.config/gcloud`), or GCE_METADATA_HOST (on Google Cloud,
     where the metadata server supplies them);
   - cloud backend: a Terraform Cloud token for its hostname (see tfc_credentials.py). The
     plan runs remotely with the workspace's variables, so no local Google credentials.
All good: one line on stdout, exit 0.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stack_backend import read_backend
from stack_files import STACK_FILE, StackFilesError, workspace_files
from tfc_credentials import CDKTF_TOKEN_VARIABLE, find_token, token_variable

MIN_TERRAFORM = (1, 5)
BELOW_TERRAFORM = (2, 0)
SUPPORTED = "Terraform >= 1.5 and < 2"
ADC_FILE = "application_default_credentials.json"


class OneLineParser(argparse.ArgumentParser):
    """A bad argument is one line naming the tool, exit 2 (the deploy tools share it)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


# --- 1. terraform ---------------------------------------------------------------------------


def terraform_problems(environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """(version found, problems)."""
    binary = shutil.which("terraform", path=environ.get("PATH", ""))
    if binary is None:
        return "", [f"terraform is not on PATH: install {SUPPORTED}"]
    try:
        result = subprocess.run(
            [binary, "version", "-json"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**environ, "CHECKPOINT_DISABLE": "1"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "", [f"{binary} version -json did not run ({exc}): install {SUPPORTED}"]
    try:
        version = str(json.loads(result.stdout)["terraform_version"])
    except (ValueError, KeyError, TypeError):
        first = (result.stdout or result.stderr).strip().splitlines()[:1]
        said = f": {first[0]!r}" if first else ""
        return "", [f"{binary} version -json printed no version{said}: install {SUPPORTED}"]
    numbers = tuple(int(n) for n in re.findall(r"\d+", version)[:2])
    if not MIN_TERRAFORM <= numbers < BELOW_TERRAFORM:
        return version, [f"terraform {version} is not supported: install {SUPPORTED}"]
    return version, []


# --- 2. the stack is current ----------------------------------------------------------------


def stack_problems(env: str, config_dir: Path, outdir: Path, source_dir: Path) -> list[str]:
    """Problems with `outdir/stacks/<env>` against a fresh synth of `config_dir/<env>.toml`."""
    config = config_dir / f"{env}.toml"
    if not config.is_file():
        known = ", ".join(sorted(p.stem for p in config_dir.glob("*.toml"))) or "none"
        return [f"ENV: got {env!r}, allowed one of {known} ({config_dir.as_posix()}/<env>.toml)"]
    stack_dir = outdir / "stacks" / env
    shown = stack_dir.as_posix()
    if not (stack_dir / STACK_FILE).is_file():
        return [f"{shown}/{STACK_FILE} does not exist: run make synth ENV={env}"]
    from ai_workflow import ConfigError

    try:
        fresh = synthesized_files(env, config, source_dir)
    except ConfigError as exc:
        return list(exc.problems)
    except FileNotFoundError as exc:
        return [str(exc)]
    try:
        present = workspace_files(stack_dir)
    except StackFilesError as exc:
        return [f"{shown}: {exc}: run make synth ENV={env}"]
    differs = sorted(
        name for name in fresh.keys() | present.keys() if fresh.get(name) != present.get(name)
    )
    if differs:
        return [
            f"{shown} is not what {config.as_posix()} and the code synthesize now "
            f"(differs: {', '.join(differs)}): run make synth ENV={env}"
        ]
    return []


def synthesized_files(env: str, config: Path, source_dir: Path) -> dict[str, bytes]:
    """What `make synth ENV=<env>` would write for `config`, synthesized in a temp directory."""
    from ai_workflow.source_bundle import build_source_bundle
    from ai_workflow_app import load_environments

    envs = load_environments([config])
    import cdktf_fastsynth

    cdktf_fastsynth.enable()
    from ai_workflow_app.synth import synth_app

    with tempfile.TemporaryDirectory(prefix="preflight-") as tmp:
        synth_app(envs, build_source_bundle(source_dir), Path(tmp))
        return workspace_files(Path(tmp) / "stacks" / env)


# --- 3. credentials -------------------------------------------------------------------------


def google_credentials(environ: Mapping[str, str], home: Path) -> tuple[str, list[str]]:
    """(where Application Default Credentials come from, problems)."""
    key_file = environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if key_file:
        if os.path.isfile(key_file) and os.access(key_file, os.R_OK):
            return "GOOGLE_APPLICATION_CREDENTIALS", []
        return "", [
            f"GOOGLE_APPLICATION_CREDENTIALS: got {key_file!r}, allowed a readable "
            "credentials file (or unset it to use gcloud's application default credentials)"
        ]
    for variable in ("GOOGLE_CREDENTIALS", "GOOGLE_OAUTH_ACCESS_TOKEN"):
        if environ.get(variable):
            return variable, []
    gcloud_dir = Path(environ.get("CLOUDSDK_CONFIG") or home / ".config" / "gcloud")
    adc = gcloud_dir / ADC_FILE
    if adc.is_file() and os.access(adc, os.R_OK):
        return str(adc), []
    if environ.get("GCE_METADATA_HOST"):
        return "the metadata server (GCE_METADATA_HOST)", []
    return "", [
        "no Google credentials: run gcloud auth application-default login, "
        "or set GOOGLE_APPLICATION_CREDENTIALS"
    ]


def credential_problems(
    stack: Mapping[str, Any], environ: Mapping[str, str], home: Path
) -> tuple[str, list[str]]:
    """(backend and credentials found, problems) for the stack's backend and provider."""
    backend = read_backend(stack)
    if backend.cloud is None:
        source, problems = google_credentials(environ, home)
        return (
            f"{backend.kind} backend, Google credentials from {source}" if source else ""
        ), problems
    cloud = backend.cloud
    problems = []
    if not cloud.resolved_organization(environ):
        problems.append(
            "the stack's cloud block names no organization: set one in its backend settings, "
            "or export TF_CLOUD_ORGANIZATION"
        )
    if not (cloud.resolved_workspace(environ) or cloud.tags):
        problems.append(
            "the stack's cloud block names no workspace (name or tags): set one in its "
            "backend settings, or export TF_WORKSPACE"
        )
    host = cloud.resolved_hostname(environ)
    token = find_token(host, environ, home)
    if token is not None:
        found = f"cloud backend on {host}, token from {token.source}"
        return ("" if problems else found), problems
    variable = token_variable(host)
    problem = f"no Terraform Cloud token for {host}: run terraform login {host}, or set {variable}"
    if environ.get(CDKTF_TOKEN_VARIABLE):
        problem += (
            f" ({CDKTF_TOKEN_VARIABLE} is set, but terraform does not read it: "
            f'export {variable}="${CDKTF_TOKEN_VARIABLE}")'
        )
    return "", [*problems, problem]


# --- the command ----------------------------------------------------------------------------


def preflight(
    env: str, config_dir: Path, outdir: Path, source_dir: Path, environ: Mapping[str, str]
) -> tuple[str, list[str]]:
    """(summary, problems): every check, in order."""
    version, problems = terraform_problems(environ)
    problems += stack_problems(env, config_dir, outdir, source_dir)
    stack_path = outdir / "stacks" / env / STACK_FILE
    try:
        stack = json.loads(stack_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "", problems  # no stack to read a backend from: said above
    found, missing = credential_problems(stack, environ, Path(environ.get("HOME") or Path.home()))
    summary = f"{env} ready: terraform {version}, {stack_path.parent.as_posix()} current, {found}"
    return summary, problems + missing


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="preflight", description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True, help="the environment (config/<env>.toml)")
    parser.add_argument("--config-dir", type=Path, default=Path("config"))
    parser.add_argument("--outdir", type=Path, default=Path("cdktf.out"))
    parser.add_argument("--source-dir", type=Path, default=Path("function_src"))
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    summary, problems = preflight(
        args.env, args.config_dir, args.outdir, args.source_dir, os.environ
    )
    for problem in problems:
        print(f"preflight: {problem}", file=sys.stderr)
    if problems:
        return 2
    print(f"preflight: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

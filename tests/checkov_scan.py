"""Running checkov 3.3.30 (.venv-checkov, from requirements-checkov.txt) on synthesized stacks
and reading its JSON report as findings: which check passed or failed on which resource.

Offline (`--skip-download`), framework `terraform_json`, this project's own checks added
(tests/checkov_checks), nothing skipped. checkov names a resource `resource.<name>` without
its type, so the type is read from the stack file at the line the finding starts on.
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from environments import ROOT

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
OWN_CHECKS = ROOT / "tests" / "checkov_checks"
ALLOWED_FILE = ROOT / "tests" / "checkov_allowed.toml"
ALLOWED_KEYS = {"check", "resource_type", "address", "reason"}
SCANNED_TYPES = (
    "google_storage_bucket",
    "google_pubsub_topic",
    "google_pubsub_subscription",
    "google_cloudfunctions2_function",
    "google_artifact_registry_repository",
)
"""Every resource of these types must have been checked (checkov's resource_count stays 0
for terraform_json, and a file it cannot parse is skipped with exit 0: checkov #7454)."""
STRICT_ENVIRONMENTS = ("prod",)
"""Environments that must pass every check: no allowed findings."""

_TYPE_LINE = re.compile(r'^    "([a-z0-9_]+)": \{$')
_NAME_LINE = re.compile(r'^      "([^"]+)": \{$')


@dataclass(frozen=True)
class Finding:
    environment: str
    check: str
    resource_type: str
    address: str
    """The resource's name in the stack (`google_<type>.<address>` in Terraform)."""
    passed: bool


@dataclass(frozen=True)
class Allowed:
    check: str
    resource_type: str
    address: str
    reason: str

    def covers(self, finding: Finding) -> bool:
        return (
            finding.check == self.check
            and finding.resource_type == self.resource_type
            and fnmatch.fnmatchcase(finding.address, self.address)
        )


@dataclass(frozen=True)
class Scan:
    summary: dict[str, Any]
    findings: list[Finding]
    returncode: int

    def of(self, environment: str) -> list[Finding]:
        return [f for f in self.findings if f.environment == environment]


def run_checkov(outdir: Path, environments: Iterable[str]) -> Scan:
    """checkov on `outdir`/stacks/<env>/cdk.tf.json for each environment, in one run."""
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV.relative_to(ROOT)} is missing: `make pytest` installs it")
    files = [f"stacks/{env}/cdk.tf.json" for env in environments]
    result = subprocess.run(
        [
            str(CHECKOV),
            "--skip-download",
            "--framework",
            "terraform_json",
            "--external-checks-dir",
            str(OWN_CHECKS),
            "-o",
            "json",
            "-f",
            *files,
        ],
        cwd=outdir,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    # 0: nothing failed, 1: something failed; anything else is checkov itself failing.
    assert result.returncode in (0, 1), result.stderr[-3000:]
    report = json.loads(result.stdout)
    if isinstance(report, list):  # one report per framework; only terraform_json runs
        (report,) = report
    assert report.get("check_type", "terraform_json") == "terraform_json", report
    results = report.get("results", {})
    findings = [
        finding(outdir, check, passed)
        for passed, key in ((True, "passed_checks"), (False, "failed_checks"))
        for check in results.get(key, [])
    ]
    return Scan(report["summary"], findings, result.returncode)


def finding(outdir: Path, check: dict[str, Any], passed: bool) -> Finding:
    path = check["file_path"].lstrip("/")
    environment = Path(path).parent.name
    kind, address = resource_at(outdir / path, check["file_line_range"][0])
    prefix, _, named = check["resource"].partition(".")
    # checkov's own name for it: `resource.<name>`, or `<type>.<name>` for graph checks.
    assert named == address and prefix in ("resource", kind), (check["resource"], kind, address)
    return Finding(environment, check["check_id"], kind, address, passed)


_line_maps: dict[Path, dict[int, tuple[str, str]]] = {}


def resource_at(path: Path, line: int) -> tuple[str, str]:
    """(type, name) of the resource whose block starts on `line` (1-based) of a stack file
    as cdktf writes it (two-space indents: resource, type, name)."""
    if path not in _line_maps:
        starts: dict[int, tuple[str, str]] = {}
        section, kind = None, None
        for number, text in enumerate(path.read_text().splitlines(), start=1):
            if re.match(r'^  "([a-z_]+)": \{$', text):
                section = text.strip().split('"')[1]
            elif section in ("resource", "data") and (found := _TYPE_LINE.match(text)):
                kind = found.group(1)
            elif section in ("resource", "data") and kind and (found := _NAME_LINE.match(text)):
                starts[number] = (kind, found.group(1))
        _line_maps[path] = starts
    return _line_maps[path][line]


def load_allowed(path: Path = ALLOWED_FILE) -> list[Allowed]:
    entries = tomllib.loads(path.read_text())["allowed"]
    for i, entry in enumerate(entries):
        assert set(entry) == ALLOWED_KEYS, f"{path.name}: allowed[{i}]: keys {sorted(entry)}"
        assert all(isinstance(v, str) and v.strip() for v in entry.values()), entry
    return [Allowed(**entry) for entry in entries]


def unexpected(findings: Iterable[Finding], allowed: list[Allowed]) -> list[Finding]:
    """Failed checks that need an entry and have none (in a strict environment: all)."""
    return [
        f
        for f in findings
        if not f.passed
        and (f.environment in STRICT_ENVIRONMENTS or not any(a.covers(f) for a in allowed))
    ]


def stale(findings: Iterable[Finding], allowed: list[Allowed]) -> list[Allowed]:
    """Entries that cover no failed check of a non-strict environment any more."""
    failed = [f for f in findings if not f.passed and f.environment not in STRICT_ENVIRONMENTS]
    return [a for a in allowed if not any(a.covers(f) for f in failed)]


def unscanned(stack: dict[str, Any], environment: str, findings: list[Finding]) -> set[str]:
    """`type.name` of every SCANNED_TYPES resource of the stack that no check looked at."""
    scanned = {(f.resource_type, f.address) for f in findings if f.environment == environment}
    return {
        f"{kind}.{name}"
        for kind in SCANNED_TYPES
        for name in stack.get("resource", {}).get(kind, {})
        if (kind, name) not in scanned
    }

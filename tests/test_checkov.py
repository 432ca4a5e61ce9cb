"""checkov on every environment's cdk.tf.json: the test-owned ones (tests/fixtures/config)
and whatever config/ holds. prod passes every check; every other environment fails only what
tests/checkov_allowed.toml lists, each entry still needed; nothing is skipped, nothing fails
to parse, and every bucket, topic, subscription, function and repository was checked."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from checkov_scan import (
    ALLOWED_FILE,
    CHECKOV,
    SCANNED_TYPES,
    Allowed,
    Finding,
    Scan,
    load_allowed,
    run_checkov,
    stale,
    unexpected,
    unscanned,
)
from environments import ENVIRONMENTS, EXAMPLE_ENVIRONMENTS, ROOT


@pytest.fixture(scope="module")
def scans(
    synth_outdir: Path, example_outdir: Path
) -> dict[str, tuple[Path, tuple[str, ...], Scan]]:
    """One checkov run per set of environments: the test-owned ones, then config/'s."""
    return {
        source: (outdir, envs, run_checkov(outdir, envs))
        for source, outdir, envs in (
            ("fixtures", synth_outdir, ENVIRONMENTS),
            ("examples", example_outdir, EXAMPLE_ENVIRONMENTS),
        )
    }


SOURCES = ("fixtures", "examples")


def load_stack(outdir: Path, env: str) -> dict[str, Any]:
    return json.loads((outdir / "stacks" / env / "cdk.tf.json").read_text())


@pytest.mark.parametrize("source", SOURCES)
def test_every_stack_parsed_and_nothing_was_skipped(scans: dict, source: str) -> None:
    _, envs, scan = scans[source]
    assert scan.summary["parsing_errors"] == 0
    assert scan.summary["skipped"] == 0
    assert scan.summary["checkov_version"] == "3.3.30"
    # Every file contributed findings: a file checkov could not read would have none.
    assert {f.environment for f in scan.findings} == set(envs)


@pytest.mark.parametrize("source", SOURCES)
def test_every_bucket_topic_subscription_function_and_repository_was_checked(
    scans: dict, source: str
) -> None:
    outdir, envs, scan = scans[source]
    for env in envs:
        stack = load_stack(outdir, env)
        assert all(stack["resource"].get(kind) for kind in SCANNED_TYPES), env
        assert unscanned(stack, env, scan.findings) == set(), env


@pytest.mark.parametrize("source", SOURCES)
def test_prod_passes_every_check(scans: dict, source: str) -> None:
    _, envs, scan = scans[source]
    if "prod" not in envs:
        pytest.skip(f"{source}: config/ has no prod.toml (the test-owned prod is checked)")
    prod = scan.of("prod")
    assert [f for f in prod if not f.passed] == []
    assert len(prod) >= 100


@pytest.mark.parametrize("source", SOURCES)
def test_other_environments_fail_only_what_the_allowed_file_lists(scans: dict, source: str) -> None:
    _, _, scan = scans[source]
    assert unexpected(scan.findings, load_allowed()) == []


def test_every_allowed_entry_is_still_needed(scans: dict) -> None:
    findings = [f for _, _, scan in scans.values() for f in scan.findings]
    assert stale(findings, load_allowed()) == []


def test_the_fixture_dev_fails_exactly_the_expected_checks(scans: dict) -> None:
    """Google-managed keys and no access logs, by design; everything else passes."""
    failed = sorted(
        (f.check, f.resource_type, f.address)
        for f in scans["fixtures"][2].of("dev")
        if not f.passed
    )
    topics = sorted(load_stack(scans["fixtures"][0], "dev")["resource"]["google_pubsub_topic"])
    assert failed == sorted(
        [
            ("CKV_GCP_62", "google_storage_bucket", b)
            for b in ("pipeline_root_bucket", "source_bucket")
        ]
        + [("CKV_GCP_83", "google_pubsub_topic", t) for t in topics]
        + [("CKV_GCP_84", "google_artifact_registry_repository", "function_images")]
    )


def test_nothing_in_the_project_skips_a_check() -> None:
    sources = [
        p
        for folder in ("constructs", "config", "tests/fixtures", "function_src", "main.py")
        for p in ([ROOT / folder] if (ROOT / folder).is_file() else (ROOT / folder).rglob("*"))
        if p.is_file() and p.suffix in (".py", ".toml", ".json")
    ]
    assert sources
    assert [p for p in sources if "checkov:skip" in p.read_text(errors="replace")] == []


# --- the checks on these checks ------------------------------------------------------------------


def dev_finding(check: str, kind: str, address: str, passed: bool = False) -> Finding:
    return Finding("dev", check, kind, address, passed)


def test_a_finding_without_an_entry_is_unexpected_and_an_unused_entry_is_stale() -> None:
    allowed = [
        Allowed("CKV_GCP_83", "google_pubsub_topic", "*", "no CMEK in dev"),
        Allowed("CKV_GCP_62", "google_storage_bucket", "source_bucket", "no access logs"),
    ]
    topic = dev_finding("CKV_GCP_83", "google_pubsub_topic", "train_results_topic")
    other_bucket = dev_finding("CKV_GCP_62", "google_storage_bucket", "pipeline_root_bucket")
    in_prod = Finding("prod", "CKV_GCP_83", "google_pubsub_topic", "train_results_topic", False)
    assert unexpected([topic, other_bucket, in_prod], allowed) == [other_bucket, in_prod]
    assert stale([topic, other_bucket, in_prod], allowed) == [allowed[1]]
    # A passed check needs nothing and keeps no entry alive.
    assert stale([dev_finding("CKV_GCP_83", "google_pubsub_topic", "t", passed=True)], allowed) == (
        allowed
    )


def test_an_unchecked_resource_is_reported() -> None:
    stack = {"resource": {"google_pubsub_subscription": {"a": {}, "b": {}}}}
    seen = [dev_finding("CKV_AIWF_1", "google_pubsub_subscription", "a", passed=True)]
    assert unscanned(stack, "dev", seen) == {"google_pubsub_subscription.b"}


def test_the_allowed_file_gives_a_reason_for_every_entry() -> None:
    entries = load_allowed()
    assert entries
    assert all(len(entry.reason) > 20 for entry in entries)
    assert len({(e.check, e.resource_type, e.address) for e in entries}) == len(entries)


def weakened(stack: dict[str, Any]) -> dict[str, Any]:
    """The dev stack with one subscription that expires and one push without OIDC."""
    stack = copy.deepcopy(stack)
    subscriptions = stack["resource"]["google_pubsub_subscription"]
    subscriptions["train_dead_letter_subscription"]["expiration_policy"] = {"ttl": "2678400s"}
    del subscriptions["train_push_subscription"]["push_config"]["oidc_token"]
    return stack


def write_stack(outdir: Path, env: str, text: str) -> None:
    (outdir / "stacks" / env).mkdir(parents=True)
    (outdir / "stacks" / env / "cdk.tf.json").write_text(text)


def test_the_projects_own_checks_fail_a_weakened_subscription(dev: dict, tmp_path: Path) -> None:
    write_stack(tmp_path, "weak", json.dumps(weakened(dev), indent=2, sort_keys=True))
    scan = run_checkov(tmp_path, ["weak"])
    failed = {(f.check, f.address) for f in scan.findings if not f.passed}
    own = {item for item in failed if item[0].startswith("CKV_AIWF")}
    assert own == {
        ("CKV_AIWF_1", "train_dead_letter_subscription"),
        ("CKV_AIWF_2", "train_push_subscription"),
    }


def test_a_stack_checkov_cannot_parse_exits_0_and_is_caught_by_parsing_errors(
    tmp_path: Path,
) -> None:
    """checkov #7454: the exit status alone would call this a pass."""
    write_stack(tmp_path, "broken", '{"resource": {"google_pubsub_topic": {"t": ')
    scan = run_checkov(tmp_path, ["broken"])
    assert scan.returncode == 0
    assert scan.summary["parsing_errors"] == 1
    assert scan.findings == []


def test_requirements_checkov_pins_the_whole_installed_tree() -> None:
    freeze = subprocess.run(
        [str(CHECKOV.parent / "python"), "-m", "pip", "freeze", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    # `name==version` of each requirement line (a hash-locked file adds `--hash` lines).
    pinned = [
        line.split()[0].rstrip("\\")
        for line in (ROOT / "requirements-checkov.txt").read_text().splitlines()
        if line.strip() and not line.startswith(("#", " ", "-"))
    ]
    assert all("==" in line for line in pinned)
    assert sorted(freeze, key=str.lower) == sorted(pinned, key=str.lower)
    assert "checkov==3.3.30" in pinned
    assert ALLOWED_FILE.exists()

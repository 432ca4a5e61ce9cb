"""Terraform itself accepts every synthesized stack (offline: everything but provider download).

Without a terraform binary (>= 1.9) these tests skip and say why, unless
AI_WORKFLOW_REQUIRE_TERRAFORM=1 (set by .ci/run), which turns the skip into a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from backend_cases import EXPECTED_BLOCKS, KIND
from environments import EXAMPLE_ENVIRONMENTS, ROOT
from frameworks import on
from hcl_helpers import addresses, as_stack_shape, parse_hcl
from node_helpers import needs_node
from terraform_check import (
    BACKEND_REACHED_ERRORS,
    MIN_VERSION,
    REQUIRE_SWITCH,
    TerraformVerdict,
    check_backend,
    check_stack,
    terraform_version,
)

Checker = Callable[[Path], TerraformVerdict]

# How a static reference looks in Terraform's JSON syntax: `type.name`, no `${...}`.
STATIC_REFERENCE = re.compile(r"^(data\.)?[a-z][a-z0-9_]*\.[A-Za-z_][A-Za-z0-9_-]*$")


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_SWITCH) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_SWITCH}=1 requires Terraform to run")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def terraform() -> str:
    binary = shutil.which("terraform")
    if binary is None:
        _unavailable("terraform is not on PATH (install Terraform >= 1.9 to check the stacks)")
        raise AssertionError("unreachable")
    version = terraform_version(binary)
    if version < MIN_VERSION:
        wanted = ".".join(map(str, MIN_VERSION))
        _unavailable(f"terraform {'.'.join(map(str, version))} is older than {wanted} (init -json)")
    return binary


@pytest.fixture(scope="session")
def check(terraform: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Checker]:
    """Check a stack directory in a fresh copy, sharing one new, empty plugin cache."""
    root = tmp_path_factory.mktemp("terraform")
    cache = root / "plugin-cache"
    cache.mkdir()
    count = iter(range(1_000_000))

    def run(stack_dir: Path) -> TerraformVerdict:
        return check_stack(terraform, stack_dir, root / f"stack-{next(count)}", cache)

    yield run


@pytest.fixture(scope="session")
def check_with_backend(
    terraform: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[Path, str], TerraformVerdict]]:
    """`terraform init` with the backend of `kind`, on a fresh copy of a stack directory."""
    root = tmp_path_factory.mktemp("terraform-backend")
    cache = root / "plugin-cache"
    cache.mkdir()
    count = iter(range(1_000_000))

    def run(stack_dir: Path, kind: str) -> TerraformVerdict:
        return check_backend(terraform, stack_dir, root / f"stack-{next(count)}", cache, kind)

    yield run


def assert_accepted(verdict: TerraformVerdict) -> None:
    assert verdict.rejected == [], "Terraform rejects the stack:\n" + "\n".join(verdict.rejected)
    # Offline, init must have got as far as the providers; online, validate must have run.
    assert verdict.validated or verdict.download_errors


@pytest.mark.parametrize("env", EXAMPLE_ENVIRONMENTS)
def test_terraform_accepts_example_stack(env: str, example_outdir: Path, check: Checker) -> None:
    """Every environment in config/, whatever it holds."""
    assert_accepted(check(example_outdir / "stacks" / env))


def test_terraform_accepts_100_workflow_stack(scale_outdir: Path, check: Checker) -> None:
    assert_accepted(check(scale_outdir / "stacks" / "scale"))


def _with(stack: dict[str, Any], edit: Callable[[dict[str, Any]], None], at: Path) -> Path:
    changed = json.loads(json.dumps(stack))
    edit(changed)
    at.mkdir()
    (at / "cdk.tf.json").write_text(json.dumps(changed, indent=2))
    return at


def _tokenised_depends_on(stack: dict[str, Any]) -> None:
    bucket = stack["resource"]["google_storage_bucket"]["source_bucket"]
    bucket["depends_on"] = ["${google_project_service.api_run}"]


def _interpolated_backend(stack: dict[str, Any]) -> None:
    stack["terraform"]["backend"]["local"]["path"] = "${google_project_service.api_run.id}"


def _interpolated_provider(stack: dict[str, Any]) -> None:
    bucket = stack["resource"]["google_storage_bucket"]["source_bucket"]
    bucket["provider"] = "${google_project_service.api_run.id}"


def _computed_lifecycle(stack: dict[str, Any]) -> None:
    bucket = stack["resource"]["google_storage_bucket"]["source_bucket"]
    bucket["lifecycle"] = {"prevent_destroy": '${google_project_service.api_run.id != ""}'}


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            _tokenised_depends_on,
            "Invalid expression [resource.google_storage_bucket.source_bucket.depends_on]",
        ),
        (_interpolated_provider, "Invalid provider configuration reference"),
        (
            _computed_lifecycle,
            "Unsuitable value type [resource.google_storage_bucket.source_bucket.lifecycle]",
        ),
    ],
    ids=["tokenised-depends_on", "interpolated-provider", "computed-lifecycle"],
)
def test_the_check_fails_a_stack_terraform_rejects(
    edit: Callable[[dict[str, Any]], None],
    expected: str,
    dev: dict[str, Any],
    check: Checker,
    tmp_path: Path,
) -> None:
    verdict = check(_with(dev, edit, tmp_path / "stack"))
    assert any(problem.startswith(expected) for problem in verdict.rejected), verdict.rejected
    with pytest.raises(AssertionError, match="Terraform rejects the stack"):
        assert_accepted(verdict)


def static_reference_problems(stack: dict[str, Any]) -> list[str]:
    """Places where Terraform wants a static reference or a literal but finds a token."""
    problems = []
    for kind, items in {**stack.get("resource", {}), **stack.get("data", {})}.items():
        for name, body in items.items():
            problems += [
                f"{kind}.{name}.depends_on: {dependency}"
                for dependency in body.get("depends_on", [])
                if not STATIC_REFERENCE.match(dependency)
            ]
            problems += [
                f"{kind}.{name}.{key}: {body[key]}"
                for key in ("provider", "lifecycle")
                if "${" in json.dumps(body.get(key, ""))
            ]
    terraform = stack.get("terraform", {})
    problems += [
        f"terraform.{key}: {terraform[key]}"
        for key in ("backend", "cloud", "required_providers")
        if "${" in json.dumps(terraform.get(key, {}))
    ]
    problems += [
        f"module.{name}.source: {module['source']}"
        for name, module in stack.get("module", {}).items()
        if "${" in module.get("source", "")
    ]
    return problems


@pytest.mark.parametrize("env", EXAMPLE_ENVIRONMENTS)
def test_static_places_hold_no_tokens(env: str, example_stacks: dict[str, dict[str, Any]]) -> None:
    stack = example_stacks[env]
    assert static_reference_problems(stack) == []
    # The buckets wait for the APIs through plain references (the bug this guards against).
    buckets = stack["resource"]["google_storage_bucket"]
    assert "google_project_service.api_storage" in buckets["source_bucket"]["depends_on"]
    assert "google_project_service.api_storage" in buckets["pipeline_root_bucket"]["depends_on"]


@pytest.mark.parametrize("name", EXPECTED_BLOCKS)
@pytest.mark.parametrize("form", ["json", "hcl"])
def test_terraform_accepts_each_backend_kind(
    name: str,
    form: str,
    backend_json_outdir: Path,
    backend_hcl_outdir: Path,
    check: Checker,
    check_with_backend: Callable[[Path, str], TerraformVerdict],
) -> None:
    """Both checks, on the JSON and on the HCL of each kind: `init -backend=false` parses the
    whole stack; `init` with the backend decodes the backend or cloud block too and gets as
    far as using it (local: configured, then the providers; gcs: the credentials; cloud: the
    host), which offline is the one error. No warnings either: the HCL's depends_on entries
    are plain references."""
    stack_dir = (backend_hcl_outdir if form == "hcl" else backend_json_outdir) / "stacks" / name
    verdict = check(stack_dir)
    assert_accepted(verdict)
    assert verdict.warnings == []
    kind = KIND[name]
    with_backend = check_with_backend(stack_dir, kind)
    assert with_backend.rejected == [], with_backend.rejected
    assert with_backend.warnings == []
    (reached,) = with_backend.download_errors
    assert reached.split(":")[0].split(" [")[0] in BACKEND_REACHED_ERRORS[kind], reached
    assert with_backend.backend_configured == (kind == "local")


def _cloud_with_name_and_tags(stack: dict[str, Any]) -> None:
    stack["terraform"]["cloud"]["workspaces"]["tags"] = ["ai-workflows"]


def _gcs_with_a_typo(stack: dict[str, Any]) -> None:
    gcs = stack["terraform"]["backend"]["gcs"]
    gcs["prefx"] = gcs.pop("prefix")


@pytest.mark.parametrize(
    ("name", "edit", "expected"),
    [
        ("cloud-named", _cloud_with_name_and_tags, "Invalid workspaces configuration"),
        ("gcs-default", _gcs_with_a_typo, "Extraneous JSON object property"),
    ],
    ids=["cloud-name-and-tags", "gcs-unknown-argument"],
)
def test_the_backend_check_fails_a_block_terraform_rejects(
    name: str,
    edit: Callable[[dict[str, Any]], None],
    expected: str,
    backend_json_outdir: Path,
    check_with_backend: Callable[[Path, str], TerraformVerdict],
    tmp_path: Path,
) -> None:
    stack = json.loads((backend_json_outdir / "stacks" / name / "cdk.tf.json").read_text())
    verdict = check_with_backend(_with(stack, edit, tmp_path / "stack"), KIND[name])
    assert any(problem.startswith(expected) for problem in verdict.rejected), verdict.rejected
    assert verdict.download_errors == []


@needs_node
@pytest.mark.parametrize("name", EXPECTED_BLOCKS)
def test_the_hcl_describes_the_json(
    name: str, backend_json_outdir: Path, backend_hcl_outdir: Path
) -> None:
    """Read back with HashiCorp's HCL parser, each HCL stack names the same resources, data
    sources, outputs and provider as its JSON, and every attribute holds the same value
    (depends_on: the same references; multi-line strings: without a heredoc's newline)."""
    as_json = json.loads((backend_json_outdir / "stacks" / name / "cdk.tf.json").read_text())
    as_hcl = as_stack_shape(parse_hcl(backend_hcl_outdir / "stacks" / name / "cdk.tf"))
    assert addresses(as_hcl) == addresses(as_json)
    assert len(addresses(as_json)) > 100
    for kind, items in as_json["resource"].items():
        for resource, body in items.items():
            written = as_hcl["resource"][kind][resource]
            expected = {k: as_stack_shape(v) for k, v in body.items() if k != "//"}
            if "depends_on" in written:
                written["depends_on"] = [
                    d.removeprefix("${").removesuffix("}") for d in written["depends_on"]
                ]
            assert written == expected, f"{kind}.{resource}"


@pytest.mark.parametrize("name", EXPECTED_BLOCKS)
def test_backend_and_cloud_blocks_hold_no_tokens(name: str, backend_json_outdir: Path) -> None:
    stack = json.loads((backend_json_outdir / "stacks" / name / "cdk.tf.json").read_text())
    assert static_reference_problems(stack) == []
    assert set(stack["terraform"]) - {"required_providers"} == set(EXPECTED_BLOCKS[name])


def test_static_reference_check_finds_tokens(dev: dict[str, Any]) -> None:
    stack = json.loads(json.dumps(dev))
    _tokenised_depends_on(stack)
    _interpolated_backend(stack)
    assert static_reference_problems(stack) == [
        "google_storage_bucket.source_bucket.depends_on: ${google_project_service.api_run}",
        "terraform.backend: {'local': {'path': '${google_project_service.api_run.id}'}}",
    ]
    cloud = {"organization": "acme", "workspaces": {"name": "${var.workspace}"}}
    stack["terraform"] = {"cloud": cloud}
    assert static_reference_problems(stack)[-1:] == [
        "terraform.cloud: {'organization': 'acme', 'workspaces': {'name': '${var.workspace}'}}"
    ]


@pytest.mark.skipif(
    not on("cdktf"),
    reason="CDK Terrain: the pinned CLI is cdktf-cli, whose diff synthesizes with cdktf.json's "
    "app (.venv, cdktf); package.json pins no cdktn CLI (cdktn-cli)",
)
def test_cdktf_diff_gets_past_configuration(terraform: str, tmp_path: Path) -> None:
    """The pinned CLI's `diff` (synth, then terraform init) as a user runs it, here offline."""
    cli = ROOT / "node_modules" / ".bin" / "cdktf"
    assert cli.exists(), "node_modules is missing: run `make install`"
    (tmp_path / "terraformrc").write_text("")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TF_")},
        "TF_CLI_CONFIG_FILE": str(tmp_path / "terraformrc"),
        "TF_PLUGIN_CACHE_DIR": str(tmp_path),
        "PATH": f"{cli.parent}{os.pathsep}{os.environ['PATH']}",
        "JSII_NODE": str(cli.parent / "node"),
        "CHECKPOINT_DISABLE": "1",
        "CI": "1",
        "FORCE_COLOR": "0",
    }
    result = subprocess.run(
        [str(cli), "diff", "--output", str(tmp_path / "out"), "dev"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    # The configuration parsed and the backend initialised: init got as far as the providers.
    assert 'Successfully configured the backend "local"' in output, output
    assert "Initializing provider plugins..." in output, output
    errors = re.findall(r"^\s*Error: (.+)$", output, flags=re.MULTILINE)
    if "Failed to query available provider packages" in errors:
        # Offline: the provider download is the one Terraform error, and the CLI says init failed.
        assert errors == [
            "Failed to query available provider packages",
            "terraform init failed with exit code 1",
        ], output
        assert result.returncode == 1


@needs_node
@pytest.mark.skipif(
    not on("cdktf"),
    reason="CDK Terrain: the pinned CLI is cdktf-cli, whose synth runs cdktf.json's app "
    "(.venv, cdktf); package.json pins no cdktn CLI (cdktn-cli)",
)
def test_cdktf_synth_hcl_is_a_way_out(
    example_stacks: dict[str, dict[str, Any]], check: Checker, tmp_path: Path
) -> None:
    """The pinned CLI's `synth --hcl` (CDKTF's sunset advice) on this app: a `cdk.tf` per
    stack, with its handler zip, that Terraform parses without a warning and that names the
    same resources, data sources, outputs and provider, with the same backend, as the JSON."""
    cli = ROOT / "node_modules" / ".bin" / "cdktf"
    outdir = tmp_path / "out"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TF_", "SYNTH_", "CDKTF_"))},
        "PATH": f"{cli.parent}{os.pathsep}{os.environ['PATH']}",
        "JSII_NODE": str(cli.parent / "node"),
        "CHECKPOINT_DISABLE": "1",
        "CI": "1",
        "FORCE_COLOR": "0",
    }
    result = subprocess.run(
        [str(cli), "synth", "--hcl", "--output", str(outdir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads((outdir / "manifest.json").read_text())
    assert sorted(manifest["stacks"]) == sorted(example_stacks)
    for name, as_json in example_stacks.items():
        entry = manifest["stacks"][name]
        assert entry["synthesizedStackPath"] == f"stacks/{name}/cdk.tf"
        stack_dir = outdir / "stacks" / name
        assert sorted(p.name for p in stack_dir.iterdir()) == ["assets", "cdk.tf", "metadata.json"]
        source = as_json["resource"]["google_storage_bucket_object"]["function_source"]["source"]
        assert (stack_dir / source).is_file()
        verdict = check(stack_dir)
        assert_accepted(verdict)
        assert verdict.warnings == []
        as_hcl = as_stack_shape(parse_hcl(stack_dir / "cdk.tf"))
        assert addresses(as_hcl) == addresses(as_json)
        assert as_hcl["terraform"] == as_json["terraform"]


def test_missing_terraform_skips_with_a_reason_unless_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(REQUIRE_SWITCH, raising=False)
    with pytest.raises(pytest.skip.Exception, match="terraform is not on PATH"):
        _unavailable("terraform is not on PATH")
    monkeypatch.setenv(REQUIRE_SWITCH, "1")
    with pytest.raises(pytest.fail.Exception, match=f"{REQUIRE_SWITCH}=1 requires Terraform"):
        _unavailable("terraform is not on PATH")

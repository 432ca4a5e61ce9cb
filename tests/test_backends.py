"""[backend]: the settings (exact one-line problems), the block each kind writes into the
JSON and the HCL, and Terraform's own verdict on each kind's block, offline.

Stacks of every kind are synthesized once, in-process, from the test-owned dev settings with
a `[backend]` table each (and the test-owned prod, which uses gcs). What the deploy scope
reads from the JSON is exactly cdktf's shape:

- local: terraform.backend.local.path
- gcs:   terraform.backend.gcs.{bucket, prefix}
- cloud: terraform.cloud.{organization, hostname?, workspaces.{name | tags, project?}}
"""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from backend_cases import BACKENDS, EXPECTED_BLOCKS, environment
from environments import FIXTURE_CONFIG_DIR, SOURCE_DIR
from hcl_helpers import as_stack_shape, parse_hcl
from node_helpers import needs_node

from ai_workflow import ConfigError
from ai_workflow_app.backend import (
    CloudBackendSettings,
    GcsBackendSettings,
    LocalBackendSettings,
)
from ai_workflow_app.config import parse_environment


def problems(backend: Any, **top: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        environment("dev", backend, **top)
    return caught.value.problems


# --- settings ---------------------------------------------------------------------------


def test_each_kind_parses_into_its_settings() -> None:
    assert environment("dev", None).state_backend == LocalBackendSettings(
        path="terraform.dev.tfstate"
    )
    assert environment("dev", {"kind": "local"}).state_backend == LocalBackendSettings(
        path="terraform.dev.tfstate"
    )
    assert environment("gcs-default", BACKENDS["gcs-default"]).state_backend == (
        GcsBackendSettings(bucket="acme-ai-tfstate", prefix="gcs-default")
    )
    assert environment("cloud-tagged", BACKENDS["cloud-tagged"]).state_backend == (
        CloudBackendSettings(
            organization="acme", workspace_tags=("ai-workflows", "env:cloud-tagged")
        )
    )


def test_state_path_still_works_with_a_notice() -> None:
    env = environment("dev", None, state_path="state/dev.tfstate")
    assert env.state_backend == LocalBackendSettings(path="state/dev.tfstate")
    assert env.notices == (
        'config/dev.toml: state_path: moved to [backend] as path (write [backend] kind = "local", '
        'path = "state/dev.tfstate")',
    )
    assert environment("dev", {"kind": "local", "path": "x.tfstate"}).notices == ()


@pytest.mark.parametrize(
    ("backend", "top", "expected"),
    [
        ({"kind": "gsc"}, {}, ["backend.kind: got 'gsc', allowed local, gcs or cloud"]),
        ({"bucket": "b"}, {}, ["backend.kind: missing, allowed local, gcs or cloud"]),
        ("gcs", {}, ["backend: got 'gcs', allowed a table with kind = local, gcs or cloud"]),
        (
            {"kind": "local", "path": "/var/state.tfstate", "bucket": "b"},
            {},
            [
                "backend.bucket: unknown key, allowed kind, path",
                "backend.path: got '/var/state.tfstate', allowed a path relative to the project "
                "root",
            ],
        ),
        (
            {"kind": "local", "path": ""},
            {},
            ["backend.path: got '', allowed a path relative to the project root"],
        ),
        (
            {"kind": "local", "path": 3},
            {},
            ["backend.path: got 3, allowed a path relative to the project root"],
        ),
        (
            None,
            {"state_path": "/abs/state"},
            ["state_path: got '/abs/state', allowed a path relative to the project root"],
        ),
        (
            {"kind": "local"},
            {"state_path": "x.tfstate"},
            [
                "state_path: got 'x.tfstate' beside [backend], allowed only [backend] "
                "(state_path is the local backend's path now)"
            ],
        ),
        (
            {"kind": "gcs", "prefix": "prod", "path": "x"},
            {},
            [
                "backend.path: unknown key, allowed bucket, kind, prefix",
                "backend.bucket: missing, required for kind = gcs",
            ],
        ),
        (
            {"kind": "gcs", "bucket": "Acme_State"},
            {},
            [
                "backend.bucket: got 'Acme_State', allowed 3..63 lowercase letters, digits, - "
                "and _, starting and ending with a letter or digit"
            ],
        ),
        (
            {"kind": "gcs", "bucket": "google-state"},
            {},
            [
                "backend.bucket: got 'google-state', allowed a name without 'goog' prefix or "
                "'google'"
            ],
        ),
        (
            {"kind": "gcs", "bucket": "acme-state", "prefix": "/prod/"},
            {},
            [
                "backend.prefix: got '/prod/', allowed path segments of letters, digits, _, . "
                "and - joined by /, without a leading or trailing /"
            ],
        ),
        (
            {"kind": "gcs", "bucket": "acme-state", "prefix": "a/../b"},
            {},
            ["backend.prefix: got 'a/../b', allowed no . or .. segment"],
        ),
        (
            {"kind": "gcs", "bucket": "acme-state", "prefix": 7},
            {},
            [
                "backend.prefix: got 7, allowed path segments of letters, digits, _, . and - "
                "joined by /, without a leading or trailing /"
            ],
        ),
        (
            {"kind": "cloud", "token": "secret"},
            {},
            [
                "backend.token: unknown key, allowed hostname, kind, organization, project, "
                "workspace, workspace_tags",
                "backend.organization: missing, required for kind = cloud",
                "backend.workspace: missing, required for kind = cloud (or workspace_tags)",
            ],
        ),
        (
            {"kind": "cloud", "organization": "acme", "workspace": "w", "workspace_tags": ["t"]},
            {},
            [
                "backend.workspace_tags: got ['t'] beside workspace, allowed exactly one of "
                "workspace or workspace_tags"
            ],
        ),
        (
            {"kind": "cloud", "organization": "acme corp", "workspace": "ai prod"},
            {},
            [
                "backend.organization: got 'acme corp', allowed an organization name: letters, "
                "digits, _ and -",
                "backend.workspace: got 'ai prod', allowed a workspace name: 1..90 letters, "
                "digits, _ and -",
            ],
        ),
        (
            {"kind": "cloud", "organization": "acme", "workspace_tags": []},
            {},
            ["backend.workspace_tags: got [], allowed a non-empty list of tags"],
        ),
        (
            {"kind": "cloud", "organization": "acme", "workspace_tags": "ai"},
            {},
            ["backend.workspace_tags: got 'ai', allowed a non-empty list of tags"],
        ),
        (
            {"kind": "cloud", "organization": "acme", "workspace_tags": ["ai", "a b", "ai"]},
            {},
            [
                "backend.workspace_tags[1]: got 'a b', allowed a tag: 1..255 letters, digits, "
                ":, _ and -",
                "backend.workspace_tags[2]: got 'ai', allowed each tag once (workspace_tags[0] "
                "already has it)",
            ],
        ),
        (
            {
                "kind": "cloud",
                "organization": "acme",
                "workspace": "ai",
                "project": " ml",
                "hostname": "https://tfe.acme.example",
            },
            {},
            [
                "backend.project: got ' ml', allowed a project name: 3..40 letters, digits, "
                "spaces, _ and -, not starting or ending with a space",
                "backend.hostname: got 'https://tfe.acme.example', allowed a lowercase hostname "
                "such as tfe.example.com, optionally with :port (no scheme, no path)",
            ],
        ),
        (
            {"kind": "cloud", "organization": "acme", "workspace": 5, "hostname": "TFE.example"},
            {},
            [
                "backend.workspace: got 5, allowed a workspace name: 1..90 letters, digits, _ "
                "and -",
                "backend.hostname: got 'TFE.example', allowed a lowercase hostname such as "
                "tfe.example.com, optionally with :port (no scheme, no path)",
            ],
        ),
    ],
    ids=lambda value: json.dumps(value)[:40] if not isinstance(value, list) else "",
)
def test_a_bad_backend_is_one_line_per_problem(
    backend: Any, top: dict[str, Any], expected: list[str]
) -> None:
    assert problems(backend, **top) == [f"config/dev.toml: {line}" for line in expected]


def test_backend_problems_come_with_every_other_problem() -> None:
    found = problems({"kind": "gcs"}, region="europe-wset4")
    assert found == [
        "config/dev.toml: region: got 'europe-wset4', allowed a Cloud Run functions + Vertex AI "
        "region (did you mean 'europe-west4'?)",
        "config/dev.toml: backend.bucket: missing, required for kind = gcs",
    ]


@pytest.mark.parametrize(
    "hostname", ["app.terraform.io", "tfe.acme.example", "tfe.acme.example:8443", "127.0.0.1:9443"]
)
def test_hostnames_that_are_allowed(hostname: str) -> None:
    backend = {"kind": "cloud", "organization": "acme", "workspace": "ai", "hostname": hostname}
    assert isinstance(environment("dev", backend).state_backend, CloudBackendSettings)


def test_reading_settings_does_not_import_a_framework() -> None:
    """A bad config never starts Node: the backend settings need no cdktf to be checked."""
    import subprocess
    import sys

    probe = (
        "import sys; from ai_workflow_app.config import load_environment; "
        f"load_environment({str(FIXTURE_CONFIG_DIR / 'prod.toml')!r}); "
        "print(sorted(m for m in ('cdktf', 'cdktn', 'jsii') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


# --- what each kind writes ----------------------------------------------------------------


def _terraform_block(stack: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in stack["terraform"].items() if k != "required_providers"}


@pytest.mark.parametrize("name", EXPECTED_BLOCKS)
def test_each_kind_writes_exactly_its_block(name: str, backend_json_outdir: Path) -> None:
    stack = json.loads((backend_json_outdir / "stacks" / name / "cdk.tf.json").read_text())
    assert _terraform_block(stack) == EXPECTED_BLOCKS[name]


@needs_node
@pytest.mark.parametrize("name", EXPECTED_BLOCKS)
def test_the_hcl_says_the_same_block(name: str, backend_hcl_outdir: Path) -> None:
    """Read back with HashiCorp's HCL parser: the cloud workspace's project too (cdktf's
    HCL renderer drops it; the backend adds it back)."""
    stack_dir = backend_hcl_outdir / "stacks" / name
    assert not (stack_dir / "cdk.tf.json").exists()
    stack = as_stack_shape(parse_hcl(stack_dir / "cdk.tf"))
    assert _terraform_block(stack) == EXPECTED_BLOCKS[name]


def test_the_json_of_the_default_is_that_of_an_explicit_local_backend(
    backend_json_outdir: Path, tmp_path: Path
) -> None:
    from ai_workflow.source_bundle import build_source_bundle
    from ai_workflow_app.synth import synth_app

    explicit = environment("dev", {"kind": "local", "path": "terraform.dev.tfstate"})
    synth_app([explicit], build_source_bundle(SOURCE_DIR), tmp_path)
    default = (backend_json_outdir / "stacks" / "dev" / "cdk.tf.json").read_bytes()
    assert (tmp_path / "stacks" / "dev" / "cdk.tf.json").read_bytes() == default


def test_the_readme_shows_what_the_loader_says() -> None:
    import re

    from environments import ROOT

    readme = (ROOT / "README.md").read_text()
    shown = re.findall(r"^error: (config/prod\.toml: backend\..*)$", readme, re.M)
    prod = tomllib.loads((FIXTURE_CONFIG_DIR / "prod.toml").read_text())
    found = []
    for change in ({"kind": "gsc"}, {"bucket": "Acme_State"}):
        data = copy.deepcopy(prod)
        data["backend"].update(change)
        with pytest.raises(ConfigError) as caught:
            parse_environment("prod", "config/prod.toml", data)
        found += caught.value.problems
    assert found == shown
    (notice,) = environment("dev", None, state_path="x.tfstate").notices
    assert f"`warning: {notice}`" in readme


def _main(config_dir: Path, outdir: Path, *args: str, hcl: bool) -> str:
    import os
    import subprocess
    import sys

    from environments import ROOT

    env = {k: v for k, v in os.environ.items() if k != "SYNTH_HCL_OUTPUT"}
    if hcl:
        env["SYNTH_HCL_OUTPUT"] = "true"
    return subprocess.run(
        [
            sys.executable,
            "main.py",
            "--config-dir",
            str(config_dir),
            "--outdir",
            str(outdir),
            *args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout


def test_main_names_the_file_it_wrote_and_keeps_hcl_stacks_listed(
    backend_hcl_outdir: Path, tmp_path: Path
) -> None:
    """`main.py` says cdk.tf for an HCL stack; re-synthesizing one stack as JSON keeps the
    other (HCL) stacks in manifest.json with their cdk.tf."""
    import shutil

    config_dir = backend_hcl_outdir.parent / f"{backend_hcl_outdir.name}-config"
    outdir = tmp_path / "out"
    shutil.copytree(backend_hcl_outdir, outdir)
    printed = _main(config_dir, outdir, "--env", "gcs-default", hcl=True)
    assert (
        printed.startswith("synthesized gcs-default: ")
        and "/stacks/gcs-default/cdk.tf (" in printed
    )
    printed = _main(config_dir, outdir, "--env", "dev", hcl=False)
    assert "/stacks/dev/cdk.tf.json (3 workflows)" in printed
    manifest = json.loads((outdir / "manifest.json").read_text())["stacks"]
    assert sorted(manifest) == sorted(EXPECTED_BLOCKS)
    assert {n: e["synthesizedStackPath"] for n, e in manifest.items()} == {
        name: f"stacks/{name}/cdk.tf.json" if name == "dev" else f"stacks/{name}/cdk.tf"
        for name in EXPECTED_BLOCKS
    }


def test_two_environments_may_not_share_a_state(tmp_path: Path) -> None:
    from backend_cases import write_config_files

    from ai_workflow_app import load_environments

    config_dir = tmp_path / "config"
    write_config_files(config_dir)
    prod = (config_dir / "prod.toml").read_text()
    qa = prod.replace('project_id = "acme-ai-prod"', 'project_id = "acme-ai-qa"')
    (config_dir / "qa.toml").write_text(qa)
    cloud = (config_dir / "cloud-named.toml").read_text()
    (config_dir / "staging.toml").write_text(cloud.replace("acme-ai-cloud-named", "acme-ai-st"))
    local = (config_dir / "local-path.toml").read_text().replace("acme-ai-local-path", "acme-x")
    (config_dir / "test.toml").write_text(local.replace('path = "state/', 'path = "./state/'))
    tagged = (config_dir / "cloud-tagged.toml").read_text().replace("-cloud-tagged", "-tagged2")
    (config_dir / "tagged.toml").write_text(tagged.replace("env:-tagged2", "env:cloud-tagged"))
    with pytest.raises(ConfigError) as caught:
        load_environments(sorted(config_dir.glob("*.toml")))
    shown = {p.stem: p.as_posix() for p in config_dir.glob("*.toml")}
    # Sorted by file: qa (gcs), staging (cloud), test (local); tagged workspaces never collide.
    assert caught.value.problems == [
        f"{shown['qa']}: backend: got gcs bucket 'acme-ai-prod-tfstate' prefix "
        f"'ai-workflows/prod', allowed a state not used by another environment "
        f"({shown['prod']} uses it; one would overwrite the other's state)",
        f"{shown['staging']}: backend: got cloud workspace 'ai-workflows-cloud-named' of 'acme' "
        f"on tfe.acme.example, allowed a state not used by another environment "
        f"({shown['cloud-named']} uses it; one would overwrite the other's state)",
        f"{shown['test']}: backend: got local path 'state/local-path.tfstate', allowed a state "
        f"not used by another environment ({shown['local-path']} uses it; one would overwrite "
        "the other's state)",
    ]

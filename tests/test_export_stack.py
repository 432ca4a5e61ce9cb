"""tools/export_stack.py (`make export-stack`, the VCS-driven workflow) and the Makefile's
deploy targets: exactly the workspace files, byte for byte and deterministic; which DEST is
refused, one line each; `make destroy` without CONFIRM=<env> refuses before anything runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from environments import FIXTURE_CONFIG_DIR, ROOT
from terraform_check import REQUIRE_SWITCH

sys.path.insert(0, str(ROOT / "tools"))

import export_stack

CONFIG = FIXTURE_CONFIG_DIR.relative_to(ROOT).as_posix()
ALLOWED = "allowed a new or empty directory outside cdktf.out, or a previous export"


@pytest.fixture
def outdir(tmp_path: Path, synth_outdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A current dev stack with what `terraform init/plan` leave behind."""
    monkeypatch.chdir(ROOT)
    out = tmp_path / "cdktf.out"
    shutil.copytree(synth_outdir / "stacks" / "dev", out / "stacks" / "dev")
    stack = out / "stacks" / "dev"
    (stack / ".terraform").mkdir()
    (stack / ".terraform" / "terraform.tfstate").write_text("{}")
    (stack / ".terraform.lock.hcl").write_text("# lock\n")
    (stack / "plan.tfplan").write_bytes(b"plan")
    return out


def export(outdir: Path, dest: Path | str) -> int:
    return export_stack.main(
        ["--env", "dev", "--dest", str(dest), "--config-dir", CONFIG, "--outdir", str(outdir)]
    )


def tree(root: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every entry under `root`: relative path -> (mode bits, bytes of a file)."""
    return {
        p.relative_to(root).as_posix(): (
            p.stat().st_mode & 0o777,
            p.read_bytes() if p.is_file() else None,
        )
        for p in sorted(root.rglob("*"))
    }


def test_exports_exactly_the_workspace_files(outdir: Path, tmp_path: Path, capsys: Any) -> None:
    stack = outdir / "stacks" / "dev"
    zip_name = next((stack / "assets").iterdir()).name
    assert export(outdir, tmp_path / "infra" / "dev") == 0
    assert tree(tmp_path / "infra" / "dev") == {
        "assets": (0o755, None),
        f"assets/{zip_name}": (0o644, (stack / "assets" / zip_name).read_bytes()),
        "cdk.tf.json": (0o644, (stack / "cdk.tf.json").read_bytes()),
    }
    assert capsys.readouterr().out == (
        f"exported dev: {outdir.as_posix()}/stacks/dev -> {tmp_path}/infra/dev "
        f"(assets/{zip_name}, cdk.tf.json)\n"
    )


def test_the_export_holds_no_absolute_path(outdir: Path, tmp_path: Path) -> None:
    assert export(outdir, tmp_path / "dev") == 0
    text = (tmp_path / "dev" / "cdk.tf.json").read_text()
    assert str(ROOT) not in text and str(tmp_path) not in text

    def strings(value: Any) -> list[str]:
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        if isinstance(value, list):
            return [s for v in value for s in strings(v)]
        return [value] if isinstance(value, str) else []

    assert [s for s in strings(json.loads(text)) if s.startswith("/")] == []


def test_a_re_export_replaces_a_previous_one_and_keeps_its_lock_file(
    outdir: Path, tmp_path: Path
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    assert export(outdir, first) == 0
    assert export(outdir, second) == 0
    assert tree(first) == tree(second)  # deterministic
    (first / "assets" / "function-source-old.zip").write_bytes(b"old code")
    (first / ".terraform.lock.hcl").write_text("# committed by the team\n")
    assert export(outdir, first) == 0
    assert tree(first) == {
        **tree(second),
        ".terraform.lock.hcl": (0o644, b"# committed by the team\n"),
    }


def test_an_empty_dest_is_fine(outdir: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert export(outdir, tmp_path / "empty") == 0


@pytest.mark.parametrize(
    ("entry", "shown"),
    [
        ("README.md", "holds README.md"),
        (".terraform/", "holds .terraform"),
        ("terraform.tfstate", "holds terraform.tfstate"),
        ("assets/sub/", "holds assets/sub"),
    ],
)
def test_a_foreign_dest_is_refused_and_left_alone(
    outdir: Path, tmp_path: Path, capsys: Any, entry: str, shown: str
) -> None:
    dest = tmp_path / "dest"
    assert export(outdir, dest) == 0
    if entry.endswith("/"):
        (dest / entry).mkdir()
    else:
        (dest / entry).write_text("x")
    before = tree(dest)
    assert export(outdir, dest) == 2
    assert capsys.readouterr().err == f"export-stack: DEST: got '{dest}' ({shown}), {ALLOWED}\n"
    assert tree(dest) == before


def test_other_refusals(outdir: Path, tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "assets-only" / "assets").mkdir(parents=True)
    inside = outdir / "exports" / "dev"
    cases = {
        "": f"export-stack: DEST: got '', {ALLOWED}",
        str(inside): f"export-stack: DEST: got '{inside}', {ALLOWED} "
        f"({outdir.as_posix()} is replaced by every synth)",
        str(tmp_path / "file"): f"export-stack: DEST: got '{tmp_path}/file' (not a directory), "
        f"{ALLOWED}",
        str(tmp_path / "assets-only"): f"export-stack: DEST: got '{tmp_path}/assets-only' "
        f"(no cdk.tf.json), {ALLOWED}",
    }
    for dest, line in cases.items():
        assert export(outdir, dest) == 2
        assert capsys.readouterr().err == line + "\n"
    assert not inside.exists()


def test_a_stale_stack_is_not_exported(outdir: Path, tmp_path: Path, capsys: Any) -> None:
    stack = outdir / "stacks" / "dev" / "cdk.tf.json"
    stack.write_text(stack.read_text().replace('"europe-west4"', '"europe-west1"'))
    assert export(outdir, tmp_path / "dev") == 2
    assert capsys.readouterr().err == (
        f"export-stack: {outdir.as_posix()}/stacks/dev is not what {CONFIG}/dev.toml and the "
        "code synthesize now (differs: cdk.tf.json): run make synth ENV=dev\n"
    )
    assert not (tmp_path / "dev").exists()


# --- the Makefile's deploy targets ----------------------------------------------------------


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k not in ("CONFIRM", "AUTO_APPROVE")},
    )


@pytest.mark.parametrize(("confirm", "shown"), [((), ""), (("CONFIRM=dev",), "dev")])
def test_destroy_refuses_without_the_same_env(confirm: tuple[str, ...], shown: str) -> None:
    result = make("destroy", "ENV=qa", *confirm)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        f"error: CONFIRM: got '{shown}', allowed 'qa' "
        "(make destroy ENV=qa CONFIRM=qa destroys every resource of qa)"
    )
    assert "preflight" not in result.stdout + result.stderr


def test_targets_run_preflight_then_terraform_in_the_stack() -> None:
    terraform = "terraform -chdir=cdktf.out/stacks/prod"
    preflight = '.venv/bin/python tools/preflight.py --env "prod"'
    assert make("-n", "plan", "ENV=prod").stdout.splitlines()[-3:] == [
        preflight,
        f"{terraform} init -input=false",
        f"{terraform} plan -input=false",
    ]
    assert make("-n", "deploy", "ENV=prod").stdout.splitlines()[-1] == f"{terraform} apply "
    assert make("-n", "deploy", "ENV=prod", "AUTO_APPROVE=1").stdout.splitlines()[-1] == (
        f"{terraform} apply -auto-approve -input=false"
    )
    lines = make("-n", "destroy", "ENV=prod", "CONFIRM=prod").stdout.splitlines()
    assert lines[-3:] == [preflight, f"{terraform} init -input=false", f"{terraform} destroy "]


def test_tfc_run_and_export_stack_pass_their_settings() -> None:
    def command(*args: str) -> list[str]:
        return make("-n", *args).stdout.replace("\\\n", " ").split()

    assert command(
        "tfc-run", "ENV=dev", "WORKSPACE=ai-dev", "ORGANIZATION=acme", "APPLY=1", "WAIT=1"
    ) == [
        *(".venv/bin/python", "tools/tfc_run.py", "--env", '"dev"', "--workspace", '"ai-dev"'),
        *("--organization", '"acme"', "--apply", "--wait"),
    ]
    assert command("tfc-run", "ENV=dev") == [
        ".venv/bin/python",
        "tools/tfc_run.py",
        "--env",
        '"dev"',
    ]
    assert command("export-stack", "ENV=dev", "DEST=infra/dev") == [
        *(".venv/bin/python", "tools/export_stack.py", "--env", '"dev"', "--dest", '"infra/dev"')
    ]


def test_terraform_initialises_the_backend_where_the_targets_run_it(
    outdir: Path, tmp_path: Path
) -> None:
    """`terraform -chdir=<stack> init -input=false`, as `make plan` runs it: the local backend
    (state path relative to the stack) is configured; offline, only the provider download
    fails after that (`tests/test_terraform.py` runs init with -backend=false only)."""
    terraform = shutil.which("terraform")
    if terraform is None:
        if os.environ.get(REQUIRE_SWITCH) == "1":
            pytest.fail(f"terraform is not on PATH, and {REQUIRE_SWITCH}=1 requires it")
        pytest.skip("terraform is not on PATH")
    stack = outdir / "stacks" / "dev"
    shutil.rmtree(stack / ".terraform")
    (stack / ".terraform.lock.hcl").unlink()
    (tmp_path / "cli.tfrc").write_text("")
    (tmp_path / "plugins").mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TF_")},
        "TF_CLI_CONFIG_FILE": str(tmp_path / "cli.tfrc"),
        "TF_PLUGIN_CACHE_DIR": str(tmp_path / "plugins"),
        "CHECKPOINT_DISABLE": "1",
    }
    result = subprocess.run(
        [terraform, f"-chdir={stack}", "init", "-input=false", "-no-color"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert 'Successfully configured the backend "local"!' in output, output
    assert result.returncode == 0 or "Failed to query available provider packages" in output
    assert not (outdir.parent / "terraform.dev.tfstate").exists()  # init writes no state

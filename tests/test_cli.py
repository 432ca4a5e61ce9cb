"""main.py as users run it: clear one-line errors, exit 2, previous output kept."""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from environments import FIXTURE_CONFIG_DIR, ROOT


def run_main(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )


def previous_output(tmp_path: Path) -> tuple[Path, bytes]:
    outdir = tmp_path / "cdktf.out"
    stack = outdir / "stacks" / "dev" / "cdk.tf.json"
    stack.parent.mkdir(parents=True)
    stack.write_bytes(b'{"previous": true}')
    return outdir, stack.read_bytes()


def test_bad_config_prints_one_line_per_problem_and_keeps_output(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    text = (FIXTURE_CONFIG_DIR / "dev.toml").read_text()
    text = text.replace("max_instances = 3", "max_instances = 0\nmax_instanse = 2")
    (config / "dev.toml").write_text(text)
    outdir, before = previous_output(tmp_path)
    result = run_main("--config-dir", str(config), "--outdir", str(outdir))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    shown = (config / "dev.toml").as_posix()
    assert f"error: {shown}: workflow_defaults.max_instanse: unknown key, allowed" in lines[0]
    assert lines[1] == f"error: {shown}: workflow_defaults.max_instances: got 0, allowed 1..1000"
    assert len(lines) == 2
    assert (outdir / "stacks" / "dev" / "cdk.tf.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdktf.out", "config"]


def test_the_renamed_route_key_synthesizes_with_one_warning_line_each(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    text = (
        (FIXTURE_CONFIG_DIR / "dev.toml").read_text().replace("on_success =", "result_event_type =")
    )
    (config / "dev.toml").write_text(text)
    result = run_main("--config-dir", str(config), "--outdir", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    shown = (config / "dev.toml").as_posix()
    assert result.stderr.splitlines() == [
        f"warning: {shown}: workflows[{i}].routes.{route}.result_event_type: renamed on_success; "
        "its event is now published when the job succeeds, not when it starts (rename the key "
        "to on_success)"
        for i, route in ((0, "data.ready"), (1, "model.train"), (1, "model.retrain"))
    ]
    assert (tmp_path / "out" / "stacks" / "dev" / "cdk.tf.json").is_file()


def test_invalid_toml_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "qa.toml").write_text("project_id = 'x\n")
    result = run_main("--config-dir", str(config), "--outdir", str(tmp_path / "out"))
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {(config / 'qa.toml').as_posix()}: not valid TOML: ")
    assert not (tmp_path / "out").exists()


def test_unknown_environment_and_bad_arguments() -> None:
    result = run_main(
        "--env", "staging", "--config-dir", str(FIXTURE_CONFIG_DIR),
        "--outdir", "/nonexistent/never-written",
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --env: got 'staging', allowed one of dev, prod"
    result = run_main("--bogus")
    assert result.returncode == 2
    assert result.stderr.strip() == "main.py: unrecognized arguments: --bogus (see --help)"
    result = run_main("--config-dir", "/nonexistent")
    assert result.stderr.strip() == ("error: --config-dir: got '/nonexistent', allowed a directory")


def test_missing_handler_source_is_one_line(tmp_path: Path) -> None:
    result = run_main(
        "--env", "dev", "--source-dir", str(tmp_path), "--outdir", str(tmp_path / "out")
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {tmp_path.as_posix()}: no main.py to deploy"


def tree(root: Path) -> dict[str, bytes | None]:
    return {
        p.relative_to(root).as_posix(): None if p.is_dir() else p.read_bytes()
        for p in sorted(root.rglob("*"))
    }


def initialised_output(tmp_path: Path, synth_outdir: Path) -> Path:
    """A full synth's cdktf.out after `terraform init` in both stacks."""
    outdir = tmp_path / "cdktf.out"
    shutil.copytree(synth_outdir, outdir)
    for name in ("dev", "prod"):
        (outdir / "stacks" / name / ".terraform" / "providers").mkdir(parents=True)
        (outdir / "stacks" / name / ".terraform.lock.hcl").write_text(f"# {name}")
    (outdir / "stacks" / "dev" / "cdk.tf.json").write_text("{}")
    return outdir


def run_main_in_process(
    monkeypatch: pytest.MonkeyPatch, cwd: Path, *args: str
) -> tuple[int, list[str], list[str]]:
    """main.main() in this process (no new jsii kernel): exit code, stdout and stderr lines."""
    spec = importlib.util.spec_from_file_location("main_under_test", ROOT / "main.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.chdir(cwd)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = module.main(list(args))
    return code, out.getvalue().splitlines(), err.getvalue().splitlines()


def test_env_replaces_only_that_stack_and_says_so(tmp_path: Path, synth_outdir: Path) -> None:
    outdir = initialised_output(tmp_path, synth_outdir)
    before = tree(outdir)
    result = run_main(
        "--env", "dev", "--outdir", "cdktf.out", "--config-dir", str(FIXTURE_CONFIG_DIR),
        "--source-dir", str(ROOT / "function_src"), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "synthesized dev: cdktf.out/stacks/dev/cdk.tf.json (3 workflows)"
    ]
    after = tree(outdir)
    assert {k: v for k, v in after.items() if "/prod" in k} == {
        k: v for k, v in before.items() if "/prod" in k
    }
    assert after["stacks/dev/.terraform.lock.hcl"] == b"# dev"
    assert "stacks/dev/.terraform/providers" in after
    assert after["manifest.json"] == (synth_outdir / "manifest.json").read_bytes()
    assert after["stacks/dev/cdk.tf.json"] == (synth_outdir / "stacks/dev/cdk.tf.json").read_bytes()


def test_unwritable_stack_is_one_line_and_changes_nothing(tmp_path: Path) -> None:
    """A real failure: stacks/ is a regular file, so stacks/dev cannot be written."""
    outdir = tmp_path / "cdktf.out"
    outdir.mkdir()
    (outdir / "stacks").write_text("not a directory")
    (outdir / "manifest.json").write_text("{}")
    before = tree(tmp_path)
    result = run_main(
        "--env", "dev", "--outdir", "cdktf.out", "--config-dir", str(FIXTURE_CONFIG_DIR),
        "--source-dir", str(ROOT / "function_src"), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == "error: cannot write cdktf.out/stacks/dev: Not a directory\n"
    assert result.stdout == ""
    assert tree(tmp_path) == before  # and no .cdktf.out.new-*/.cdktf.out.old-* left


def test_failure_between_stacks_is_one_line_and_changes_nothing(
    tmp_path: Path, synth_outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dev is already swapped in when moving prod aside fails: dev is put back."""
    outdir = initialised_output(tmp_path, synth_outdir)
    before = tree(tmp_path)
    real, calls = os.replace, []

    def replace(src: Any, dst: Any) -> None:
        calls.append(dst)
        if len(calls) == 5:  # dev aside, dev in, its .terraform and lock, then prod aside
            raise PermissionError(errno.EACCES, "Permission denied", str(dst))
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    code, out, err = run_main_in_process(
        monkeypatch, tmp_path, "--outdir", "cdktf.out", "--config-dir", str(FIXTURE_CONFIG_DIR),
        "--source-dir", str(ROOT / "function_src"),
    )  # fmt: skip
    assert (code, out, err) == (
        2,
        [],
        ["error: cannot write cdktf.out/stacks/prod: Permission denied"],
    )
    assert tree(tmp_path) == before
    assert outdir.is_dir()


def test_full_synth_names_the_stale_stacks_it_removed(
    tmp_path: Path, synth_outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    config.mkdir()
    shutil.copy(FIXTURE_CONFIG_DIR / "dev.toml", config / "dev.toml")
    outdir = initialised_output(tmp_path, synth_outdir)  # prod: no config/prod.toml here
    code, out, err = run_main_in_process(
        monkeypatch, tmp_path, "--outdir", "cdktf.out", "--config-dir", "config",
        "--source-dir", str(ROOT / "function_src"),
    )  # fmt: skip
    assert (code, err) == (0, [])
    assert out == [
        "synthesized dev: cdktf.out/stacks/dev/cdk.tf.json (3 workflows)",
        "removed cdktf.out/stacks/prod: no config/prod.toml",
    ]
    assert [p.name for p in (outdir / "stacks").iterdir()] == ["dev"]


def test_workflow_count_is_pluralised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "qa.toml").write_text(QA_TOML)
    code, out, err = run_main_in_process(
        monkeypatch, tmp_path, "--outdir", "cdktf.out", "--config-dir", "config",
        "--source-dir", str(ROOT / "function_src"),
    )  # fmt: skip
    assert (code, err) == (0, [])
    assert out == ["synthesized qa: cdktf.out/stacks/qa/cdk.tf.json (1 workflow)"]


QA_TOML = """\
project_id = "acme-ai-qa"
region = "europe-west4"

[[workflows]]
name = "train"

[workflows.routes."model.train"]
template_uri = "https://europe-west4-kfp.pkg.dev/acme-ai-qa/pipelines/train-model/latest"
"""


def test_trigger_topic_of_a_chained_workflow_is_the_upstream_results_topic() -> None:
    from ai_workflow_app import load_environment

    env = load_environment(FIXTURE_CONFIG_DIR / "dev.toml")
    assert env.trigger_topic_path("ingest") == "projects/acme-ai-dev/topics/ingest-trigger"
    assert env.trigger_topic_path("train") == "projects/acme-ai-dev/topics/ingest-results"


def test_publish_resolves_env_and_workflow_with_one_line_errors() -> None:
    def publish(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                str(ROOT / "tools" / "publish.py"),
                *("--type", "model.train", "--config-dir", "tests/fixtures/config"),
                *args,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    result = publish("--env", "staging")
    assert result.returncode == 2
    assert result.stderr == (
        "publish.py: error: --env 'staging': allowed one of dev, prod "
        "(files in tests/fixtures/config)\n"
    )
    result = publish("--env", "dev", "--workflow", "nope")
    assert result.stderr == (
        "publish.py: error: --workflow 'nope': allowed one of ingest, train, batch-predict "
        "(in tests/fixtures/config/dev.toml)\n"
    )
    result = publish("--topic", "projects/p/topics/t", "--workflow", "train")
    assert result.stderr == "publish.py: error: --workflow: only allowed together with --env\n"


def test_outside_the_venv_is_one_line_naming_the_fix() -> None:
    base_python = Path(sys.base_prefix) / "bin" / "python3"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = subprocess.run([base_python, "-c", "import ai_workflow"], capture_output=True, env=env)
    if probe.returncode == 0:
        pytest.skip(f"{base_python} has ai_workflow installed, so it is not outside the venv")
    result = subprocess.run(
        [base_python, "main.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr == (
        f"main.py: ai_workflow is not installed for {base_python}; "
        "run `make synth` (it installs .venv) or `.venv/bin/python main.py`\n"
    )

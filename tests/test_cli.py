"""main.py as users run it: clear one-line errors, exit 2, previous output kept."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
    text = (ROOT / "config" / "dev.toml").read_text()
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
    result = run_main("--env", "staging", "--outdir", "/nonexistent/never-written")
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


def test_resynth_keeps_terraform_init_state(tmp_path: Path, synth_outdir: Path) -> None:
    """A re-synth replaces the stack JSON but keeps .terraform/ and the lock file."""
    from ai_workflow.synth import _carry_over_terraform_state

    old = tmp_path / "old"
    new = tmp_path / "new"
    shutil.copytree(synth_outdir, old)
    shutil.copytree(synth_outdir, new)
    (old / "stacks" / "dev" / ".terraform").mkdir()
    (old / "stacks" / "dev" / ".terraform.lock.hcl").write_text("lock")
    _carry_over_terraform_state(old, new)
    assert (new / "stacks" / "dev" / ".terraform").is_dir()
    assert (new / "stacks" / "dev" / ".terraform.lock.hcl").read_text() == "lock"


def test_trigger_topic_of_a_chained_workflow_is_the_upstream_results_topic() -> None:
    from ai_workflow import load_environment

    env = load_environment(ROOT / "config" / "dev.toml")
    assert env.trigger_topic_path("ingest") == "projects/acme-ai-dev/topics/ingest-trigger"
    assert env.trigger_topic_path("train") == "projects/acme-ai-dev/topics/ingest-results"


def test_publish_resolves_env_and_workflow_with_one_line_errors() -> None:
    def publish(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(ROOT / "tools" / "publish.py"), "--type", "model.train", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    result = publish("--env", "staging")
    assert result.returncode == 2
    assert result.stderr == (
        "publish.py: error: --env 'staging': allowed one of dev, prod (files in config)\n"
    )
    result = publish("--env", "dev", "--workflow", "nope")
    assert result.stderr == (
        "publish.py: error: --workflow 'nope': allowed one of ingest, train, batch-predict "
        "(in config/dev.toml)\n"
    )
    result = publish("--topic", "projects/p/topics/t", "--workflow", "train")
    assert result.stderr == "publish.py: error: --workflow: only allowed together with --env\n"

"""tools/watch.py: the stack diff (pure), the manifest writer, and one watch round in-process
(shares the provider import with the rest of the session; no timing assertions); Ctrl-C on
the real watcher as a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from environments import FIXTURE_CONFIG_DIR
from frameworks import on

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import watch  # noqa: E402


def stack(**resources: dict[str, Any]) -> dict[str, Any]:
    return {"resource": resources, "terraform": {"backend": {}}}


OLD = stack(
    google_pubsub_topic={"a": {"name": "a"}, "b": {"name": "b"}},
    google_storage_bucket={"src": {"name": "s", "versioning": {"enabled": True}}},
)
NEW = stack(
    google_pubsub_topic={"a": {"name": "a"}, "c": {"name": "c"}},
    google_storage_bucket={"src": {"name": "s", "versioning": {"enabled": False}}},
)


def test_diff_by_type_and_name() -> None:
    diff = watch.diff_stack(OLD, NEW)
    assert diff == watch.StackDiff(
        added=("google_pubsub_topic.c",),
        changed=("google_storage_bucket.src",),
        removed=("google_pubsub_topic.b",),
    )
    assert not watch.diff_stack(OLD, json.loads(json.dumps(OLD)))


def test_diff_of_new_and_removed_stacks_and_data_sources() -> None:
    with_data = {**NEW, "data": {"google_project": {"project": {}}}}
    assert watch.diff_stack(None, with_data).added == (
        "data.google_project.project",
        "google_pubsub_topic.a",
        "google_pubsub_topic.c",
        "google_storage_bucket.src",
    )
    assert watch.diff_stack(with_data, None).removed[0] == "data.google_project.project"


def test_format_diffs() -> None:
    lines = watch.format_diffs({"dev": OLD, "old": OLD}, {"dev": NEW, "prod": NEW, "old": OLD})
    assert lines == [
        "dev: 1 added, 1 changed, 1 removed",
        "  + google_pubsub_topic.c",
        "  ~ google_storage_bucket.src",
        "  - google_pubsub_topic.b",
        "old: no resource changes",
        "prod: new stack, 3 added, 0 changed, 0 removed",
        "  + google_pubsub_topic.a",
        "  + google_pubsub_topic.c",
        "  + google_storage_bucket.src",
    ]
    assert watch.format_diffs({}, {"dev": NEW}, max_listed=1)[1:] == [
        "  + google_pubsub_topic.a",
        "  ... and 2 more",
    ]
    assert watch.format_diffs({"dev": NEW}, {}) == ["dev: stack removed (3 resources)"]


@pytest.mark.skipif(
    not on("cdktf"), reason="cdktf's format; each flavour: tests/test_manifest_format.py"
)
def test_stable_stringify_matches_cdktf_manifest_format() -> None:
    value = {"version": "0.21.0", "stacks": {"b": {"deps": [], "x": [1]}, "a": {}}}
    assert watch.stable_stringify(value) == (
        "{\n"
        '  "stacks": {\n'
        '    "a": {\n'
        "    },\n"
        '    "b": {\n'
        '      "deps": [\n'
        "      ],\n"
        '      "x": [\n'
        "        1\n"
        "      ]\n"
        "    }\n"
        "  },\n"
        '  "version": "0.21.0"\n'
        "}"
    )


def test_changed_paths_and_snapshot(tmp_path: Path) -> None:
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.pyc").write_text("")
    (tmp_path / "a.toml").write_text("a")
    before = watch.snapshot([tmp_path])
    assert list(before) == [str(tmp_path / "a.toml")]
    (tmp_path / "a.toml").write_text("ab")
    (tmp_path / "b.toml").write_text("b")
    assert watch.changed_paths(before, watch.snapshot([tmp_path])) == {
        str(tmp_path / "a.toml"),
        str(tmp_path / "b.toml"),
    }


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_one_watch_round_resynthesizes_only_the_changed_environment(tmp_path: Path) -> None:
    from ai_workflow_app import load_environments
    from ai_workflow_app.synth import synth_environments

    config = tmp_path / "config"
    shutil.copytree(FIXTURE_CONFIG_DIR, config)
    outdir = tmp_path / "cdktf.out"
    watcher = watch.Watcher(config, ROOT / "function_src", outdir, ROOT / "constructs")

    first = watcher.step()
    assert first.errors == []
    assert first.synthesized == ["dev", "prod"]
    prod_before = (outdir / "stacks" / "prod" / "cdk.tf.json").read_bytes()

    dev = config / "dev.toml"
    text = dev.read_text()
    assert "max_instances = 3\n" in text
    dev.write_text(text.replace("max_instances = 3\n", "max_instances = 4\n"))
    second = watcher.step([str(dev)])
    assert second.errors == []
    assert (second.synthesized, second.kept) == (["dev"], ["prod"])
    assert second.lines[0] == "dev: 0 added, 3 changed, 0 removed"
    assert all(
        line.startswith("  ~ google_cloudfunctions2_function.") for line in second.lines[1:4]
    )
    assert second.lines[4:] == ["prod: no resource changes"]
    assert (outdir / "stacks" / "prod" / "cdk.tf.json").read_bytes() == prod_before

    # The merged output is exactly what a full synth of both environments writes.
    full = tmp_path / "full"
    synth_environments(
        load_environments([config / "dev.toml", config / "prod.toml"]), ROOT / "function_src", full
    )
    assert tree(outdir) == tree(full)

    # Bad settings: one line per problem, nothing written, and the watcher carries on.
    before = tree(outdir)
    dev.write_text(text.replace("max_instances = 3\n", "max_instances = 0\n"))
    bad = watcher.step([str(dev)])
    assert bad.errors
    assert all(e.startswith("error: ") and "\n" not in e for e in bad.errors)
    assert any("max_instances: got 0, allowed 1..1000" in e for e in bad.errors)
    assert tree(outdir) == before

    unchanged = watcher.step([str(config / "prod.toml")])
    assert (unchanged.errors, unchanged.synthesized) == (bad.errors, [])


@pytest.mark.parametrize(
    "name",
    [
        "lazy_provider.py",
        "lazy_provider_hook.js",
        "kernel_launch.py",
        "direct_kernel.js",
        "token_stack_hook.js",
    ],
)
def test_changes_to_the_import_hooks_restart_the_process(name: str) -> None:
    watcher = watch.Watcher(Path("config"), Path("function_src"), Path("out"), Path("constructs"))
    assert watcher.needs_reexec([f"constructs/cdktf_fastsynth/{name}"])
    assert not watcher.needs_reexec(
        [
            "constructs/ai_workflow/topic.py",
            "constructs/ai_workflow_app/stack.py",
            "config/dev.toml",
        ]
    )


SMALLEST_CONFIG = """\
project_id = "acme-ai-qa"
region = "europe-west4"

[[workflows]]
name = "train"

[workflows.routes."model.train"]
template_uri = "https://europe-west4-kfp.pkg.dev/acme-ai-qa/pipelines/train-model/latest"
"""


def process_group(pgid: int) -> list[int]:
    """The processes of process group `pgid` (from /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_ctrl_c_stops_the_watcher_with_one_line(tmp_path: Path) -> None:
    """A terminal's Ctrl-C sends SIGINT to the whole foreground process group. Here it reaches
    the rest of the group first (the worst order: the jsii kernel, if it were in the group,
    would die before the watcher's exit handler talks to it), then the watcher: one line,
    no traceback, exit 0, and the Node kernel ends too."""
    config = tmp_path / "config"
    config.mkdir()
    (config / "qa.toml").write_text(SMALLEST_CONFIG)
    process = subprocess.Popen(
        [
            sys.executable, str(ROOT / "tools" / "watch.py"),
            "--config-dir", str(config), "--outdir", str(tmp_path / "out"),
            "--source-dir", str(ROOT / "function_src"),
            "--constructs-dir", str(ROOT / "constructs"),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("watching "):
                break
        else:
            raise AssertionError(f"never watching: {process.communicate()}")
        kernel = children(process.pid)
        assert kernel, "no jsii kernel child"
        others = [pid for pid in process_group(process.pid) if pid != process.pid]
        for pid in others:
            os.kill(pid, signal.SIGINT)
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert "Traceback" not in stderr, stderr
    assert stderr.splitlines() == ["stopped."], stderr
    assert process.returncode == 0
    assert not [pid for pid in kernel if Path(f"/proc/{pid}").exists()], "kernel still running"

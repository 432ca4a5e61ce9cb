"""synth_environments in-process: it replaces only the stacks it synthesizes, keeps every
other stack (and its .terraform/) byte for byte, merges manifest.json in cdktf's format, and
a write that fails at any step leaves the output exactly as it was."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from environments import FIXTURE_CONFIG_DIR, SOURCE_DIR

Tree = dict[str, Any]


def tree(root: Path) -> Tree:
    """Every entry under `root`: directories, file bytes and symlink targets."""
    found: Tree = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            found[rel] = "dir"
        else:
            found[rel] = path.read_bytes()
    return found


def envs(*names: str) -> list[Any]:
    from ai_workflow_app import load_environments

    return load_environments([FIXTURE_CONFIG_DIR / f"{name}.toml" for name in names])


def existing_output(tmp_path: Path, synth_outdir: Path) -> Path:
    """A cdktf.out as a full synth wrote it, after `terraform init` in both stacks, plus a
    stale qa stack, an older dev JSON and a file of the user's next to stacks/."""
    outdir = tmp_path / "cdktf.out"
    shutil.copytree(synth_outdir, outdir)
    for name in ("dev", "prod"):
        stack = outdir / "stacks" / name
        (stack / ".terraform" / "providers").mkdir(parents=True)
        (stack / ".terraform" / "providers" / "google").write_bytes(f"{name} plugin".encode())
        (stack / ".terraform.lock.hcl").write_text(f"# {name} lock\n")
    (outdir / "stacks" / "dev" / "cdk.tf.json").write_text('{"previous": true}')
    qa = outdir / "stacks" / "qa"
    shutil.copytree(outdir / "stacks" / "prod", qa)
    (outdir / "notes.txt").write_text("mine")
    return outdir


def failing_replace(
    monkeypatch: pytest.MonkeyPatch, fail_at: int, and_after: bool = False
) -> list[tuple[str, str]]:
    """os.replace fails (EACCES) on call number `fail_at` (and every later one if
    `and_after`); returns the calls made."""
    real = os.replace
    calls: list[tuple[str, str]] = []

    def replace(src: Any, dst: Any, **kwargs: Any) -> None:
        calls.append((str(src), str(dst)))
        if len(calls) == fail_at or (and_after and len(calls) > fail_at):
            raise PermissionError(errno.EACCES, "Permission denied", str(dst))
        real(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    return calls


def synth(outdir: Path, names: tuple[str, ...], configured: list[str] | None = None) -> Any:
    from ai_workflow_app.synth import synth_environments

    if configured is None:  # the default: keep every other stack
        return synth_environments(envs(*names), SOURCE_DIR, outdir)
    return synth_environments(envs(*names), SOURCE_DIR, outdir, configured=configured)


# --- what is replaced ------------------------------------------------------------------------


def test_env_replaces_only_its_stack(tmp_path: Path, synth_outdir: Path) -> None:
    outdir = existing_output(tmp_path, synth_outdir)
    before = tree(outdir)
    prod_inode = (outdir / "stacks" / "prod").stat().st_ino

    written = synth(outdir, ("dev",))

    after = tree(outdir)
    for name in ("prod", "qa"):  # untouched, not copied: the same directory
        assert {k: v for k, v in after.items() if k.startswith(f"stacks/{name}")} == {
            k: v for k, v in before.items() if k.startswith(f"stacks/{name}")
        }
    assert (outdir / "stacks" / "prod").stat().st_ino == prod_inode
    assert after["notes.txt"] == b"mine"
    assert after["stacks/dev/cdk.tf.json"] == (synth_outdir / "stacks/dev/cdk.tf.json").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdktf.out"]
    assert written.stacks == [outdir / "stacks" / "dev" / "cdk.tf.json"]
    assert written.removed == []


def test_env_carries_over_its_terraform_init_state(tmp_path: Path, synth_outdir: Path) -> None:
    """Kept from before: a re-synth keeps the stack's .terraform/ and lock file."""
    outdir = existing_output(tmp_path, synth_outdir)
    before = tree(outdir)
    synth(outdir, ("dev",))
    after = tree(outdir)
    carried = sorted(k for k in before if k.startswith("stacks/dev/.terraform"))
    assert len(carried) == 4  # the directory, its two entries and the lock file
    assert {k: after[k] for k in carried} == {k: before[k] for k in carried}


def test_partial_manifest_lists_every_stack_as_cdktf_writes_it(
    tmp_path: Path, synth_outdir: Path
) -> None:
    """After `--env dev` the manifest is byte for byte the one a full synth writes."""
    outdir = existing_output(tmp_path, synth_outdir)
    shutil.rmtree(outdir / "stacks" / "qa")
    full_manifest = (synth_outdir / "manifest.json").read_bytes()
    synth(outdir, ("dev",))
    assert (outdir / "manifest.json").read_bytes() == full_manifest
    synth(outdir, ("prod",))
    assert (outdir / "manifest.json").read_bytes() == full_manifest


def test_manifest_gets_a_cdktf_entry_for_a_stack_it_lacked(
    tmp_path: Path, synth_outdir: Path
) -> None:
    """prod is on disk but the old manifest does not list it (or there is none)."""
    outdir = existing_output(tmp_path, synth_outdir)
    shutil.rmtree(outdir / "stacks" / "qa")
    (outdir / "manifest.json").unlink()
    synth(outdir, ("dev",))
    assert (outdir / "manifest.json").read_bytes() == (synth_outdir / "manifest.json").read_bytes()


def test_manifest_keeps_the_old_entry_of_a_kept_stack(tmp_path: Path, synth_outdir: Path) -> None:
    import json

    outdir = existing_output(tmp_path, synth_outdir)
    manifest = json.loads((outdir / "manifest.json").read_text())
    manifest["stacks"]["qa"] = {**manifest["stacks"]["prod"], "name": "qa", "annotations": ["x"]}
    (outdir / "manifest.json").write_text(json.dumps(manifest))
    synth(outdir, ("dev",))
    merged = json.loads((outdir / "manifest.json").read_text())
    assert merged["stacks"]["qa"]["annotations"] == ["x"]
    assert sorted(merged["stacks"]) == ["dev", "prod", "qa"]


def test_full_synth_removes_only_stale_stacks(tmp_path: Path, synth_outdir: Path) -> None:
    """`configured`: stacks without a config are removed; files next to stacks/ stay, and
    re-synthesized stacks keep their .terraform/ and lock file."""
    outdir = existing_output(tmp_path, synth_outdir)
    before = tree(outdir)
    written = synth(outdir, ("dev", "prod"), configured=["dev", "prod"])
    after = tree(outdir)
    assert written.removed == ["qa"]
    assert not (outdir / "stacks" / "qa").exists()
    assert after["notes.txt"] == b"mine"
    expected = {**tree(synth_outdir), "notes.txt": b"mine"}
    expected.update({k: v for k, v in before.items() if "/.terraform" in k and "/qa" not in k})
    assert after == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdktf.out"]


def test_stack_entry_is_cdktf_format(synth_outdir: Path) -> None:
    import json

    from ai_workflow_app.synth import stable_stringify, stack_entry

    text = (synth_outdir / "manifest.json").read_text()
    assert json.loads(text)["stacks"]["dev"] == stack_entry("dev")
    assert stable_stringify(json.loads(text)) == text


# --- failures: all or nothing ---------------------------------------------------------------

# The renames a full synth does over existing_output(), in order, by the path each writes.
STEPS = [
    "stacks/dev",  # old dev aside
    "stacks/dev",  # new dev in
    "stacks/dev/.terraform",
    "stacks/dev/.terraform.lock.hcl",
    "stacks/prod",
    "stacks/prod",
    "stacks/prod/.terraform",
    "stacks/prod/.terraform.lock.hcl",
    "stacks/qa",  # stale, aside
    "manifest.json",  # old aside
    "manifest.json",  # new in
]


def test_full_synth_does_these_renames(
    tmp_path: Path, synth_outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outdir = existing_output(tmp_path, synth_outdir)
    calls = failing_replace(monkeypatch, fail_at=0)
    synth(outdir, ("dev", "prod"), configured=["dev", "prod"])
    assert len(calls) == len(STEPS)


@pytest.mark.parametrize("step", range(1, len(STEPS) + 1))
def test_a_failed_rename_at_any_step_changes_nothing(
    step: int, tmp_path: Path, synth_outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ai_workflow_app.synth import OutputError

    outdir = existing_output(tmp_path, synth_outdir)
    before = tree(tmp_path)
    failing_replace(monkeypatch, fail_at=step)
    with pytest.raises(OutputError) as caught:
        synth(outdir, ("dev", "prod"), configured=["dev", "prod"])
    shown = f"{outdir.as_posix()}/{STEPS[step - 1]}"
    assert str(caught.value) == f"cannot write {shown}: Permission denied"
    assert tree(tmp_path) == before  # .terraform/ and lock files too; no .cdktf.out.* left


def test_env_failing_before_anything_moved_changes_nothing(
    tmp_path: Path, synth_outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ai_workflow_app.synth import OutputError

    outdir = existing_output(tmp_path, synth_outdir)
    before = tree(tmp_path)
    failing_replace(monkeypatch, fail_at=1)
    with pytest.raises(OutputError, match=r"cannot write .*/cdktf.out/stacks/dev: Permission"):
        synth(outdir, ("dev",))
    assert tree(tmp_path) == before


def test_when_undoing_fails_too_the_previous_output_is_kept_and_named(
    tmp_path: Path, synth_outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ai_workflow_app.synth import OutputError

    outdir = existing_output(tmp_path, synth_outdir)
    failing_replace(monkeypatch, fail_at=6, and_after=True)  # new prod in, every undo
    with pytest.raises(OutputError) as caught:
        synth(outdir, ("dev", "prod"), configured=["dev", "prod"])
    kept = caught.value.kept
    assert kept is not None and kept.name.startswith(".cdktf.out.old-")
    assert f"the previous output is in {kept}" in str(caught.value)
    assert (kept / "stacks" / "prod" / ".terraform.lock.hcl").read_text() == "# prod lock\n"
    assert (kept / "stacks" / "dev" / "cdk.tf.json").read_text() == '{"previous": true}'


def test_an_outdir_under_a_regular_file_is_one_error(tmp_path: Path) -> None:
    from ai_workflow_app.synth import OutputError

    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError) as caught:
        synth(tmp_path / "file" / "cdktf.out", ("dev",))
    assert str(caught.value).startswith(f"cannot write {tmp_path.as_posix()}/file/cdktf.out: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]

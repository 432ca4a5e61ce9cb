"""Synthesize environments into cdktf.out, touching only the stacks being synthesized, and
never leaving a half-written result.

Everything is validated first (by the caller), then synthesized into a sibling temporary
directory (`.cdktf.out.new-*`) with the function source zip next to each stack. Only then is
the output changed, stack by stack, with renames:

1. the old `stacks/<env>` is moved aside into `.cdktf.out.old-*`,
2. the new one is moved into its place,
3. `terraform init` state of the old one (`.terraform/` and `.terraform.lock.hcl`) is moved
   into the new one, so a re-synth does not force a re-init;

then `manifest.json` is replaced the same way. If any step fails, every step already done is
undone by renames in reverse order: the output, including every `.terraform/` and lock file,
is exactly as it was, and `OutputError` names what could not be written.

What is replaced:

- `synth_environments(envs, ...)` (`main.py --env dev`): only `stacks/<env>` of `envs`.
  Every other stack directory is kept byte for byte (with its `.terraform/`), and
  `manifest.json` is merged: the synthesized stacks' entries are cdktf's new ones, every
  other stack present in `stacks/` keeps its entry (one in cdktf's format is written for a
  stack the old manifest lacked), so `cdktf diff prod` still finds prod. On CDK Terrain
  (ai_workflow.compat chose cdktn) "cdktf" here means cdktn, and the merged manifest.json is
  written in cdktn's format (`stable_stringify`).
- `configured=` names every environment that has a config (`main.py` without `--env`, the
  full synth): a stack directory of any other name is stale (its `config/<env>.toml` is
  gone) and is removed with its `.terraform/`, so `cdktf.out` lists exactly the app's
  stacks, as cdktf itself writes it, and nothing runs Terraform on a deleted environment.
  Terraform state is not in `cdktf.out` (a local backend writes it at the project root,
  gcs and cloud keep it remote), so this loses no state.

Anything else in `cdktf.out` (files next to `stacks/`) is left alone.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ai_workflow import compat
from ai_workflow.source_bundle import SourceBundle, build_source_bundle

from .config import EnvironmentConfig
from .hcl import JSON_STACK_FILE, STACK_FILES, as_terraform_hcl, stack_file

CARRIED_OVER = (".terraform", ".terraform.lock.hcl")
MANIFEST = "manifest.json"
STACK_FILE = JSON_STACK_FILE


class OutputError(Exception):
    """A path in the output could not be written; nothing was changed."""

    def __init__(self, path: str, reason: str, kept: Path | None = None) -> None:
        self.path = path
        self.reason = reason
        self.kept = kept
        message = f"cannot write {path}: {reason}"
        if kept is not None:
            message += f" (undoing failed too: the previous output is in {kept})"
        super().__init__(message)


@dataclass(frozen=True)
class Written:
    """What `synth_environments` wrote: each synthesized stack's JSON, in the order of
    `envs`, and the names of the stale stacks it removed."""

    stacks: list[Path]
    removed: list[str] = field(default_factory=list)


def synth_app(envs: Sequence[EnvironmentConfig], bundle: SourceBundle, outdir: Path) -> str:
    """Synthesize `envs` into `outdir` (which must be new or empty). Returns the stack file
    name: cdk.tf.json, or cdk.tf when the CLI asks for HCL (`cdktf synth --hcl` sets
    SYNTH_HCL_OUTPUT=true; each stack reads that variable itself, so App's `hcl_output`
    setting alone would write JSON into cdk.tf)."""
    from .stack import ASSET_DIR, AiWorkflowStack

    app = compat.cdk.App(outdir=str(outdir))
    for env in envs:
        AiWorkflowStack(app, env, bundle)
    app.synth()
    name = stack_file(app.hcl_output)
    for env in envs:
        stack_dir = outdir / "stacks" / env.name
        if app.hcl_output:
            hcl = stack_dir / name
            hcl.write_text(as_terraform_hcl(hcl.read_text(encoding="utf-8")), encoding="utf-8")
        asset_dir = stack_dir / ASSET_DIR
        asset_dir.mkdir(parents=True, exist_ok=True)
        (asset_dir / bundle.file_name).write_bytes(bundle.data)
    return name


def synth_environments(
    envs: Sequence[EnvironmentConfig],
    source_dir: Path,
    outdir: Path,
    *,
    configured: Collection[str] | None = None,
) -> Written:
    """Synthesize `envs` into a temp dir, then move their stacks into `outdir`.

    Other stacks are kept, unless `configured` is given: then stacks whose name is not in
    it are stale and removed. Raises `OutputError` (output unchanged) if a write fails."""
    bundle = build_source_bundle(source_dir)
    shown = outdir
    outdir = outdir.resolve()
    try:
        outdir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.new-", dir=outdir.parent))
    except OSError as exc:
        raise OutputError(shown.as_posix(), _reason(exc)) from None
    try:
        try:
            written_file = synth_app(envs, bundle, staging)
        except OSError as exc:
            raise OutputError(shown.as_posix(), _reason(exc)) from None
        names = [env.name for env in envs]
        if os.path.lexists(outdir):
            removed = _swap(outdir, staging, names, configured, shown)
        else:
            removed = []
            try:
                os.replace(staging, outdir)
            except OSError as exc:
                raise OutputError(shown.as_posix(), _reason(exc)) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Written([outdir / "stacks" / name / written_file for name in names], removed)


class _Journal:
    """Changes to the output, each with its undo, and the output path each one writes."""

    def __init__(self, outdir: Path, shown: Path) -> None:
        self.outdir = outdir
        self.shown = shown
        self.undos: list[Callable[[], None]] = []
        self.writing = outdir

    def show(self, path: Path) -> str:
        return (self.shown / path.relative_to(self.outdir)).as_posix()

    def mkdir(self, path: Path) -> None:
        self.writing = path
        path.mkdir()
        self.undos.append(path.rmdir)

    def move(self, src: Path, dst: Path, writing: Path) -> None:
        self.writing = writing
        os.replace(src, dst)
        self.undos.append(lambda: os.replace(dst, src))

    def undo(self) -> None:
        while self.undos:
            self.undos[-1]()
            self.undos.pop()


def _swap(
    outdir: Path,
    staging: Path,
    names: Sequence[str],
    configured: Collection[str] | None,
    shown: Path,
) -> list[str]:
    """Move the staged stacks and manifest into the existing `outdir`: all or nothing.
    Returns the stale stacks removed."""
    stacks = outdir / "stacks"
    journal = _Journal(outdir, shown)
    try:
        retired = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.old-", dir=outdir.parent))
    except OSError as exc:
        raise OutputError(shown.as_posix(), _reason(exc)) from None
    stale: list[str] = []
    try:
        (retired / "stacks").mkdir()
        existing = (
            [p.name for p in sorted(stacks.iterdir()) if p.is_dir()] if stacks.is_dir() else []
        )
        if configured is not None:
            stale = [n for n in existing if n not in configured and n not in names]
        present = sorted(
            {
                n
                for n in existing
                if n not in stale and any((stacks / n / f).is_file() for f in STACK_FILES)
            }
            | set(names)
        )
        manifest = _merged_manifest(outdir / MANIFEST, staging / MANIFEST, present)
        (staging / MANIFEST).write_text(manifest, encoding="utf-8")
        if not os.path.lexists(stacks):
            journal.mkdir(stacks)
        for name in names:
            target, old = stacks / name, retired / "stacks" / name
            if os.path.lexists(target):
                journal.move(target, old, writing=target)
            journal.move(staging / "stacks" / name, target, writing=target)
            for item in CARRIED_OVER:
                if old.is_dir() and not old.is_symlink() and os.path.lexists(old / item):
                    journal.move(old / item, target / item, writing=target / item)
        for name in stale:
            journal.move(stacks / name, retired / "stacks" / name, writing=stacks / name)
        if os.path.lexists(outdir / MANIFEST):
            journal.move(outdir / MANIFEST, retired / MANIFEST, writing=outdir / MANIFEST)
        journal.move(staging / MANIFEST, outdir / MANIFEST, writing=outdir / MANIFEST)
    except OSError as exc:
        failed = journal.show(journal.writing)
        try:
            journal.undo()
        except OSError:
            raise OutputError(failed, _reason(exc), kept=retired) from None
        shutil.rmtree(retired, ignore_errors=True)
        raise OutputError(failed, _reason(exc)) from None
    shutil.rmtree(retired, ignore_errors=True)
    return stale


# --- manifest.json ----------------------------------------------------------------------


def stack_entry(name: str) -> dict[str, Any]:
    """cdktf's manifest entry for a top-level stack `name` without dependencies."""
    return {
        "annotations": [],
        "constructPath": name,
        "dependencies": [],
        "name": name,
        "stackMetadataPath": f"stacks/{name}/metadata.json",
        "synthesizedStackPath": f"stacks/{name}/{STACK_FILE}",
        "workingDirectory": f"stacks/{name}",
    }


def _merged_manifest(old_path: Path, new_path: Path, present: Sequence[str]) -> str:
    """The new manifest with an entry for every stack in `present`: the new entry where
    there is one, else the old manifest's, else `stack_entry`. cdktf's bytes when nothing
    needed merging."""
    new_text = new_path.read_text(encoding="utf-8")
    new = json.loads(new_text)
    try:
        old_stacks = json.loads(old_path.read_text(encoding="utf-8"))["stacks"]
        if not isinstance(old_stacks, dict):
            old_stacks = {}
    except (OSError, ValueError, TypeError, KeyError):
        old_stacks = {}
    stacks = {
        name: new["stacks"].get(name) or old_stacks.get(name) or stack_entry(name)
        for name in present
    }
    if stacks == new["stacks"]:
        return new_text
    return stable_stringify({**new, "stacks": stacks})


def stable_stringify(value: Any, level: int = 0, flavour: str | None = None) -> str:
    """manifest.json's text as the framework writes it (`flavour`: "cdktf" or "cdktn"; by
    default the one ai_workflow.compat chose). Both sort keys and indent by 2:

    - cdktf: json-stable-stringify with `{space: 2}`; empty containers still get a line
      break (`[\\n  ]`);
    - cdktn: safe-stable-stringify with indent 2, i.e. JSON.stringify's layout: `[]`, `{}`.
    """
    if flavour is None:
        flavour = compat.NAME
    if flavour == "cdktn":
        text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
        return text.replace("\n", "\n" + "  " * level)
    if flavour != "cdktf":
        raise ValueError(f"flavour: got {flavour!r}, allowed cdktf or cdktn")
    indent = "\n" + "  " * level
    if isinstance(value, dict):
        items = [
            f"{indent}  {json.dumps(k, ensure_ascii=False)}: "
            + stable_stringify(v, level + 1, flavour)
            for k, v in sorted(value.items())
        ]
        return "{" + ",".join(items) + indent + "}"
    if isinstance(value, list):
        return (
            "["
            + ",".join(f"{indent}  {stable_stringify(v, level + 1, flavour)}" for v in value)
            + (indent + "]")
        )
    return json.dumps(value, ensure_ascii=False)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)

"""Write what a Terraform Cloud VCS-driven workspace's working directory needs (`make
export-stack ENV=dev DEST=infra/dev`): the stack's `cdk.tf.json` and its function zip under
`assets/`, byte for byte, nothing else (no `.terraform/`, no state, no lock file).

    .venv/bin/python tools/export_stack.py --env dev --dest infra/dev [--outdir cdktf.out]

The stack must be current (the preflight's check: what the settings and code synthesize
now). DEST may be new, empty, or a previous export: a directory holding only `cdk.tf.json`,
`assets/` (regular files) and, if you added one, `.terraform.lock.hcl`, which is kept. A
re-export replaces `cdk.tf.json` and `assets/` (an old zip goes). DEST inside `cdktf.out`
(replaced by every synth) or any other non-empty directory is refused, one line, exit 2.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from preflight import OneLineParser, stack_problems
from stack_files import ASSET_DIR, STACK_FILE, workspace_files

LOCK_FILE = ".terraform.lock.hcl"
EXPORT_ENTRIES = frozenset({STACK_FILE, ASSET_DIR, LOCK_FILE})
ALLOWED_DEST = "a new or empty directory outside cdktf.out, or a previous export"


def dest_problem(dest: str, outdir: Path) -> str | None:
    """Why directory `dest` cannot take an export, or None."""
    if not dest:
        return f"DEST: got '', allowed {ALLOWED_DEST}"
    path = Path(dest)
    resolved, out = path.resolve(), outdir.resolve()
    if resolved == out or out in resolved.parents:
        return (
            f"DEST: got {dest!r}, allowed {ALLOWED_DEST} "
            f"({outdir.as_posix()} is replaced by every synth)"
        )
    if not os.path.lexists(path):
        return None
    if path.is_symlink() or not path.is_dir():
        return f"DEST: got {dest!r} (not a directory), allowed {ALLOWED_DEST}"
    if not any(path.iterdir()):
        return None
    foreign = _not_exported(path)
    if not foreign and (path / STACK_FILE).is_file():
        return None
    held = f"holds {', '.join(foreign)}" if foreign else f"no {STACK_FILE}"
    return f"DEST: got {dest!r} ({held}), allowed {ALLOWED_DEST}"


def _not_exported(dest: Path) -> list[str]:
    """What in `dest` an export does not write or keep (empty: `dest` is an export)."""
    foreign = sorted(p.name for p in dest.iterdir() if p.name not in EXPORT_ENTRIES)
    assets = dest / ASSET_DIR
    if assets.is_symlink() or (os.path.lexists(assets) and not assets.is_dir()):
        return [*foreign, ASSET_DIR]
    if assets.is_dir():
        foreign += [
            p.relative_to(dest).as_posix()
            for p in sorted(assets.iterdir())
            if p.is_symlink() or not p.is_file()
        ]
    return foreign


def export(files: dict[str, bytes], dest: Path) -> None:
    """Write `files` into `dest` (checked by `dest_problem`): written beside it first, then
    renamed in, so a failed write leaves `dest` as it was; a lock file in `dest` is kept."""
    dest.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{dest.name}.export-", dir=dest.parent))
    try:
        new = stage / "new"
        (new / ASSET_DIR).mkdir(parents=True)
        for name, data in files.items():
            path = new / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        for path in new.rglob("*"):  # the same modes whatever the umask
            path.chmod(0o755 if path.is_dir() else 0o644)
        if os.path.lexists(dest / ASSET_DIR):
            os.replace(dest / ASSET_DIR, stage / "old-assets")
        os.replace(new / ASSET_DIR, dest / ASSET_DIR)
        os.replace(new / STACK_FILE, dest / STACK_FILE)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="export-stack", description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True)
    parser.add_argument("--dest", required=True, help="the directory to write (DEST)")
    parser.add_argument("--config-dir", type=Path, default=Path("config"))
    parser.add_argument("--outdir", type=Path, default=Path("cdktf.out"))
    parser.add_argument("--source-dir", type=Path, default=Path("function_src"))
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    problems = [p for p in [dest_problem(args.dest, args.outdir)] if p]
    problems += stack_problems(args.env, args.config_dir, args.outdir, args.source_dir)
    for problem in problems:
        print(f"export-stack: {problem}", file=sys.stderr)
    if problems:
        return 2
    stack_dir = args.outdir / "stacks" / args.env
    files = workspace_files(stack_dir)
    try:
        export(files, Path(args.dest))
    except OSError as exc:
        print(f"export-stack: cannot write {args.dest}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"exported {args.env}: {stack_dir.as_posix()} -> {args.dest} ({', '.join(files)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What a Terraform working directory needs from a synthesized stack, and nothing else.

A stack directory (`cdktf.out/stacks/<env>`) holds `cdk.tf.json`, the function zip under
`assets/`, and, once Terraform has run there, `.terraform/`, a lock file, maybe plan files.
A Terraform Cloud workspace (VCS- or API-driven) needs only the first two: `.terraform/`
holds symlinks that Terraform Cloud rejects ("illegal slug") and machine-local state, and
the lock file is left to the workspace (the provider version is pinned exactly in the JSON).

`workspace_files` lists them (relative POSIX path -> bytes), `export-stack`, `tfc-run` and
the preflight's "is the stack current" check all use it, so they agree on what a stack is.
`tarball` packs them into the deterministic `.tar.gz` a configuration version uploads.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

STACK_FILE = "cdk.tf.json"
ASSET_DIR = "assets"


class StackFilesError(Exception):
    """The stack directory holds something a workspace cannot take (one line)."""


def workspace_files(stack_dir: Path) -> dict[str, bytes]:
    """`cdk.tf.json` and every file under `assets/`, sorted by path. Raises
    FileNotFoundError without `cdk.tf.json`, StackFilesError for a symlink under assets/."""
    files = {STACK_FILE: (stack_dir / STACK_FILE).read_bytes()}
    assets = stack_dir / ASSET_DIR
    if assets.is_dir():
        for path in sorted(assets.rglob("*")):
            rel = path.relative_to(stack_dir).as_posix()
            if path.is_symlink():
                raise StackFilesError(f"{rel} is a symlink; a workspace takes regular files only")
            if path.is_file():
                files[rel] = path.read_bytes()
    return dict(sorted(files.items()))


def tarball(files: dict[str, bytes]) -> bytes:
    """A `.tar.gz` of `files`: sorted, regular files 0644 and directories 0755, owner 0,
    no names, no timestamps (tar and gzip), so the same files give the same bytes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        directories = sorted({str(Path(rel).parent) for rel in files} - {"."})
        for name in directories:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            archive.addfile(_anonymous(info))
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(_anonymous(info), io.BytesIO(data))
    packed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, mtime=0) as compressed:
        compressed.write(raw.getvalue())
    return packed.getvalue()


def _anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info

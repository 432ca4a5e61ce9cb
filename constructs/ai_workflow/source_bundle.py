"""A deterministic zip of the handler source, named by its content hash.

cdktf's TerraformAsset stamps file mtimes into its zip, so two checkouts of the same
commit produce different bytes and a different object name. This bundle sorts entries,
fixes timestamps and modes and stores (no compression, so the bytes do not depend on the
zlib build), so the same tree always gives the same bytes and the same object name, and a
code change (only) redeploys the function.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
EXCLUDED_DIRS = frozenset(
    {
        "__pycache__",
        ".venv",
        "venv",
        "env",
        ".git",
        "tests",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        "node_modules",
    }
)
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
EXCLUDED_NAMES = frozenset({".DS_Store", ".env"})
# Secrets never ship in the zip (the function reads them from Secret Manager, secret_env):
# local env files and key files are left out, and a file holding a private key is refused.
SECRET_FILE = re.compile(r"^(\.env\..*|.*\.(key|pem|p12|pfx)|id_(rsa|ecdsa|ed25519).*)$")
PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----|\"private_key\"\s*:")


class SecretInSourceError(ValueError):
    """A file of the handler source holds a private key: one line naming the file."""


@dataclass(frozen=True)
class SourceBundle:
    data: bytes
    sha256: str
    files: tuple[str, ...]

    @property
    def object_name(self) -> str:
        return f"function-source/{self.sha256}.zip"

    @property
    def file_name(self) -> str:
        return f"function-source-{self.sha256[:16]}.zip"


def bundle_files(source_dir: Path) -> list[str]:
    """Relative POSIX paths that go into the zip, sorted."""
    files = []
    for path in source_dir.rglob("*"):
        rel = path.relative_to(source_dir)
        if any(part in EXCLUDED_DIRS for part in rel.parts[:-1]) or rel.parts[0] in EXCLUDED_DIRS:
            continue
        if path.is_dir() or path.is_symlink():
            continue
        if path.name in EXCLUDED_NAMES or path.name.endswith(EXCLUDED_SUFFIXES):
            continue
        if SECRET_FILE.fullmatch(path.name):
            continue
        files.append(rel.as_posix())
    return sorted(files)


def build_source_bundle(source_dir: Path) -> SourceBundle:
    """Zip `source_dir` deterministically; raises FileNotFoundError if it has no main.py,
    SecretInSourceError if a file holds a private key."""
    if not (source_dir / "main.py").is_file():
        raise FileNotFoundError(f"{source_dir.as_posix()}: no main.py to deploy")
    files = bundle_files(source_dir)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for rel in files:
            info = zipfile.ZipInfo(rel, date_time=FIXED_DATE_TIME)
            info.external_attr = (0o100644 & 0xFFFF) << 16
            info.create_system = 3
            content = (source_dir / rel).read_bytes()
            if PRIVATE_KEY.search(content):
                raise SecretInSourceError(
                    f"{(source_dir / rel).as_posix()}: holds a private key, allowed no secrets "
                    "in the function source (use secret_env: Secret Manager)"
                )
            archive.writestr(info, content)
    data = buffer.getvalue()
    return SourceBundle(data=data, sha256=hashlib.sha256(data).hexdigest(), files=tuple(files))

"""Write a hash-locked requirements file: every pin of REQUIREMENTS and CONSTRAINTS with
the sha256 of each of its wheels and sdists, so `pip install --require-hashes` installs
exactly what was locked (run by `make lock`).

    tools/lock_requirements.py --uv .venv-lock/bin/uv \
        requirements.txt constraints.txt requirements.lock

The editable project (`-e .`) is left out (pip cannot hash-check it; the Makefile installs
it with --no-deps --no-build-isolation after the lock). The resolution is for CPython 3.11
on Linux, reads no uv or pip configuration, and the file has no timestamp: the same inputs
give the same lock on any machine; each pin carries the hashes of all its files, so one
lock serves x86_64 and aarch64.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

# The Python of this project's machines (3.11.7); some pins (soupsieve 4.1.4, in checkov's
# tree) need 3.11.5 or newer, which a bare "3.11" (3.11.0) would not resolve.
PYTHON_VERSION = "3.11.7"
PLATFORM = "linux"


def without_editables(requirements: Path) -> str:
    """The requirements with `-e` lines dropped; `-r`/`-c` includes stay relative to the
    working directory (the project root)."""
    lines = requirements.read_text(encoding="utf-8").splitlines()
    return "".join(
        f"{line}\n" for line in lines if not line.strip().startswith(("-e", "--editable"))
    )


def header(requirements: Path, constraints: Path) -> str:
    return (
        f"# Hash-locked from {requirements.as_posix()} + {constraints.as_posix()} by `make lock`"
        " (tools/lock_requirements.py).\n"
        "# Do not edit: change a pin there and run `make lock`. Installed with\n"
        "# `pip install --require-hashes --no-deps -r` this file.\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uv", default="uv", help="the pinned uv executable")
    parser.add_argument("requirements", type=Path)
    parser.add_argument("constraints", type=Path)
    parser.add_argument("lock", type=Path)
    args = parser.parse_args(argv)
    result = subprocess.run(
        [
            args.uv,
            "pip",
            "compile",
            "-",
            "--constraint",
            str(args.constraints),
            "--generate-hashes",
            "--python-version",
            PYTHON_VERSION,
            "--python-platform",
            PLATFORM,
            "--no-config",
            "--no-header",
            "--no-annotate",
            "--quiet",
        ],
        input=without_editables(args.requirements),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        print(
            f"lock_requirements: {args.lock}: uv failed: {result.stderr.strip()}", file=sys.stderr
        )
        return 2
    args.lock.write_text(
        header(args.requirements, args.constraints) + result.stdout, encoding="utf-8"
    )
    print(f"locked {args.lock.as_posix()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Installs are hash-locked and the locks are current: every Python package `make install`
puts in a venv is pinned with its sha256 (pip --require-hashes), the locks pin exactly
what requirements + constraints pin, and npm installs from a lock with an integrity hash
for every package."""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
from pathlib import Path

import pytest
from environments import ROOT

from ai_workflow import compat

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """name -> version of every `name==version` line, following `-r` includes."""
    found: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("-r "):
            found |= pins(path.parent / line.removeprefix("-r ").strip())
        elif match := PIN.match(line):
            found[normalized(match.group(1))] = match.group(2)
    return found


def locked(path: Path) -> dict[str, list[str]]:
    """name==version -> its hashes, from a `--generate-hashes` lock."""
    entries: dict[str, list[str]] = {}
    current = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := PIN.match(line):
            current = f"{normalized(match.group(1))}=={match.group(2)}"
            entries[current] = []
        elif current and HASH.search(line):
            entries[current] += HASH.findall(line)
    return entries


def makefile_locks() -> list[tuple[Path, Path, Path]]:
    """The LOCKS triples of the Makefile (<requirements>:<constraints>:<lock>)."""
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    value = re.search(r"^LOCKS :=(.*)$", text, re.M)
    assert value, "Makefile has no LOCKS"
    triples = [tuple(ROOT / part for part in item.split(":")) for item in value.group(1).split()]
    return [t for t in triples if len(t) == 3]  # type: ignore[misc]


LOCKS = makefile_locks()


def test_every_venv_has_a_lock() -> None:
    assert [lock.name for _, _, lock in LOCKS][:2] == [
        "requirements.lock",
        "requirements-cdktn.lock",
    ]


@pytest.mark.parametrize(("requirements", "constraints", "lock"), LOCKS, ids=lambda p: p.name)
def test_the_lock_pins_exactly_the_constraints_each_with_hashes(
    requirements: Path, constraints: Path, lock: Path
) -> None:
    entries = locked(lock)
    assert entries, lock
    assert {k: v for k, v in entries.items() if not v} == {}, "pins without a hash"
    lock_pins = dict(entry.split("==") for entry in entries)
    assert lock_pins == pins(constraints), f"{lock.name} is stale: run `make lock`"
    direct = pins(requirements)
    assert {k: lock_pins.get(k) for k in direct} == direct
    text = lock.read_text()
    assert "-e " not in text and "file://" not in text and "/work/" not in text
    assert text.startswith(f"# Hash-locked from {requirements.name} + {constraints.name} ")


def test_the_lock_tool_is_pinned_with_hashes() -> None:
    entries = locked(ROOT / "requirements-lock.txt")
    assert list(entries) == ["uv==0.13.8"]
    assert len(entries["uv==0.13.8"]) >= 10  # every platform's wheel and the sdist


def test_this_venv_holds_what_its_lock_pins() -> None:
    lock = ROOT / ("requirements.lock" if compat.NAME == "cdktf" else "requirements-cdktn.lock")
    wrong = {
        name: (version, importlib.metadata.version(name))
        for name, version in (entry.split("==") for entry in locked(lock))
        if importlib.metadata.version(name) != version
    }
    assert wrong == {}


def test_make_installs_python_packages_only_hash_checked() -> None:
    """What `make install` (and the cdktn, checkov and lock venvs) would run, from make's dry
    run."""
    venvs = (".venv", ".venv-cdktn", ".venv-checkov", ".venv-lock")
    dry = subprocess.run(
        ["make", "-n", "-B", *(f"{venv}/.installed" for venv in venvs)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.replace("\\\n", " ")
    commands = [
        c.strip() for line in dry.splitlines() for c in line.split("&&") if "pip install" in c
    ]
    # locked deps + the project for .venv and .venv-cdktn; locked deps alone for the others
    assert len(commands) == 6
    for command in commands:
        if command.endswith("-e ."):
            assert "--no-deps --no-build-isolation" in command, command
        else:
            assert re.search(r"--require-hashes\s+--no-deps -r \S+\.(lock|txt)$", command), command


def test_npm_installs_from_the_lock_with_an_integrity_hash_for_every_package() -> None:
    assert "npm ci " in (ROOT / "Makefile").read_text()
    lock = json.loads((ROOT / "package-lock.json").read_text())
    packages = {k: v for k, v in lock["packages"].items() if k}
    assert packages
    unchecked = []
    for path, package in packages.items():
        if package.get("integrity", "").startswith("sha512-"):
            assert package.get("resolved", "https://").startswith("https://"), path
        elif package.get("inBundle"):
            # Shipped inside its parent's tarball, which the parent's integrity covers.
            parent = path.rsplit("/node_modules/", 1)[0]
            while parent in packages and packages[parent].get("inBundle"):
                parent = parent.rsplit("/node_modules/", 1)[0]
            assert packages[parent]["integrity"].startswith("sha512-"), path
        else:
            unchecked.append(path)
    assert unchecked == []

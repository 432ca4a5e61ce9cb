"""The handler zip: only deployable files, same bytes whatever the mtimes or modes."""

from __future__ import annotations

import ast
import io
import os
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from ai_workflow.source_bundle import build_source_bundle

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    shutil.copytree(ROOT / "function_src", src, ignore=shutil.ignore_patterns("__pycache__"))
    return src


def names(data: bytes) -> list[str]:
    return zipfile.ZipFile(io.BytesIO(data)).namelist()


def test_bundle_has_the_handler_and_its_requirements(source: Path) -> None:
    bundle = build_source_bundle(source)
    listed = names(bundle.data)
    assert {"main.py", "requirements.txt", "workflow_handler/app.py"} <= set(listed)
    assert listed == sorted(listed)


def test_caches_tests_and_virtualenvs_are_left_out(source: Path) -> None:
    clean = build_source_bundle(source)
    for junk in (
        "__pycache__/main.cpython-312.pyc",
        "workflow_handler/__pycache__/x.pyc",
        ".venv/lib/site.py",
        "venv/bin/python",
        "tests/test_x.py",
        "stray.pyc",
        ".DS_Store",
        ".pytest_cache/v",
        "node_modules/x.js",
    ):
        path = source / junk
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("junk")
    dirty = build_source_bundle(source)
    assert names(dirty.data) == names(clean.data)
    assert dirty.sha256 == clean.sha256


def test_stable_across_mtimes_and_modes(source: Path) -> None:
    first = build_source_bundle(source)
    for i, path in enumerate(sorted(source.rglob("*"))):
        if path.is_file():
            os.utime(path, (1_000_000_000 + i, 1_700_000_000 + i * 7))
            path.chmod(0o755 if i % 2 else 0o600)
    second = build_source_bundle(source)
    assert second.data == first.data
    info = zipfile.ZipFile(io.BytesIO(second.data)).infolist()
    assert {i.date_time for i in info} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in info} == {0o100644}


def test_a_code_change_changes_the_object_name(source: Path) -> None:
    before = build_source_bundle(source)
    (source / "main.py").write_text((source / "main.py").read_text() + "\n# change\n")
    after = build_source_bundle(source)
    assert after.object_name != before.object_name
    assert after.object_name == f"function-source/{after.sha256}.zip"


def test_a_source_dir_without_main_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no main\.py to deploy"):
        build_source_bundle(tmp_path)


# --- What the function ships: the handler and nothing else ---------------------------------------

HANDLER_FILES = (
    "main.py",
    "requirements.txt",
    "workflow_handler/__init__.py",
    "workflow_handler/app.py",
    "workflow_handler/contract.py",
    "workflow_handler/events.py",
    "workflow_handler/google_apis.py",
    "workflow_handler/logs.py",
    "workflow_handler/settings.py",
    "workflow_handler/wire.py",
)
# Top-level imports its requirements.txt provides (flask comes with functions-framework).
REQUIRED_IMPORTS = {"functions_framework", "flask", "google", "requests"}


def test_the_deployed_bundle_is_exactly_the_handler() -> None:
    """The zip the stack uploads (function_src/, as synth builds it): the handler's files,
    its contract among them, and nothing of the stack (constructs/) or of the tests."""
    bundle = build_source_bundle(ROOT / "function_src")
    assert bundle.files == HANDLER_FILES
    assert names(bundle.data) == list(HANDLER_FILES)


def _imports(source: str) -> tuple[set[str], set[str]]:
    """(top-level absolute imports, relative imports) of one module."""
    absolute: set[str] = set()
    relative: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            absolute |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            absolute.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            relative.add(node.module or "")
    return absolute, relative


def test_the_bundle_imports_only_itself_its_requirements_and_the_stdlib() -> None:
    bundle = build_source_bundle(ROOT / "function_src")
    archive = zipfile.ZipFile(io.BytesIO(bundle.data))
    allowed = set(sys.stdlib_module_names) | REQUIRED_IMPORTS | {"workflow_handler"}
    for name in bundle.files:
        if name.endswith(".py"):
            absolute, _ = _imports(archive.read(name).decode())
            assert absolute <= allowed, f"{name} imports {sorted(absolute - allowed)}"


def test_the_contract_is_stdlib_only_and_imports_nothing_else_of_the_handler() -> None:
    """The stack imports it: it must cost nothing and pull in none of the handler."""
    absolute, relative = _imports((ROOT / "function_src/workflow_handler/contract.py").read_text())
    assert absolute <= set(sys.stdlib_module_names) and "workflow_handler" not in absolute
    assert relative == set()

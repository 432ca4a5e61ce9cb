"""The handler zip: only deployable files, same bytes whatever the mtimes or modes."""

from __future__ import annotations

import io
import os
import shutil
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

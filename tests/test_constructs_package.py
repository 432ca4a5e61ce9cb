"""constructs/ is a source root, never a package that shadows PyPI's `constructs`."""

from __future__ import annotations

from pathlib import Path

import constructs
from constructs import Construct

ROOT = Path(__file__).resolve().parent.parent


def test_constructs_resolves_to_the_pypi_package() -> None:
    origin = Path(constructs.__file__).resolve()
    assert "site-packages" in origin.parts
    assert ROOT / "constructs" not in origin.parents
    assert Construct.__module__.startswith("constructs")


def test_constructs_folder_is_not_a_package() -> None:
    assert not (ROOT / "constructs" / "__init__.py").exists()
    assert (ROOT / "constructs" / "ai_workflow" / "__init__.py").exists()


def test_ai_workflow_imports_from_the_source_root() -> None:
    import ai_workflow

    assert Path(ai_workflow.__file__).resolve().parent == ROOT / "constructs" / "ai_workflow"

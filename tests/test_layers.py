"""The layers depend one way and the library changes nothing by being imported.

Each check runs in a fresh Python, since this test process has opted in to the speed-ups
(conftest) and so already has cdktf, the import hook and the jsii kernel.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from environments import FIXTURE_CONFIG_DIR, ROOT

CONSTRUCTS = ROOT / "constructs"
FRAMEWORK_PACKAGES = {"cdktf", "cdktn", "cdktf_cdktf_provider_google", "cdktn_provider_google"}

PROCESS_STATE = """
import json, os, sys, typing
def state():
    return {
        "meta_path": [type(f).__module__ + "." + type(f).__qualname__ for f in sys.meta_path],
        "get_type_hints": typing.get_type_hints.__module__,
        "environ": dict(os.environ),
        "children": children(),
    }
def children():
    found = []
    for task in os.listdir(f"/proc/{os.getpid()}/task"):
        with open(f"/proc/{os.getpid()}/task/{task}/children") as f:
            found += f.read().split()
    return found
"""


def run_python(code: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_WORKFLOW_")}
    result = subprocess.run(
        [sys.executable, "-c", PROCESS_STATE + code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_importing_the_library_installs_no_hook_and_patches_nothing() -> None:
    seen = run_python(
        "before = state()\n"
        "import ai_workflow, ai_workflow.workflow, ai_workflow.topic, ai_workflow.bucket\n"
        "after = state()\n"
        "print(json.dumps({'before': before, 'after': after}))"
    )
    before, after = seen["before"], seen["after"]
    assert after["meta_path"] == before["meta_path"]
    assert after["get_type_hints"] == "typing"
    assert after["environ"] == before["environ"]
    # The one process is the kernel jsii itself starts for the construct classes.
    assert len(after["children"]) <= 1


def test_opting_in_is_what_installs_the_speed_ups() -> None:
    seen = run_python(
        "import cdktf_fastsynth\n"
        "imported = state()\n"
        "active = cdktf_fastsynth.enable()\n"
        "print(json.dumps({'imported': imported, 'enabled': state(), 'active': active}))"
    )
    assert not any("cdktf_fastsynth" in f for f in seen["imported"]["meta_path"])
    assert seen["imported"]["children"] == []
    assert seen["active"] is True
    assert any("cdktf_fastsynth" in f for f in seen["enabled"]["meta_path"])


def test_loading_and_validating_settings_starts_no_node() -> None:
    files = sorted(str(p) for p in FIXTURE_CONFIG_DIR.glob("*.toml"))
    seen = run_python(
        "from pathlib import Path\n"
        "from ai_workflow_app import load_environments\n"
        f"envs = load_environments([Path(p) for p in {files!r}])\n"
        "print(json.dumps({'envs': [e.name for e in envs], 'state': state(),\n"
        "                  'jsii': 'jsii' in sys.modules, 'cdktf': 'cdktf' in sys.modules}))"
    )
    assert seen["envs"] == ["dev", "prod"]
    assert (seen["jsii"], seen["cdktf"], seen["state"]["children"]) == (False, False, [])


def test_publish_reads_settings_without_node() -> None:
    """tools/publish.py resolves --env/--workflow with the settings modules only."""
    seen = run_python(
        "import runpy\n"
        "sys.argv = ['publish.py', '--env', 'dev', '--workflow', 'nope', '--type', 'a.b',\n"
        "            '--config-dir', 'tests/fixtures/config']\n"
        "try:\n"
        "    runpy.run_path('tools/publish.py', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    code = exit.code\n"
        "print(json.dumps({'code': code, 'jsii': 'jsii' in sys.modules,\n"
        "                  'children': state()['children']}))"
    )
    assert seen == {"code": 2, "jsii": False, "children": []}


def imports_of_file(path: Path) -> set[str]:
    """Top-level packages one module imports (relative imports stay inside its package)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def imports_of(package: str) -> set[str]:
    """Top-level packages that the modules of `package` import."""
    return set().union(*(imports_of_file(p) for p in (CONSTRUCTS / package).glob("*.py")))


@pytest.mark.parametrize(
    ("package", "never"),
    [
        ("ai_workflow", {"ai_workflow_app", "cdktf_fastsynth"}),
        ("cdktf_fastsynth", {"ai_workflow", "ai_workflow_app"}),
        ("ai_workflow_app", {"cdktf_fastsynth"}),
    ],
)
def test_dependencies_point_one_way(package: str, never: set[str]) -> None:
    assert imports_of(package) & never == set()


# --- The tools are the project's; the tests use them, never the reverse ------------------------

TOOLS = ROOT / "tools"
TESTS = ROOT / "tests"
_TESTS_SEGMENT = re.compile(r"(?:^|[/\\])tests(?:[/\\]|$)")


def _test_module_names() -> set[str]:
    """What `import x` could find under tests/ (tests/ and tests/handler are on sys.path when
    pytest runs): every module there, and the directory itself."""
    return {"tests"} | {path.stem for path in TESTS.rglob("*.py")}


def _is_sys_path(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "path"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
    )


def reaches_into_tests(source: str, test_modules: set[str]) -> list[str]:
    """How a tool's `source` reaches into tests/: an import (also a lazy one, or by name through
    importlib) of a module that lives there; a change to sys.path that names tests/; or any
    other path in code (not documentation) with a `tests` segment."""
    tree = ast.parse(source)
    documentation = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    found: list[tuple[int, str]] = []
    covered: set[int] = set()  # the strings of a reported sys.path change
    for node in ast.walk(tree):  # breadth first: a statement comes before its strings
        if isinstance(node, ast.Import):
            names = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module.split(".")[0]]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", ""))
            in {
                "import_module",
                "__import__",
            }
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value.split(".")[0]]
        else:
            names = []
        found += [(node.lineno, f"imports {name}") for name in names if name in test_modules]
        path_change = (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and _is_sys_path(node.func.value)
        ) or (
            isinstance(node, ast.Assign | ast.AugAssign)
            and any(
                _is_sys_path(target)
                or (isinstance(target, ast.Subscript) and _is_sys_path(target.value))
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            )
        )
        strings = [part for part in ast.walk(node) if _names_tests(part)] if path_change else []
        if strings:
            found.append((node.lineno, "puts tests/ on sys.path"))
            covered |= {id(part) for part in strings}
        elif _names_tests(node) and id(node) not in documentation | covered:
            assert isinstance(node, ast.Constant)
            found.append((node.lineno, f"names tests/ ({node.value!r})"))
    return [f"line {line}: {what}" for line, what in sorted(set(found))]


def _names_tests(node: ast.AST) -> bool:
    """A string that is the tests/ directory or a path through it."""
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and (node.value == "tests" or _TESTS_SEGMENT.search(node.value) is not None)
    )


def test_the_tests_dependency_scan_finds_each_way_in() -> None:
    """What tools/run_function.py used to do, and the other ways of doing it."""
    source = '''
"""Docs may say tests/handler."""
import sys
from pathlib import Path
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "handler"))
from handler_fixtures import handler_env
def lazy():
    import conftest
    import importlib
    return importlib.import_module("stack_helpers")
sys.path += ["/repo/tests/handler"]
HERE = "tests/handler/x.json"
'''
    assert reaches_into_tests(source, _test_module_names()) == [
        "line 6: puts tests/ on sys.path",
        "line 7: imports handler_fixtures",
        "line 9: imports conftest",
        "line 11: imports stack_helpers",
        "line 12: puts tests/ on sys.path",
        "line 13: names tests/ ('tests/handler/x.json')",
    ]


def test_tools_never_import_tests() -> None:
    tools = sorted(TOOLS.glob("*.py"))
    test_modules = _test_module_names()
    assert {path.stem for path in tools} & test_modules == set()  # no name means both
    found = {
        path.name: problems
        for path in tools
        if (problems := reaches_into_tests(path.read_text(), test_modules))
    }
    assert found == {}, "tools/ must not depend on tests/ (move shared code to tools/)"


def test_the_stack_takes_only_the_contract_from_the_handler() -> None:
    """`from workflow_handler import contract` is the one way in: the rest of the handler
    (settings, app, the lazy Google clients) stays the function's own."""
    found = set()
    for path in sorted(CONSTRUCTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {
                    (path.name, a.name) for a in node.names if a.name.startswith("workflow_handler")
                }
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "workflow_handler"
            ):
                found |= {(path.name, f"{node.module}.{a.name}") for a in node.names}
    assert {what for _, what in found} == {"workflow_handler.contract"}, sorted(found)


def test_the_library_reaches_the_framework_only_through_compat() -> None:
    """cdktf or cdktn: every construct module imports them via ai_workflow.compat, except
    under TYPE_CHECKING (type checkers see cdktf's names)."""
    direct = set()
    for path in sorted((CONSTRUCTS / "ai_workflow").glob("*.py")):
        tree = ast.parse(path.read_text())
        typing_only = {
            id(n)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
            for n in ast.walk(ast.Module(body=block.body, type_ignores=[]))
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom | ast.Import) and id(node) not in typing_only:
                names = (
                    [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else [a.name for a in node.names]
                )
                if any(n.split(".")[0] in FRAMEWORK_PACKAGES for n in names):
                    direct.add(path.name)
    assert direct <= {"compat.py"}

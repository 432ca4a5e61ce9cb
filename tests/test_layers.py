"""The layers depend one way and the library changes nothing by being imported.

Each check runs in a fresh Python, since this test process has opted in to the speed-ups
(conftest) and so already has cdktf, the import hook and the jsii kernel.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from environments import FIXTURE_CONFIG_DIR, ROOT

CONSTRUCTS = ROOT / "constructs"

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

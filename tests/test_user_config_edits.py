"""A team's first edits to config/ never turn the suite red.

A copy of the project gets the README's smallest example as config/qa.toml and one more
workflow chained onto dev's last one (a 4th, with the shipped config), as the README
suggests; then the whole pytest suite runs in that copy and must pass. (Inside the copy
this test does not run again.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from environments import ROOT

from ai_workflow_app import load_environment
from workflow_handler import contract

IN_COPY = "AI_WORKFLOW_IN_PROJECT_COPY"
CHAINED = "chained-check"


def chained_workflow(dev_toml: str) -> str:
    """A new workflow chained onto the last one in `dev_toml`, routing what it publishes when
    a job succeeds (what the README's "Adding a workflow" asks of a chained workflow)."""
    last = tomllib.loads(dev_toml)["workflows"][-1]
    published = sorted(
        {
            route.get("on_success", route.get("result_event_type", contract.DEFAULT_ON_SUCCESS))
            for route in last["routes"].values()
        }
    )
    routes = "".join(
        f'\n[workflows.routes."{event_type}"]\n'
        f'template_uri = "https://europe-west4-kfp.pkg.dev/acme-ai-dev/pipelines/chained/v1"\n'
        for event_type in published
    )
    return (
        f'\n[[workflows]]\nname = "{CHAINED}"\ntrigger = "{last["name"]}"\n'
        f'description = "Reacts to {last["name"]}"\n{routes}'
    )


def project_files() -> list[str]:
    """What a clone holds: tracked files plus new ones that are not ignored."""
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in out.splitlines() if (ROOT / line).is_file()]


def copy_project(target: Path) -> None:
    for rel in project_files():
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target / rel)
    # The installed tools, shared rather than reinstalled.
    for installed in ("node_modules", ".venv", ".venv-checkov"):
        (target / installed).symlink_to(ROOT / installed)
    subprocess.run(["git", "init", "-q"], cwd=target, check=True)
    subprocess.run(["git", "add", "-A"], cwd=target, check=True)


@pytest.mark.skipif(os.environ.get(IN_COPY) == "1", reason="already running inside the copy")
def test_suite_passes_with_the_readme_example_and_a_fourth_workflow(tmp_path: Path) -> None:
    project = tmp_path / "project"
    copy_project(project)
    readme = (project / "README.md").read_text()
    smallest = re.search(r"This is a complete `config/qa.toml`:\n\n```toml\n(.*?)```", readme, re.S)
    assert smallest is not None, "README lost its smallest example"
    (project / "config" / "qa.toml").write_text(smallest.group(1))
    dev = project / "config" / "dev.toml"
    dev.write_text(dev.read_text() + chained_workflow(dev.read_text()))

    env = {
        **os.environ,
        IN_COPY: "1",
        # The copy's own construct library, not the one installed from this checkout.
        "PYTHONPATH": str(project / "constructs"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    tail = "\n".join(result.stdout.splitlines()[-30:])
    assert result.returncode == 0, tail
    assert re.search(r"^\d+ passed", result.stdout.splitlines()[-1]), tail
    # The edits really were picked up: 4 dev workflows, and the invariant tests ran on qa.
    assert [w.name for w in load_environment(dev).workflows][-1] == CHAINED
    listed = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "tests/test_terraform.py"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    assert "test_terraform_accepts_example_stack[qa]" in listed

"""ai_workflow.compat: cdktf or CDK Terrain (cdktn), chosen once, imported on first use.

The suite itself runs on the framework compat chose (cdktf in .venv, cdktn in .venv-cdktn
with `make test-cdktn`); these tests pin the choice, the errors, what importing compat
does (nothing), and that the two dependency sets differ only in the framework.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from environments import FIXTURE_CONFIG_DIR, ROOT
from frameworks import PINS

from ai_workflow import compat, rules
from ai_workflow.errors import ConfigError

BOTH = {"cdktf", "cdktn"}


def installed(*names: str):
    return lambda name: name in names


# --- choose() ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "available", "chosen"),
    [
        ({}, BOTH, "cdktf"),
        ({}, {"cdktf"}, "cdktf"),
        ({}, {"cdktn"}, "cdktn"),
        ({"AI_WORKFLOW_CDK": "cdktn"}, BOTH, "cdktn"),
        ({"AI_WORKFLOW_CDK": "cdktf"}, BOTH, "cdktf"),
        ({"AI_WORKFLOW_CDK": " cdktn "}, {"cdktn"}, "cdktn"),
        ({"AI_WORKFLOW_CDK": ""}, {"cdktn"}, "cdktn"),
    ],
)
def test_choice(environ: dict[str, str], available: set[str], chosen: str) -> None:
    assert compat.choose(environ, installed(*available)) == chosen


@pytest.mark.parametrize("value", ["terraform", "CDKTF", "cdktf,cdktn", "cdk"])
def test_a_bad_value_is_one_clear_line(value: str) -> None:
    with pytest.raises(compat.FrameworkError) as raised:
        compat.choose({"AI_WORKFLOW_CDK": value}, installed("cdktf", "cdktn"))
    assert isinstance(raised.value, ConfigError)
    assert raised.value.problems == [f"AI_WORKFLOW_CDK: got {value!r}, allowed cdktf or cdktn"]


def test_a_framework_that_is_not_installed_says_what_installs_it() -> None:
    with pytest.raises(compat.FrameworkError) as raised:
        compat.choose({"AI_WORKFLOW_CDK": "cdktn"}, installed("cdktf"))
    [line] = raised.value.problems
    assert line == (
        f"AI_WORKFLOW_CDK=cdktn: cdktn is not installed for {sys.executable}; "
        "`make test-cdktn` (.venv-cdktn) installs it"
    )
    with pytest.raises(compat.FrameworkError) as raised:
        compat.choose({}, installed())
    [line] = raised.value.problems
    assert line.startswith("neither cdktf nor cdktn is installed for ")
    assert "`make install` (.venv)" in line and "`make test-cdktn` (.venv-cdktn)" in line


# --- this process: the framework the suite runs on ------------------------------------------


def test_the_suite_runs_on_the_chosen_framework_with_its_pins() -> None:
    name = compat.NAME
    assert name == compat.choose()
    assert compat.FRAMEWORKS[name] == compat.PROVIDER_PACKAGE
    assert compat.cdk is sys.modules[name]
    wanted = os.environ.get("AI_WORKFLOW_CDK", "").strip()
    assert name == (wanted or ("cdktf" if importlib.util.find_spec("cdktf") else "cdktn"))
    for package, version in PINS[compat.NAME].items():
        assert importlib.metadata.version(package) == version, package


def test_provider_returns_the_chosen_providers_submodule() -> None:
    module = compat.provider("pubsub_topic")
    assert module.__name__ == f"{compat.PROVIDER_PACKAGE}.pubsub_topic"
    assert module.PubsubTopic.__module__ == module.__name__


def test_loaded_core_and_is_token_use_the_framework_in_use() -> None:
    assert compat.loaded_core() is compat.cdk
    token = compat.cdk.Token.as_string(compat.cdk.Token.as_any("${var.region}"))
    assert rules.is_token(token)
    assert rules.is_token(compat.cdk.Token.as_number("${var.retention}"))
    assert not rules.is_token("${not a token}")
    assert not rules.is_token("europe-west4")


# --- fresh processes --------------------------------------------------------------------------

FRESH = """
import json, sys
from ai_workflow import compat
seen = {"imported": sorted(m for m in ("cdktf", "cdktn", "jsii") if m in sys.modules)}
seen["loaded_core"] = compat.loaded_core() is not None
seen["name"] = compat.NAME
seen["after_name"] = sorted(m for m in ("cdktf", "cdktn", "jsii") if m in sys.modules)
print(json.dumps(seen))
"""


def run_python(code: str, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_WORKFLOW_")}
    env.update(environ)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_importing_compat_and_reading_the_name_import_no_framework() -> None:
    result = run_python(FRESH, AI_WORKFLOW_CDK=compat.NAME)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "imported": [],
        "loaded_core": False,
        "name": compat.NAME,
        "after_name": [],
    }


def test_a_bad_value_fails_on_first_use_not_on_import() -> None:
    result = run_python(
        "from ai_workflow import compat\nprint('imported')\ncompat.NAME", AI_WORKFLOW_CDK="cdk"
    )
    assert result.stdout == "imported\n"
    assert result.stderr.strip().splitlines()[-1] == (
        "ai_workflow.compat.FrameworkError: AI_WORKFLOW_CDK: got 'cdk', allowed cdktf or cdktn"
    )


def test_main_reports_a_bad_value_in_one_line(tmp_path: Path) -> None:
    main = [sys.executable, str(ROOT / "main.py"), "--config-dir", str(FIXTURE_CONFIG_DIR)]
    result = subprocess.run(
        [*main, "--outdir", str(tmp_path / "out")],
        cwd=ROOT,
        env={**os.environ, "AI_WORKFLOW_CDK": "terraform"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: AI_WORKFLOW_CDK: got 'terraform', allowed cdktf or cdktn"
    ]
    assert not (tmp_path / "out").exists()


# --- the two dependency sets ------------------------------------------------------------------


def pins(path: Path) -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return dict(line.split("==") for line in lines if "==" in line)


def requirement_lines(path: Path) -> list[str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_the_cdktn_set_differs_only_in_the_framework() -> None:
    cdktf_pins, cdktn_pins = pins(ROOT / "constraints.txt"), pins(ROOT / "constraints-cdktn.txt")
    for name, package_pins in PINS.items():
        wanted = cdktf_pins if name == "cdktf" else cdktn_pins
        assert {p: wanted.get(p) for p in package_pins} == package_pins, name
    assert {p: v for p, v in cdktf_pins.items() if p not in PINS["cdktf"]} == {
        p: v for p, v in cdktn_pins.items() if p not in PINS["cdktn"]
    }
    cdktf_lines = requirement_lines(ROOT / "requirements.txt")
    cdktn_lines = requirement_lines(ROOT / "requirements-cdktn.txt")
    framework = re.compile(
        r"^(cdktf|cdktn|cdktf-cdktf-provider-google|cdktn-provider-google|constructs)=="
    )
    assert [line for line in cdktf_lines if not framework.match(line)] == [
        line for line in cdktn_lines if not framework.match(line)
    ]
    assert [line for line in cdktn_lines if framework.match(line)] == [
        f"{p}=={v}" for p, v in PINS["cdktn"].items()
    ]


def test_make_test_cdktn_runs_the_suite_on_cdktn_in_its_own_venv() -> None:
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "--always-make", "test-cdktn"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "python3 -m venv .venv-cdktn" in dry_run
    assert (
        ".venv-cdktn/bin/python -m pip install --quiet --disable-pip-version-check "
        "--require-hashes --no-deps -r requirements-cdktn.lock"
    ) in dry_run.replace("\\\n\t", "")
    # Only cdktn is installed there, so compat chooses it (no AI_WORKFLOW_CDK to leak into
    # the .venv commands that tests run, such as the README's).
    assert "\n.venv-cdktn/bin/python -m pytest" in dry_run
    assert ".venv-cdktn/" in (ROOT / ".gitignore").read_text().splitlines()


def test_ci_runs_the_suite_on_both_frameworks() -> None:
    steps = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip().startswith("make ")
    ]
    assert steps.index("make test") < steps.index("make test-cdktn")

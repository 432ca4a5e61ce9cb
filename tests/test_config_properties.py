"""Property tests: any mutation of any example settings file synthesizes or is reported.

Every example file (config/*.toml and tests/fixtures/config/*.toml, whatever they hold) is
walked as a TOML tree, so keys added to the examples later are mutated too. A mutant is
one to four mutations at once (several keys, so cross-key rules such as min <= max or a
trigger's routes see wrong types on both sides): a key set to a value of any TOML type
(strings, integers, floats with nan and inf, booleans, offset and local date-times, dates,
times, mixed and nested arrays, inline tables, arrays of tables) or to another key's value,
a key deleted, an unknown key added to any table. Each mutant loads, or raises ConfigError
whose problems are one line each, `<file>: <key path>: ...`. The loader runs in-process
with the jsii kernel started (as in `make watch`, where a rule's token check reaches it);
a sample runs the real CLI: exit 0 and a stack, or exit 2, one `error:` line per problem,
no traceback, and the previous cdktf.out byte for byte as it was.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from config_mutants import (
    MISSING,
    Path_,
    assert_loads_or_reports,
    at,
    key_paths,
    mutated,
    table_paths,
    toml_document,
)
from environments import EXAMPLE_CONFIG_DIR, FIXTURE_CONFIG_DIR, ROOT
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ai_workflow import ConfigError, compat, rules
from ai_workflow_app.config import (
    EnvironmentConfig,
    RouteConfig,
    SecretEnvConfig,
    WorkflowConfig,
    WorkflowSettings,
    load_environment,
)

EXAMPLE_FILES = sorted(EXAMPLE_CONFIG_DIR.glob("*.toml")) + sorted(
    FIXTURE_CONFIG_DIR.glob("*.toml")
)
EXAMPLES = {p.relative_to(ROOT).as_posix(): tomllib.loads(p.read_text()) for p in EXAMPLE_FILES}
IN_PROCESS_EXAMPLES = 300
"""Per example file; with four files about 1200 mutants (~20 s on this project's CI box)."""
CLI_EXAMPLES = 24


def leaves(value: Any) -> list[Any]:
    """Every scalar and every array or table in a settings tree."""
    children = value.values() if isinstance(value, dict) else value
    found: list[Any] = []
    for child in children:
        found.append(child)
        if isinstance(child, dict | list):
            found += leaves(child)
    return found


def _fields(cls: Any, *drop: str) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if f.name not in drop)


def known_keys(path: Path_) -> tuple[str, ...]:
    """The keys a table at `path` may have beyond those it has (tables the loader reads
    into a dataclass); free-form tables such as labels have none."""
    shape = tuple("*" if isinstance(k, int) else k for k in path)
    if shape == ():
        return (*_fields(EnvironmentConfig, "name", "source_file", "notices"), "workflow_defaults")
    if shape == ("workflow_defaults",):
        return _fields(WorkflowSettings)
    if shape == ("workflows", "*"):
        return _fields(WorkflowConfig)
    if shape[:3] == ("workflows", "*", "routes") and len(shape) == 4:
        return _fields(RouteConfig)
    if shape[:3] == ("workflows", "*", "secret_env") and len(shape) == 4:
        return _fields(SecretEnvConfig)
    return ()


def settable_paths(data: dict[str, Any]) -> list[Path_]:
    """Every key and array element the file has, and every known key its tables lack."""
    paths = set(key_paths(data))
    for table in table_paths(data):
        paths |= {(*table, key) for key in known_keys(table)}
    return sorted(paths, key=lambda p: [str(k) for k in p])


# Values near the valid ones make mutants that load, so the rules after the type checks
# (ranges, cross-key order, the trigger graph) run too: every scalar (and array of scalars)
# the examples hold, and the ends of the ranges.
REALISTIC = [
    v
    for _, v in sorted(
        {
            json.dumps(v, sort_keys=True, default=str): v
            for data in EXAMPLES.values()
            for v in leaves(data)
            if not isinstance(v, dict)
            and not (isinstance(v, list) and any(isinstance(e, dict | list) for e in v))
        }.items()
    )
]
BOUNDARIES = [0, 1, 2, 5, 9, 10, 60, 100, 101, 600, 601, 1000, 1001, 3600, 3650, 3651, 604800]
toml_scalars = (
    st.text(max_size=10)
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([math.nan, math.inf, -math.inf, -1e300, 0.5])
    | st.booleans()
    | st.datetimes(timezones=st.just(datetime.UTC))
    | st.datetimes()
    | st.dates()
    | st.times()
    | st.sampled_from(["${x}", "#{x}", "allUsers", "ALL_TRAFFIC", "python313", "3", "A_B"])
)
toml_values = st.recursive(
    toml_scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=6), children, max_size=3)
        | st.lists(st.dictionaries(st.text(max_size=6), children, max_size=2), min_size=1)
    ),
    max_leaves=6,
)
values = st.sampled_from(REALISTIC) | st.sampled_from(BOUNDARIES) | toml_values
near_miss_keys = st.sampled_from(
    sorted(
        {
            k + suffix
            for cls in (EnvironmentConfig, WorkflowSettings, WorkflowConfig, RouteConfig)
            for k in _fields(cls)
            for suffix in ("s", "_", "X")
        }
    )
)


@st.composite
def mutants(draw: Callable[..., Any], data: dict[str, Any], gentle: bool = False) -> dict[str, Any]:
    """`data` with one to four mutations, each on the tree the previous ones left; `gentle`
    ones only set keys to the examples' values or the ends of ranges (more of them load)."""
    kinds = ("set", "copy") if gentle else ("set", "set", "delete", "unknown key", "copy")
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(kinds))
        existing = list(key_paths(data))
        if kind == "set" or not existing:
            path = draw(st.sampled_from(settable_paths(data)))
            value = draw(
                st.sampled_from(REALISTIC) | st.sampled_from(BOUNDARIES) if gentle else values
            )
            data = mutated(data, path, value)
        elif kind == "delete":
            data = mutated(data, draw(st.sampled_from(existing)), MISSING)
        elif kind == "unknown key":
            table = draw(st.sampled_from(list(table_paths(data))))
            name = draw(st.text(max_size=12) | near_miss_keys)
            data = mutated(data, (*table, name), draw(values))
        else:
            source, target = draw(st.sampled_from(existing)), draw(st.sampled_from(existing))
            data = mutated(data, target, at(data, source))
    return data


def kernel_alive() -> bool:
    """The jsii kernel still answers (a value it cannot carry used to kill it)."""
    return rules.is_token(compat.cdk.Token.as_number("${var.x}"))


@pytest.fixture(scope="module", autouse=True)
def jsii_kernel() -> None:
    """The core imported, so rules.is_token asks the jsii kernel as it does in `make watch`
    and in the library's own props checks."""
    assert kernel_alive()


def test_the_examples_are_walked_whole() -> None:
    """Both directories' files are mutated, each whole: every key it has, every known key
    its tables lack, and the writer gives back exactly what it read."""
    assert len(EXAMPLES) == len(EXAMPLE_FILES) >= 4
    assert {Path(name).parent.as_posix() for name in EXAMPLES} == {
        "config",
        "tests/fixtures/config",
    }
    for name, data in EXAMPLES.items():
        paths = settable_paths(data)
        assert set(key_paths(data)) < set(paths), name
        assert (
            "workflows",
            0,
            "routes",
            next(iter(data["workflows"][0]["routes"])),
            "on_start",
        ) in paths
        # A file without [workflow_defaults] (the README's smallest example) still gets one.
        if "workflow_defaults" in data:
            assert ("workflow_defaults", "vpc_egress") in paths, name
        else:
            assert ("workflow_defaults",) in paths, name
        assert tomllib.loads(toml_document(data)) == data, name


@pytest.mark.parametrize("name", sorted(EXAMPLES))
@settings(
    max_examples=IN_PROCESS_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_any_mutant_loads_or_reports_one_line_per_problem(name: str, data: st.DataObject) -> None:
    mutant = data.draw(mutants(EXAMPLES[name]))
    tomllib.loads(toml_document(mutant))  # the writer wrote what was drawn
    with tempfile.TemporaryDirectory() as tmp:
        problems = assert_loads_or_reports(mutant, Path(tmp) / Path(name).name)
    event("reported" if problems else "loads")
    assert kernel_alive()


@pytest.fixture(scope="module")
def previous_output(synth_outdir: Path) -> Path:
    """A cdktf.out from an earlier synth (the test-owned dev and prod stacks)."""
    return synth_outdir


def tree(root: Path) -> dict[str, bytes | None]:
    return {
        p.relative_to(root).as_posix(): None if p.is_dir() else p.read_bytes()
        for p in sorted(root.rglob("*"))
    }


@settings(
    max_examples=CLI_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_the_cli_synthesizes_or_exits_2_and_keeps_the_output(
    previous_output: Path, data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(sorted(EXAMPLES)))
    mutant = data.draw(mutants(EXAMPLES[name], gentle=data.draw(st.booleans())))
    with tempfile.TemporaryDirectory() as tmp:
        config, outdir = Path(tmp) / "config", Path(tmp) / "cdktf.out"
        config.mkdir()
        file = config / Path(name).name
        problems = assert_loads_or_reports(mutant, file)
        shutil.copytree(previous_output, outdir)
        before = tree(outdir)
        result = subprocess.run(
            [sys.executable, "main.py", "--config-dir", str(config), "--outdir", str(outdir)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert "Traceback" not in result.stderr, result.stderr
        event(f"exit {result.returncode}")
        if problems:
            assert result.returncode == 2, result.stderr
            shown = file.as_posix()
            assert result.stderr.splitlines() == [f"error: {p}" for p in problems]
            assert all(line.startswith(f"error: {shown}: ") for line in result.stderr.splitlines())
            assert tree(outdir) == before
        else:
            assert result.returncode == 0, result.stderr
            stack = outdir / "stacks" / file.stem / "cdk.tf.json"
            assert f"synthesized {file.stem}: " in result.stdout
            assert json.loads(stack.read_text())["resource"]


# --- regressions found by the properties -----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "line"),
    [
        # -inf looked like a number token, and jsii's JSON cannot carry it: the kernel died
        # (JSONDecodeError, then BrokenPipeError on every later call).
        ("-inf", "workflow_defaults.timeout_seconds: got -inf, allowed an integer 1..3600"),
        # A list looked like a list token if any element did; nan inside killed it the same.
        (
            '["${x}", nan]',
            "workflow_defaults.timeout_seconds: got ['${x}', nan], allowed an integer 1..3600",
        ),
        # A TOML time inside it was an AttributeError in jsii's serializer.
        (
            '["${x}", { a = 01:02:00 }]',
            "workflow_defaults.timeout_seconds: got ['${x}', {'a': datetime.time(1, 2)}], "
            "allowed an integer 1..3600",
        ),
    ],
)
def test_a_value_jsii_cannot_carry_is_one_line_and_the_kernel_lives(
    tmp_path: Path, value: str, line: str
) -> None:
    text = (FIXTURE_CONFIG_DIR / "dev.toml").read_text()
    file = tmp_path / "dev.toml"
    file.write_text(
        text.replace("max_instances = 3", f"max_instances = 3\ntimeout_seconds = {value}")
    )
    with pytest.raises(ConfigError) as caught:
        load_environment(file)
    assert caught.value.problems == [f"{file.as_posix()}: {line}"]
    assert kernel_alive()


def deeply_nested(tmp_path: Path, levels: int) -> Path:
    """The test-owned dev settings with a pipeline parameter nested `levels` arrays deep."""
    config = tmp_path / "config"
    config.mkdir()
    text = (FIXTURE_CONFIG_DIR / "dev.toml").read_text()
    nested = "[" * levels + "]" * levels
    (config / "dev.toml").write_text(text.replace("{ epochs = 5 }", f"{{ epochs = {nested} }}"))
    return config / "dev.toml"


def test_settings_nested_too_deeply_are_one_line_and_keep_the_output(
    tmp_path: Path, previous_output: Path
) -> None:
    """tomllib recursed until RecursionError (from about 500 levels), and main.py's handler
    for it then failed itself: UnboundLocalError for OutputError, a traceback, exit 1."""
    file = deeply_nested(tmp_path, 5000)
    line = (
        f"{file.as_posix()}: cannot read: arrays or inline tables nested too deeply, allowed a "
        "few hundred levels"
    )
    with pytest.raises(ConfigError) as caught:
        load_environment(file)
    assert caught.value.problems == [line]
    outdir = tmp_path / "cdktf.out"
    shutil.copytree(previous_output, outdir)
    before = tree(outdir)
    result = subprocess.run(
        [sys.executable, "main.py", "--config-dir", str(file.parent), "--outdir", str(outdir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (result.returncode, result.stderr) == (2, f"error: {line}\n")
    assert tree(outdir) == before


def test_settings_nested_a_hundred_levels_still_synthesize(tmp_path: Path) -> None:
    file = deeply_nested(tmp_path, 100)
    env = load_environment(file)
    parameters = env.workflow("train").routes["model.train"].parameters
    assert str(parameters["epochs"]).count("[") == 100

"""Any value of any TOML type at any key gives problem lines, never a traceback.

Each key of config/dev.toml and config/prod.toml (and every key the files could have) is
set to a value of each TOML type, or removed; the file is written and loaded as a user's
would be. `load_environment` must return or raise ConfigError with one-line problems that
name the file; what it returns must also give the handler its environment (ROUTES is JSON).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import json
import math
import tomllib
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from environments import FIXTURE_CONFIG_DIR
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ai_workflow import ConfigError
from ai_workflow_app.config import (
    EnvironmentConfig,
    RouteConfig,
    SecretEnvConfig,
    WorkflowConfig,
    WorkflowSettings,
    literal_handler_environment,
    load_environment,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ("dev", "prod")
MISSING = object()
VALUES: dict[str, Any] = {
    "string": "x",
    "empty string": "",
    "integer": 7,
    "negative integer": -1,
    "float": 1.5,
    "nan": math.nan,
    "boolean": True,
    "array": [1, "a"],
    "empty array": [],
    "array of tables": [{"k": 1}],
    "table": {"k": "v"},
    "empty table": {},
    "datetime": datetime.datetime(1979, 5, 27, 7, 32, tzinfo=datetime.UTC),
    "local datetime": datetime.datetime(1979, 5, 27, 7, 32),
    "date": datetime.date(1979, 5, 27),
    "time": datetime.time(7, 32),
    "missing": MISSING,
}


def toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes, plus DEL, which TOML wants escaped too."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict), value
    return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_document(data: dict[str, Any]) -> str:
    """Every value inline: enough to write any table tomllib can read."""
    return "".join(f"{toml_string(k)} = {toml_value(v)}\n" for k, v in data.items())


def example(name: str) -> dict[str, Any]:
    return tomllib.loads((FIXTURE_CONFIG_DIR / f"{name}.toml").read_text(encoding="utf-8"))


Path_ = tuple[str | int, ...]


def key_paths(value: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    """Every key and array element, depth first."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in items:
        yield (*prefix, key)
        if isinstance(child, dict | list):
            yield from key_paths(child, (*prefix, key))


def field_names(cls: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def mutation_paths(data: dict[str, Any]) -> list[Path_]:
    """The keys the file has, and every key it could have in its tables."""
    paths = set(key_paths(data))
    env_keys = set(field_names(EnvironmentConfig)) - {"name", "source_file"}
    paths |= {(k,) for k in env_keys | {"workflow_defaults"}}
    paths |= {("workflow_defaults", k) for k in field_names(WorkflowSettings)}
    for i, workflow in enumerate(data["workflows"]):
        paths |= {("workflows", i, k) for k in field_names(WorkflowConfig)}
        for event_type in workflow["routes"]:
            paths |= {("workflows", i, "routes", event_type, k) for k in field_names(RouteConfig)}
        for var in [*workflow.get("secret_env", {}), "VAR"]:
            paths |= {("workflows", i, "secret_env", var, k) for k in field_names(SecretEnvConfig)}
    return sorted(paths, key=lambda p: [str(k) for k in p])


def mutated(data: dict[str, Any], path: Path_, value: Any) -> dict[str, Any]:
    """A copy with the key at `path` set to `value` (or removed); missing tables on the way
    are added, a path through something else leaves the copy as it was."""
    data = copy.deepcopy(data)
    parent: Any = data
    for key in path[:-1]:
        if isinstance(parent, dict):
            parent = parent.setdefault(key, {})
        elif isinstance(parent, list) and isinstance(key, int) and key < len(parent):
            parent = parent[key]
        else:
            return data
    last = path[-1]
    if isinstance(parent, list) and not (isinstance(last, int) and last < len(parent)):
        return data
    if not isinstance(parent, dict | list):
        return data
    if value is MISSING:
        if isinstance(parent, list) or last in parent:
            del parent[last]
    else:
        parent[last] = copy.deepcopy(value)
    return data


def assert_loads_or_reports(data: dict[str, Any], file: Path) -> None:
    file.write_text(toml_document(data), encoding="utf-8")
    shown = file.as_posix()
    try:
        env = load_environment(file)
    except ConfigError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert len(problem.splitlines()) == 1 and problem.startswith(f"{shown}: "), problem
        return
    assert not mistyped(env, EnvironmentConfig)
    for workflow in env.workflows:
        routes = literal_handler_environment(env, workflow.name)["ROUTES"]
        json.loads(routes, parse_constant=not_json)


def not_json(constant: str) -> None:
    raise AssertionError(f"{constant} is not JSON")


def mistyped(value: Any, hint: Any, at: str = "env") -> list[str]:
    """Where `value` does not have its declared type (recursively): what the stack hands to
    jsii must be typed as declared."""
    if hint is Any:
        return []
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, hint):
            return [f"{at}: {value!r}"]
        hints = typing.get_type_hints(hint)
        return [
            wrong
            for f in dataclasses.fields(hint)
            for wrong in mistyped(getattr(value, f.name), hints[f.name], f"{at}.{f.name}")
        ]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if any(not mistyped(value, arg, at) for arg in args):
            return []
        return [f"{at}: {value!r}"]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{at}: {value!r}"]
        return [
            wrong
            for k, v in value.items()
            for wrong in mistyped(k, args[0], f"{at} key") + mistyped(v, args[1], f"{at}.{k}")
        ]
    if origin is tuple:
        if not isinstance(value, tuple):
            return [f"{at}: {value!r}"]
        return [w for i, v in enumerate(value) for w in mistyped(v, args[0], f"{at}[{i}]")]
    if hint is type(None):
        ok = value is None
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, hint)
    return [] if ok else [f"{at}: {value!r}"]


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_writer_round_trips_the_examples(name: str, tmp_path: Path) -> None:
    data = example(name)
    assert tomllib.loads(toml_document(data)) == data
    assert_loads_or_reports(data, tmp_path / f"{name}.toml")


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_key_with_every_toml_type(name: str, tmp_path: Path) -> None:
    data = example(name)
    file = tmp_path / f"{name}.toml"
    paths = mutation_paths(data)
    assert len(paths) > 80
    failures = []
    for path in paths:
        for kind, value in VALUES.items():
            try:
                assert_loads_or_reports(mutated(data, path, value), file)
            except Exception as exc:
                at = ".".join(str(k) for k in path)
                failures.append(f"{at} = <{kind}>: {exc!r}")
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:40])


toml_scalars = (
    st.text(max_size=8)
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.dates()
    | st.times()
    | st.datetimes()
    | st.sampled_from(["model.train", "ingest", "train", "europe-west4", "latest", "1Gi"])
)
toml_values = st.recursive(
    toml_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)


@pytest.mark.parametrize("name", EXAMPLES)
@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_random_nested_values_anywhere(name: str, tmp_path: Path, data: st.DataObject) -> None:
    settings_data = example(name)
    paths = mutation_paths(settings_data)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        value = data.draw(toml_values | st.just(MISSING))
        settings_data = mutated(settings_data, path, value)
    assert_loads_or_reports(settings_data, tmp_path / f"{name}.toml")

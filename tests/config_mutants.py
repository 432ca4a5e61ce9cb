"""Mutated settings files for the config fuzz and property tests: a TOML writer for any
table tomllib can read, key paths through a settings tree, mutation, and the check every
mutant must pass (loads, or raises ConfigError with one-line problems naming the file)."""

from __future__ import annotations

import copy
import dataclasses
import datetime
import json
import math
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ai_workflow import ConfigError
from ai_workflow_app.config import (
    EnvironmentConfig,
    literal_handler_environment,
    load_environment,
)

MISSING: Any = object()
"""As a mutation's value: remove the key."""
Path_ = tuple[str | int, ...]


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


def key_paths(value: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    """Every key and array element, depth first."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in items:
        yield (*prefix, key)
        if isinstance(child, dict | list):
            yield from key_paths(child, (*prefix, key))


def table_paths(value: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    """Every table (the document itself, nested and inline tables, tables in arrays)."""
    if isinstance(value, dict):
        yield prefix
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in items:
        if isinstance(child, dict | list):
            yield from table_paths(child, (*prefix, key))


def at(data: Any, path: Path_) -> Any:
    for key in path:
        data = data[key]
    return data


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


def assert_loads_or_reports(data: dict[str, Any], file: Path) -> list[str]:
    """Write `data` to `file` and load it: the problems (each one line starting with the
    file and a key path), or [] when it loads, typed as declared and with a handler
    environment whose ROUTES is JSON."""
    file.write_text(toml_document(data), encoding="utf-8")
    shown = file.as_posix()
    try:
        env = load_environment(file)
    except ConfigError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert len(problem.splitlines()) == 1, problem
            assert problem.startswith(f"{shown}: "), problem
            assert ": " in problem.removeprefix(f"{shown}: ").strip(), problem
        return exc.problems
    assert not mistyped(env, EnvironmentConfig)
    for workflow in env.workflows:
        routes = literal_handler_environment(env, workflow.name)["ROUTES"]
        json.loads(routes, parse_constant=not_json)
    return []


def not_json(constant: str) -> None:
    raise AssertionError(f"{constant} is not JSON")


def mistyped(value: Any, hint: Any, where: str = "env") -> list[str]:
    """Where `value` does not have its declared type (recursively): what the stack hands to
    jsii must be typed as declared."""
    if hint is Any:
        return []
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, hint):  # type: ignore[arg-type]
            return [f"{where}: {value!r}"]
        hints = typing.get_type_hints(hint)
        return [
            wrong
            for f in dataclasses.fields(hint)
            for wrong in mistyped(getattr(value, f.name), hints[f.name], f"{where}.{f.name}")
        ]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if any(not mistyped(value, arg, where) for arg in args):
            return []
        return [f"{where}: {value!r}"]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where}: {value!r}"]
        return [
            wrong
            for k, v in value.items()
            for wrong in mistyped(k, args[0], f"{where} key") + mistyped(v, args[1], f"{where}.{k}")
        ]
    if origin is tuple:
        if not isinstance(value, tuple):
            return [f"{where}: {value!r}"]
        return [w for i, v in enumerate(value) for w in mistyped(v, args[0], f"{where}[{i}]")]
    if hint is type(None):
        ok = value is None
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, hint)
    return [] if ok else [f"{where}: {value!r}"]

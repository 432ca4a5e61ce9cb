"""Any value of any TOML type at any key gives problem lines, never a traceback.

Each key of config/dev.toml and config/prod.toml (and every key the files could have) is
set to a value of each TOML type, or removed; the file is written and loaded as a user's
would be. `load_environment` must return or raise ConfigError with one-line problems that
name the file; what it returns must also give the handler its environment (ROUTES is JSON).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
from config_mutants import (
    MISSING,
    Path_,
    assert_loads_or_reports,
    key_paths,
    mutated,
    toml_document,
)
from environments import FIXTURE_CONFIG_DIR
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ai_workflow_app.config import (
    EnvironmentConfig,
    RouteConfig,
    SecretEnvConfig,
    WorkflowConfig,
    WorkflowSettings,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ("dev", "prod")
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


def example(name: str) -> dict[str, Any]:
    return tomllib.loads((FIXTURE_CONFIG_DIR / f"{name}.toml").read_text(encoding="utf-8"))


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

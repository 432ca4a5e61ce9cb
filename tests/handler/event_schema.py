"""docs/events.schema.json, the published event contract, as validators for the tests."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from handler_fixtures import REPO
from jsonschema import Draft202012Validator

from workflow_handler import contract

SCHEMA_PATH = REPO / "docs" / "events.schema.json"


@cache
def _validators() -> tuple[Draft202012Validator, Draft202012Validator]:
    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    follow_up = {**schema, "$ref": "#/$defs/follow_up_event"}
    return Draft202012Validator(schema), Draft202012Validator(follow_up)


def assert_event(obj: Any) -> None:
    """`obj` is an event by the published schema (raises with every violation)."""
    _validators()[0].validate(obj)


def assert_follow_up(obj: Any) -> None:
    """`obj` is a follow-up event (a job's start or outcome) by the published schema."""
    _validators()[1].validate(obj)


def assert_result(obj: Any) -> None:
    """`obj` is what a handler may publish to its results topic: a follow-up event, or the
    answer to a smoke probe (workflow.probe.ok, valid by the event schema's probe rule)."""
    if isinstance(obj, dict) and obj.get("type") == contract.PROBE_RESULT_EVENT_TYPE:
        assert_event(obj)
    else:
        assert_follow_up(obj)


def schema_errors(obj: Any, follow_up: bool = False) -> list[str]:
    validator = _validators()[1 if follow_up else 0]
    return [error.message for error in validator.iter_errors(obj)]

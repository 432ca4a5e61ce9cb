"""The stack and the handler agree on the handler's environment variables, because both take
them from one module: function_src/workflow_handler/contract.py."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from environments import (
    ENVIRONMENTS,
    EXAMPLE_CONFIG_DIR,
    EXAMPLE_ENVIRONMENTS,
    FIXTURE_CONFIG_DIR,
)
from stack_helpers import resources

import ai_workflow_app.config as app_config
from ai_workflow import handler_env, naming, rules, workflow_config
from ai_workflow.naming import WorkflowNames
from ai_workflow.workflow_config import RouteConfig, WorkflowSettings
from ai_workflow_app import load_environment
from ai_workflow_app.config import literal_handler_environment
from workflow_handler import contract, events
from workflow_handler import settings as handler_settings

ROOT = Path(__file__).resolve().parent.parent
CONSTRUCTS = ROOT / "constructs"


SETTINGS_FILES = [EXAMPLE_CONFIG_DIR / f"{name}.toml" for name in EXAMPLE_ENVIRONMENTS] + [
    FIXTURE_CONFIG_DIR / f"{name}.toml" for name in ENVIRONMENTS
]


@pytest.mark.parametrize(
    "settings_file", SETTINGS_FILES, ids=[p.relative_to(ROOT).as_posix() for p in SETTINGS_FILES]
)
def test_handler_accepts_what_every_workflow_is_given(settings_file: Path) -> None:
    env = load_environment(settings_file)
    for workflow in env.workflows:
        settings = handler_settings.load_settings(literal_handler_environment(env, workflow.name))
        assert set(settings.routes) == set(workflow.routes)


def test_stack_sets_the_same_variables_as_the_local_run(dev: dict) -> None:
    env = load_environment(FIXTURE_CONFIG_DIR / "dev.toml")
    literal = literal_handler_environment(env, "train")
    deployed = resources(dev, "google_cloudfunctions2_function")["train_function"]
    variables = deployed["service_config"]["environment_variables"]
    assert set(variables) == set(literal)
    for key in ("WORKFLOW_NAME", "GCP_PROJECT", "VERTEX_LOCATION", "MAX_EVENT_AGE_SECONDS"):
        assert variables[key] == literal[key]
    assert json.loads(variables["ROUTES"]) == json.loads(literal["ROUTES"])
    assert literal["RESULTS_TOPIC"] == "projects/acme-ai-dev/topics/train-results"
    assert literal["PIPELINE_ROOT"] == "gs://acme-ai-dev-pipeline-root/train"


@pytest.mark.parametrize(("ack", "timeout"), [(10, 2), (20, 6), (32, 10), (600, 10)])
def test_outbound_timeout_fits_three_calls_in_the_ack_deadline(ack: int, timeout: int) -> None:
    assert contract.outbound_timeout_seconds(ack) == timeout
    assert 3 * contract.outbound_timeout_seconds(ack) < ack
    assert contract.outbound_timeout_seconds(ack) <= contract.DEFAULT_OUTBOUND_TIMEOUT_SECONDS


# --- One module: the stack holds the contract's own objects, not copies ----------------------

STACK_MODULES = [handler_env, naming, rules, workflow_config, app_config]


@pytest.mark.parametrize("module", STACK_MODULES, ids=lambda m: m.__name__)
def test_the_stack_imports_the_handlers_contract(module: ModuleType) -> None:
    assert module.contract is contract


def test_the_stacks_rules_and_defaults_are_the_contracts_objects() -> None:
    assert rules.WORKFLOW_NAME is contract.WORKFLOW_NAME
    assert rules.EVENT_TYPE is contract.EVENT_TYPE
    route_fields = {f.name: f for f in dataclasses.fields(RouteConfig)}
    assert route_fields["on_success"].default is contract.DEFAULT_ON_SUCCESS
    assert route_fields["on_failure"].default is contract.DEFAULT_ON_FAILURE
    assert route_fields["on_start"].default is None
    settings_fields = {f.name: f for f in dataclasses.fields(WorkflowSettings)}
    # 86400 is not a cached small int: `is` holds only for the contract's own object.
    assert settings_fields["max_event_age_seconds"].default is (
        contract.DEFAULT_MAX_EVENT_AGE_SECONDS
    )
    assert workflow_config.DAY_SECONDS is contract.DAY_SECONDS
    assert workflow_config.DEFAULT_ON_SUCCESS is contract.DEFAULT_ON_SUCCESS
    assert app_config.DEFAULT_ON_SUCCESS is contract.DEFAULT_ON_SUCCESS
    assert app_config.DEFAULT_ON_FAILURE is contract.DEFAULT_ON_FAILURE


def test_the_handlers_rules_and_defaults_are_the_contracts_objects() -> None:
    assert events.is_event_type is contract.is_event_type
    assert events.EVENT_TYPE_PATTERN is contract.EVENT_TYPE_PATTERN
    assert handler_settings.DEFAULT_TIMEOUT_SECONDS == contract.DEFAULT_OUTBOUND_TIMEOUT_SECONDS


class _RecordingEnv(dict[str, str]):
    """An environment that remembers which variables were read."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.read: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:
        self.read.append(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.read.append(key)
        return super().__getitem__(key)


def test_the_stack_sets_what_the_handler_reads_and_nothing_else() -> None:
    env = load_environment(FIXTURE_CONFIG_DIR / "dev.toml")
    literal = literal_handler_environment(env, "train")
    assert tuple(literal) == contract.STACK_VARIABLES
    recording = _RecordingEnv(literal)
    handler_settings.load_settings(recording)
    assert set(recording.read) == set(contract.VARIABLES)


def test_a_cmek_environment_also_sets_the_optional_variables() -> None:
    env = load_environment(FIXTURE_CONFIG_DIR / "prod.toml")
    literal = literal_handler_environment(env, "train")
    assert tuple(literal) == contract.STACK_VARIABLES + contract.OPTIONAL_STACK_VARIABLES
    assert literal[contract.ENV_PIPELINE_KMS_KEY] == env.kms_key_name
    assert handler_settings.load_settings(literal).pipeline_kms_key == env.kms_key_name


def test_the_names_the_handler_is_given_are_the_contracts_formulas() -> None:
    names = WorkflowNames("train")
    assert names.trigger_topic == contract.trigger_topic("train") == "train-trigger"
    assert names.results_topic == contract.results_topic("train") == "train-results"
    assert names.dead_letter_topic == contract.dead_letter_topic("train") == "train-dead-letter"
    assert names.pipeline_account_id == contract.pipeline_account_id("train") == "train-pipe"
    assert names.pipeline_events_topic == contract.pipeline_events_topic("train")
    assert names.pipeline_events_topic == "train-pipeline-events"
    assert names.pipeline_events_subscription == contract.pipeline_events_subscription("train")
    assert names.pipeline_events_subscription == "train-pipeline-events-push"
    env = load_environment(FIXTURE_CONFIG_DIR / "dev.toml")
    literal = literal_handler_environment(env, "train")
    project = env.project_id
    assert literal[contract.ENV_RESULTS_TOPIC] == contract.topic_path(project, "train-results")
    assert literal[contract.ENV_DEAD_LETTER_TOPIC] == contract.topic_path(
        project, "train-dead-letter"
    )
    assert literal[contract.ENV_PIPELINE_ROOT] == contract.pipeline_root(
        env.pipeline_root_bucket_name, "train"
    )
    assert literal[contract.ENV_PIPELINE_SERVICE_ACCOUNT] == (
        "train-pipe@acme-ai-dev.iam.gserviceaccount.com"
    )
    assert contract.TOPIC_PATH.fullmatch(env.trigger_topic_path("train"))


# --- One rule: whatever one side accepts, so does the other ------------------------------------

WORKFLOW_NAMES = [
    ("ab", True),
    ("train-model-2", True),
    ("a" * 24, True),
    ("a", False),
    ("a" * 25, False),
    ("train_model", False),
    ("train-", False),
    ("-train", False),
    ("2train", False),
    ("Train", False),
    ("train\n", False),
]


@pytest.mark.parametrize(("name", "valid"), WORKFLOW_NAMES)
def test_stack_and_handler_accept_the_same_workflow_names(name: str, valid: bool) -> None:
    stack_ok = not rules.matches("name", name, rules.WORKFLOW_NAME, "")
    base = literal_handler_environment(load_environment(FIXTURE_CONFIG_DIR / "dev.toml"), "train")
    try:
        handler_settings.load_settings({**base, contract.ENV_WORKFLOW_NAME: name})
        handler_ok = True
    except handler_settings.ConfigError:
        handler_ok = False
    assert stack_ok is handler_ok is valid


EVENT_TYPES = [
    ("model.train", True),
    ("a." + "b" * 126, True),  # 128 characters
    ("a." + "b" * 127, False),  # 129: the handler would refuse its own ROUTES
    ("train", False),
    ("Model.train", False),
    ("model.train\n", False),
]


@pytest.mark.parametrize(("event_type", "valid"), EVENT_TYPES)
def test_stack_and_handler_accept_the_same_event_types(event_type: str, valid: bool) -> None:
    stack_ok = not rules.matches("type", event_type, rules.EVENT_TYPE, "")
    assert stack_ok is events.is_event_type(event_type) is valid


# --- Nothing of the contract is written twice ---------------------------------------------------


def _number(node: ast.AST) -> int | None:
    """The value of an integer literal or of arithmetic on literals (`24 * 60 * 60`)."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.BinOp):
        left, right = _number(node.left), _number(node.right)
        if left is None or right is None:
            return None
        ops = {ast.Add: int.__add__, ast.Sub: int.__sub__, ast.Mult: int.__mul__}
        op = ops.get(type(node.op))
        return op(left, right) if op else None
    return None


_VARIABLE_WORD = re.compile(r"\b(?:" + "|".join(map(re.escape, contract.VARIABLES)) + r")\b")
# Values of the contract that the stack must take from it, never spell out.
_CONTRACT_VALUES = {
    contract.DEFAULT_ON_SUCCESS,
    contract.DEFAULT_ON_FAILURE,
    *contract.RENAMED_ROUTE_KEYS,
    *contract.TERMINAL_STATES,
    contract.PIPELINE_JOB_RESOURCE_TYPE,
}
_CONTRACT_WORD = re.compile(
    "|".join(map(re.escape, [*contract.TERMINAL_STATES, contract.PIPELINE_JOB_EVENTS_LOG_ID]))
)


def contract_copies(source: str) -> Iterator[tuple[int, str]]:
    """(line, what) for every value of the contract that `source` spells out itself: an
    environment variable's name (in any string that is code, not documentation), a default
    event type, a renamed route key, a PipelineJob state, the pipeline job events log or
    resource, or the default max event age as a number (however it is written). Referring to
    them through the contract module spells out none of them."""
    tree = ast.parse(source)
    documentation = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in documentation:
                continue
            if node.value in _CONTRACT_VALUES:
                yield node.lineno, repr(node.value)
            for found in _VARIABLE_WORD.findall(node.value) + _CONTRACT_WORD.findall(node.value):
                yield node.lineno, found
        elif _number(node) == contract.DEFAULT_MAX_EVENT_AGE_SECONDS:
            yield node.lineno, str(contract.DEFAULT_MAX_EVENT_AGE_SECONDS)


def test_the_scan_finds_a_retyped_value() -> None:
    """The scan below is only worth something if it catches each way of re-typing."""
    retyped = """
\"\"\"Docs may name ROUTES and workflow.succeeded.\"\"\"
A = {"WORKFLOW_NAME": name}
B = "workflow.succeeded"
C = f"MAX_EVENT_AGE_SECONDS={age}"
D = 86_400
E = 86400
F = 24 * 60 * 60
G = 7 * 86_400
def f(x=ROUTES):
    \"\"\"PIPELINE_ROOT in a docstring is documentation.\"\"\"
    return os.environ["PUBSUB_EMULATOR_HOST"]
H = ("workflow.failed", "result_event_type")
I = f'jsonPayload.state="PIPELINE_STATE_FAILED" AND {x}'
J = "logName=projects/p/logs/aiplatform.googleapis.com%2Fpipeline_job_events"
"""
    found = sorted(contract_copies(retyped))
    assert found == [
        (3, "WORKFLOW_NAME"),
        (4, "'workflow.succeeded'"),
        (5, "MAX_EVENT_AGE_SECONDS"),
        (6, "86400"),
        (7, "86400"),
        (8, "86400"),
        (9, "86400"),
        (12, "PUBSUB_EMULATOR_HOST"),
        (13, "'result_event_type'"),
        (13, "'workflow.failed'"),
        (14, "PIPELINE_STATE_FAILED"),
        (15, "aiplatform.googleapis.com%2Fpipeline_job_events"),
    ]
    through_the_contract = """
from workflow_handler import contract
A = {contract.ENV_WORKFLOW_NAME: name}
B = contract.DEFAULT_ON_SUCCESS
C = 7 * contract.DAY_SECONDS
D = contract.pipeline_job_events_log(project)
"""
    assert list(contract_copies(through_the_contract)) == []


def test_the_constructs_spell_out_none_of_the_contract() -> None:
    copies = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in sorted(CONSTRUCTS.rglob("*.py"))
        for line, what in contract_copies(path.read_text())
    ]
    assert copies == [], (
        "use `from workflow_handler import contract` (function_src/workflow_handler/contract.py) "
        "instead of re-typing these:\n" + "\n".join(copies)
    )

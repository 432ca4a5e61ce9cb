"""Environment settings: one TOML file per environment under config/.

`load_environment(path)` reads a file, checks every key against the tables below and
returns an `EnvironmentConfig`; any problem anywhere raises one `ConfigError` that lists
them all, each naming the file, the key path, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ai_workflow import rules
from ai_workflow.errors import ConfigError
from ai_workflow.handler_env import handler_environment
from ai_workflow.naming import WorkflowNames
from ai_workflow.workflow_config import (
    DAY_SECONDS,
    DEFAULT_ON_FAILURE,
    DEFAULT_ON_SUCCESS,
    RouteConfig,
    SecretEnvConfig,
    WorkflowConfig,
    WorkflowSettings,
    settings_problems,
    workflow_problems,
)
from workflow_handler import contract

from .backend import (
    BackendSettings,
    LocalBackendSettings,
    default_state_path,
    parse_backend,
    state_location,
)

__all__ = [
    "DAY_SECONDS",
    "DEFAULT_ON_FAILURE",
    "DEFAULT_ON_SUCCESS",
    "ConfigError",
    "EnvironmentConfig",
    "RouteConfig",
    "SecretEnvConfig",
    "WorkflowConfig",
    "WorkflowSettings",
    "first_problem",
    "literal_handler_environment",
    "load_environment",
    "load_environments",
    "parse_environment",
    "resolve_workflow",
    "settings_problems",
    "workflow_problems",
]


@dataclass(frozen=True, kw_only=True)
class EnvironmentConfig:
    """One environment: one stack, one project."""

    name: str
    """Environment name, from the file name (config/<name>.toml); names the stack."""
    source_file: str
    """The settings file, relative as given; used in error messages only."""
    project_id: str
    region: str
    workflows: tuple[WorkflowConfig, ...]
    labels: dict[str, str] = field(default_factory=dict)
    """Labels on every resource that takes labels. `env` is always added."""
    kms_key_name: str | None = None
    """CMEK key in `region` for every topic, both buckets, the repository, the functions and
    the Vertex AI jobs. Default: Google-managed encryption."""
    access_log_bucket: str | None = None
    """Existing bucket that receives the buckets' access logs. Default: no access logs."""
    pipeline_root_retention_days: int = 30
    """Pipeline artifacts are deleted after this many days, 1..3650. Default 30."""
    noncurrent_source_retention_days: int = 30
    """Old function source versions are deleted after this many days, 1..3650. Default 30."""
    backend: BackendSettings | None = None
    """Where Terraform keeps the state (`[backend]`, see ai_workflow_app.backend). Default:
    the local file terraform.<env>.tfstate at the project root."""
    alert_notification_channels: tuple[str, ...] = ()
    """Cloud Monitoring notification channels (`projects/<p>/notificationChannels/<id>`)
    every workflow's alerts notify. Default: none (incidents show in the console only)."""
    notices: tuple[str, ...] = ()
    """Warnings about the settings file that do not stop the synth (a deprecated key), one
    line each, naming the file and key. Not a setting."""

    @property
    def state_backend(self) -> BackendSettings:
        """`backend`, or the default local state file."""
        return self.backend or LocalBackendSettings(path=default_state_path(self.name))

    @property
    def source_bucket_name(self) -> str:
        return f"{self.project_id}-fn-source"

    @property
    def pipeline_root_bucket_name(self) -> str:
        return f"{self.project_id}-pipeline-root"

    @property
    def all_labels(self) -> dict[str, str]:
        return {**self.labels, "env": self.name, "managed-by": "cdktf"}

    def workflow(self, name: str) -> WorkflowConfig:
        return next(w for w in self.workflows if w.name == name)

    def trigger_topic_path(self, name: str) -> str:
        """`projects/<p>/topics/<t>` that triggers workflow `name` (the upstream's results
        topic when it chains)."""

        workflow = self.workflow(name)
        topic = (
            WorkflowNames(workflow.trigger).results_topic
            if workflow.trigger
            else WorkflowNames(name).trigger_topic
        )
        return contract.topic_path(self.project_id, topic)

    def ignored_event_types(self, name: str) -> tuple[str, ...]:
        """What arrives on workflow `name`'s trigger topic that it has no route for: the
        upstream workflow's failure and start events (its success events are routed, see
        `_graph_problems`). The handler acknowledges them without a job."""
        workflow = self.workflow(name)
        if not workflow.trigger:
            return ()
        published = self.workflow(workflow.trigger).published_event_types
        return tuple(t for t in published if t not in workflow.routes)


_SETTING_FIELDS = {f.name for f in dataclasses.fields(WorkflowSettings)}
_WORKFLOW_FIELDS = {f.name for f in dataclasses.fields(WorkflowConfig)}
_ENV_FIELDS = {f.name for f in dataclasses.fields(EnvironmentConfig)} - {
    "name",
    "source_file",
    "workflows",
    "notices",
} | {"workflow_defaults", "workflows", "state_path"}
# Keys of the settings file that are parsed into other fields.
_NOT_FIELDS = {"workflows", "workflow_defaults", "state_path", "backend"}
_ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_LEADING_KEY = re.compile(r"[a-z_]+")


def _expect_table(where: str, value: Any) -> list[str]:
    if isinstance(value, dict):
        return []
    return [f"{where}: got {value!r}, allowed a table"]


def _build_dataclass(cls: Any, table: dict[str, Any], allowed: set[str]) -> Any:
    """Instantiate `cls` from known keys; unknown keys are reported by the caller."""
    return cls(**{k: v for k, v in table.items() if k in allowed})


def _parse_subtables(
    where: str,
    raw: dict[str, Any],
    cls: Any,
    required: str,
    problems: list[str],
    shape: str = "a table",
) -> dict[str, Any]:
    """`{key: {...}}` tables (routes, secret_env) into `cls` instances; problems collected."""
    allowed = {f.name for f in dataclasses.fields(cls)}
    parsed: dict[str, Any] = {}
    for key, table in raw.items():
        at = f"{where}.{rules.key(key)}"
        if not isinstance(table, dict):
            problems.append(f"{at}: got {table!r}, allowed {shape}")
            continue
        problems += rules.unknown_keys(f"{at}.", table, allowed)
        if required not in table:
            problems.append(f"{at}.{required}: missing, required")
            continue
        parsed[key] = _build_dataclass(cls, table, allowed)
    return parsed


def _renamed_route_keys(
    where: str, raw_routes: dict[str, Any], problems: list[str], notices: list[str]
) -> dict[str, Any]:
    """Routes with the keys of earlier versions renamed (`result_event_type` is `on_success`
    since its event fires when the job succeeds, no longer when it starts): a notice each, or
    a problem when the route also has the new key."""
    renamed: dict[str, Any] = {}
    for event_type, table in raw_routes.items():
        if isinstance(table, dict):
            table = dict(table)
            for old, new in contract.RENAMED_ROUTE_KEYS.items():
                if old not in table:
                    continue
                at = f"{where}.{rules.key(event_type)}.{old}"
                if new in table:
                    problems.append(
                        f"{at}: got {table[old]!r} beside {new}, allowed only {new} "
                        f"({old} was renamed {new})"
                    )
                    del table[old]
                    continue
                notices.append(
                    f"{at}: renamed {new}; its event is now published when the job succeeds, "
                    f"not when it starts (rename the key to {new})"
                )
                table[new] = table.pop(old)
        renamed[event_type] = table
    return renamed


def _parse_workflow(
    where: str,
    raw: Any,
    defaults: dict[str, Any],
    inherited: set[str],
    problems: list[str],
    notices: list[str] | None = None,
) -> WorkflowConfig | None:
    """One [[workflows]] table over the defaults. A problem with a value the workflow only
    inherits, that `[workflow_defaults]` has on its own too (`inherited`, without the
    `workflow_defaults.` prefix), is left to that one report."""
    if not isinstance(raw, dict):
        problems.append(f"{where[:-1]}: got {raw!r}, allowed a [[workflows]] table")
        return None
    problems += rules.unknown_keys(where, raw, _WORKFLOW_FIELDS)
    table = {**defaults, **raw}
    missing = [k for k in ("name", "routes") if k not in table]
    problems += [f"{where}{k}: missing, required" for k in missing]
    if missing:
        return None
    raw_routes = table["routes"]
    if not isinstance(raw_routes, dict):
        problems.append(f"{where}routes: got {raw_routes!r}, allowed a table of event types")
        return None
    raw_routes = _renamed_route_keys(
        f"{where}routes", raw_routes, problems, notices if notices is not None else []
    )
    routes = _parse_subtables(f"{where}routes", raw_routes, RouteConfig, "template_uri", problems)
    raw_secrets = table.get("secret_env", {})
    if not isinstance(raw_secrets, dict):
        problems.append(
            f"{where}secret_env: got {raw_secrets!r}, allowed a table of "
            "VAR = <secret> or { secret = <secret>, version = <version> }"
        )
        raw_secrets = {}
    secrets = _parse_subtables(
        f"{where}secret_env",
        {var: {"secret": v} if isinstance(v, str) else v for var, v in raw_secrets.items()},
        SecretEnvConfig,
        "secret",
        problems,
        "a secret id, or a table { secret = <secret>, version = <version> }",
    )
    publishers = table.get("publishers", ())
    if not isinstance(publishers, list | tuple):
        problems.append(f"{where}publishers: got {publishers!r}, allowed a list of IAM members")
        publishers = ()
    table = {**table, "routes": routes, "secret_env": secrets, "publishers": tuple(publishers)}
    workflow = _build_dataclass(WorkflowConfig, table, _WORKFLOW_FIELDS)
    for problem in workflow_problems(where, workflow):
        at = problem.removeprefix(where)
        if raw_routes and at == "routes: got {}, allowed at least one event type route":
            continue  # every route failed to parse, and each says why
        key = _LEADING_KEY.match(at)
        if key and key.group(0) in defaults and key.group(0) not in raw and at in inherited:
            continue
        problems.append(problem)
    return workflow


def parse_environment(name: str, source_file: str, data: dict[str, Any]) -> EnvironmentConfig:
    """Validate a parsed settings table; raises ConfigError listing every problem."""
    problems: list[str] = []
    problems += rules.matches(
        "environment name (file name)",
        name,
        _ENV_NAME,
        "1..20 lowercase letters, digits and hyphens, starting with a letter",
    )
    problems += rules.unknown_keys("", data, _ENV_FIELDS)
    if "project_id" not in data:
        problems.append("project_id: missing, required")
    else:
        problems += rules.matches(
            "project_id",
            data["project_id"],
            rules.PROJECT_ID,
            "a project id: 6..30 lowercase letters, digits and hyphens, starting with a letter",
        )
    region_problems = (
        rules.region("region", data["region"])
        if "region" in data
        else ["region: missing, required"]
    )
    problems += region_problems
    problems += rules.labels("labels", data.get("labels", {}))
    if data.get("kms_key_name") is not None:
        # Its location is checked against a valid region only.
        region = None if region_problems else data["region"]
        problems += rules.kms_key("kms_key_name", data["kms_key_name"], region)
    if data.get("access_log_bucket") is not None:
        problems += rules.bucket_name("access_log_bucket", data["access_log_bucket"])
    for key in ("pipeline_root_retention_days", "noncurrent_source_retention_days"):
        if key in data:
            problems += rules.integer_in_range(key, data[key], 1, 3650)
    notices: list[str] = []
    backend = parse_backend(name, data, problems, notices)

    if "alert_notification_channels" in data:
        problems += rules.notification_channels(
            "alert_notification_channels", data["alert_notification_channels"]
        )

    defaults = data.get("workflow_defaults", {})
    problems += _expect_table("workflow_defaults", defaults)
    if isinstance(defaults, dict):
        problems += rules.unknown_keys("workflow_defaults.", defaults, _SETTING_FIELDS)
        defaults = {k: v for k, v in defaults.items() if k in _SETTING_FIELDS}
    else:
        defaults = {}
    defaults_problems = settings_problems("workflow_defaults.", WorkflowSettings(**defaults))
    problems += defaults_problems
    inherited = {p.removeprefix("workflow_defaults.") for p in defaults_problems}

    raw_workflows = data.get("workflows", [])
    if not isinstance(raw_workflows, list):
        problems.append(
            f"workflows: got {raw_workflows!r}, allowed one or more [[workflows]] tables"
        )
        raw_workflows = []
    elif not raw_workflows:
        problems.append("workflows: missing, allowed one or more [[workflows]] tables")
    workflows: list[WorkflowConfig] = []
    for i, raw in enumerate(raw_workflows):
        workflow = _parse_workflow(f"workflows[{i}].", raw, defaults, inherited, problems, notices)
        if workflow is not None:
            workflows.append(workflow)

    problems += _graph_problems(raw_workflows)
    env = None
    if not problems and backend is not None:
        env = EnvironmentConfig(
            name=name,
            source_file=source_file,
            workflows=tuple(workflows),
            notices=tuple(f"{source_file}: {notice}" for notice in notices),
            backend=backend,
            **{k: v for k, v in data.items() if k not in _NOT_FIELDS}
            | {"alert_notification_channels": tuple(data.get("alert_notification_channels", []))},
        )
        problems += rules.bucket_name("project_id (source bucket name)", env.source_bucket_name)
        problems += rules.bucket_name(
            "project_id (pipeline root bucket name)", env.pipeline_root_bucket_name
        )
    if problems or env is None:
        raise ConfigError([f"{source_file}: {problem}" for problem in problems])
    return env


def _graph_problems(raw_workflows: list[Any]) -> list[str]:
    """Across the [[workflows]] tables as written (so indices stay those of the file even
    when a table does not parse): unique names, triggers naming another workflow, no
    trigger cycles, and a chained workflow routes every event type its trigger publishes
    when a job succeeds (its failure and start events need no route: the handler
    acknowledges those without a job). A duplicate name is the only problem reported about
    that name."""
    tables = [(i, w) for i, w in enumerate(raw_workflows) if isinstance(w, dict)]
    problems: list[str] = []
    first: dict[str, int] = {}
    duplicated: set[str] = set()
    for i, w in tables:
        name = w.get("name")
        if not isinstance(name, str):
            continue
        if name in first:
            problems.append(
                f"workflows[{i}].name: got {name!r}, allowed a name not already used by "
                f"workflows[{first[name]}]"
            )
            duplicated.add(name)
        else:
            first[name] = i
    known = ", ".join(rules.key(n) for n in sorted(first)) or "none"
    # A trigger naming none of the names may name a table whose name is itself the problem.
    unnamed = sum(isinstance(w.get("name"), str) for _, w in tables) < len(raw_workflows)
    upstream: dict[int, int] = {}
    for i, w in tables:
        name, trigger = w.get("name"), w.get("trigger")
        if trigger is None or (isinstance(name, str) and name in duplicated):
            continue
        if not isinstance(trigger, str) or trigger not in first:
            if unnamed and isinstance(trigger, str):
                continue
            problems.append(
                f"workflows[{i}].trigger: got {trigger!r}, allowed the name of another "
                f"workflow in this file ({known})"
            )
        elif trigger == name:
            problems.append(
                f"workflows[{i}].trigger: got {trigger!r}, allowed another workflow's name "
                "(a workflow cannot trigger itself)"
            )
        elif trigger not in duplicated:
            upstream[i] = first[trigger]
    cycles = _cycles(upstream)
    for i, w in tables:
        if i in cycles:
            # cycles[i] walks up the triggers from i; shown the way events flow.
            names = [rules.key(raw_workflows[k]["name"]) for k in cycles[i]]
            chain = " -> ".join([names[0], *reversed(names[1:]), names[0]])
            problems.append(
                f"workflows[{i}].trigger: got {w['trigger']!r}, allowed a chain without "
                f"cycles (cycle: {chain})"
            )
    for i, w in tables:
        routes = w.get("routes")
        if i not in upstream or i in cycles or not isinstance(routes, dict):
            continue
        trigger = w["trigger"]
        listed = ", ".join(rules.key(r) for r in routes)
        for event_type in _on_success(raw_workflows[upstream[i]]):
            if event_type not in routes:
                problems.append(
                    f"workflows[{i}].routes: missing {event_type!r}, required because trigger "
                    f"{trigger!r} publishes it (routes: {listed or 'none'})"
                )
    return problems


def _on_success(table: dict[str, Any]) -> list[str]:
    """The event types a workflow publishes to its results topic when a job succeeds: its
    routes' on_success types (or their renamed key's)."""
    published: list[str] = []
    routes = table.get("routes")
    for route in routes.values() if isinstance(routes, dict) else ():
        if not isinstance(route, dict):
            continue
        event_type = route.get(
            contract.ROUTE_ON_SUCCESS,
            next(
                (route[old] for old in contract.RENAMED_ROUTE_KEYS if old in route),
                DEFAULT_ON_SUCCESS,
            ),
        )
        if (
            isinstance(event_type, str)
            and rules.EVENT_TYPE.fullmatch(event_type)
            and event_type not in published
        ):
            published.append(event_type)
    return published


def _cycles(upstream: dict[int, int]) -> dict[int, list[int]]:
    """The workflows on a trigger cycle, each with its cycle as the walk up its triggers
    from itself. Workflows merely downstream of a cycle are not on it."""
    on_cycle: dict[int, list[int]] = {}
    done: set[int] = set()
    for start in upstream:
        path: list[int] = []
        at: dict[int, int] = {}
        node = start
        while node in upstream and node not in done and node not in at:
            at[node] = len(path)
            path.append(node)
            node = upstream[node]
        if node in at:
            cycle = path[at[node] :]
            for k, member in enumerate(cycle):
                on_cycle[member] = cycle[k:] + cycle[:k]
        done.update(path)
    return on_cycle


TOO_DEEP = "cannot read: arrays or inline tables nested too deeply, allowed a few hundred levels"


def _read_settings(path: Path) -> dict[str, Any]:
    """The TOML table of a settings file; ConfigError names a file that cannot be read."""
    shown = path.as_posix()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{shown}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{shown}: cannot read ({exc})"]) from None
    if text.startswith("\ufeff"):
        bom = "starts with a UTF-8 byte order mark, allowed plain UTF-8 (save without BOM)"
        raise ConfigError([f"{shown}: {bom}"])
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{shown}: not valid TOML: {exc}"]) from None
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively, without a limit.
        raise ConfigError([f"{shown}: {TOO_DEEP}"]) from None


def load_environment(path: str | Path) -> EnvironmentConfig:
    """Read and validate config/<env>.toml; raises ConfigError with every problem."""
    path = Path(path)
    return parse_environment(path.stem, path.as_posix(), _read_settings(path))


def load_environments(paths: list[Path]) -> list[EnvironmentConfig]:
    """Load several files, collecting the problems of all of them before raising. Across
    files: no two environments may share a project (their resource names would collide),
    checked on every well-formed project_id, also in files with other problems; nor a
    state (one would overwrite the other's), checked on the files without problems."""
    envs: list[EnvironmentConfig] = []
    problems: list[str] = []
    first: dict[str, str] = {}
    collisions: list[str] = []
    for path in map(Path, paths):
        shown = path.as_posix()
        try:
            data = _read_settings(path)
        except ConfigError as exc:
            problems += exc.problems
            continue
        project = data.get("project_id")
        if isinstance(project, str) and rules.PROJECT_ID.fullmatch(project):
            other = first.setdefault(project, shown)
            if other != shown:
                collisions.append(
                    f"{shown}: project_id: got {project!r}, allowed a project not used by "
                    f"another environment ({other} uses it; resource names would collide)"
                )
        try:
            envs.append(parse_environment(path.stem, shown, data))
        except ConfigError as exc:
            problems += exc.problems
    problems += collisions + state_collisions(envs)
    if problems:
        raise ConfigError(problems)
    return envs


def state_collisions(envs: list[EnvironmentConfig]) -> list[str]:
    """One problem for each environment whose state location an earlier one already uses."""
    problems: list[str] = []
    first: dict[str, str] = {}
    for env in envs:
        where = state_location(env.state_backend)
        if where is None:
            continue
        other = first.setdefault(where, env.source_file)
        if other != env.source_file:
            problems.append(
                f"{env.source_file}: backend: got {where}, allowed a state not used by another "
                f"environment ({other} uses it; one would overwrite the other's state)"
            )
    return problems


def resolve_workflow(
    config_dir: Path, env_name: str, workflow: str | None
) -> tuple[EnvironmentConfig, str]:
    """The environment `config_dir/<env_name>.toml` and one of its workflows (default: the
    first), for the command-line tools; ConfigError names a bad --env or --workflow."""
    path = config_dir / f"{env_name}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in config_dir.glob("*.toml"))) or "none"
        raise ConfigError([f"--env {env_name!r}: allowed one of {known} (files in {config_dir})"])
    env = load_environment(path)
    names = [w.name for w in env.workflows]
    name = workflow or names[0]
    if name not in names:
        raise ConfigError([f"--workflow {name!r}: allowed one of {', '.join(names)} (in {path})"])
    return env, name


def first_problem(error: ConfigError) -> str:
    """One line for a CLI: the first problem, and how many more there are."""
    more = len(error.problems) - 1
    return error.problems[0] + (f" (+{more} more)" if more else "")


def literal_handler_environment(env: EnvironmentConfig, name: str) -> dict[str, str]:
    """What the deployed function of workflow `name` sees, with names instead of references."""
    workflow = env.workflow(name)
    names = WorkflowNames(name)
    return handler_environment(
        workflow,
        project_id=env.project_id,
        region=env.region,
        results_topic=contract.topic_path(env.project_id, names.results_topic),
        dead_letter_topic=contract.topic_path(env.project_id, names.dead_letter_topic),
        pipeline_root=contract.pipeline_root(env.pipeline_root_bucket_name, name),
        pipeline_service_account=contract.service_account_email(
            names.pipeline_account_id, env.project_id
        ),
        ignored_event_types=env.ignored_event_types(name),
        pipeline_kms_key=env.kms_key_name,
    )

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

from . import rules
from .errors import ConfigError
from .naming import member_id

DAY_SECONDS = 86_400
DEFAULT_RESULT_EVENT_TYPE = "workflow.started"


@dataclass(frozen=True, kw_only=True)
class RouteConfig:
    """An event type mapped to a Vertex AI pipeline template."""

    template_uri: str
    """Artifact Registry KFP template, `https://<region>-kfp.pkg.dev/<project>/<repo>/<name>/<tag>`."""
    parameters: dict[str, Any] = field(default_factory=dict)
    """Pipeline parameter defaults; the event payload overrides them. Default: none."""
    result_event_type: str = DEFAULT_RESULT_EVENT_TYPE
    """Type of the follow-up event published to the results topic."""


@dataclass(frozen=True, kw_only=True)
class SecretEnvConfig:
    """An environment variable read from Secret Manager at instance start."""

    secret: str
    """Secret id in the stack's project."""
    version: str = "latest"
    """Secret version. Default: `latest`."""


@dataclass(frozen=True, kw_only=True)
class WorkflowSettings:
    """Tunables of one workflow; `[workflow_defaults]` sets them for all workflows."""

    ack_deadline_seconds: int = 20
    """Push subscription ack deadline, 10..600. Default 20 s. The handler's timeout for
    each Google API call is derived from it, so its worst case (three calls) answers in time."""
    min_retry_backoff_seconds: int = 10
    """Exponential backoff lower bound, 0..600. Default 10 s."""
    max_retry_backoff_seconds: int = 600
    """Exponential backoff upper bound, 0..600. Default 600 s."""
    max_delivery_attempts: int = 5
    """Deliveries before a message is dead-lettered, 5..100. Default 5."""
    message_retention_seconds: int = 7 * DAY_SECONDS
    """Retention on the trigger, results and dead-letter topics, 600..2678400. Default 7 days."""
    dead_letter_retention_seconds: int = 7 * DAY_SECONDS
    """How long the dead-letter pull subscription keeps messages, 600..604800. Default 7 days."""
    max_event_age_seconds: int = DAY_SECONDS
    """Events published longer ago than this are dropped by the handler. Default 1 day."""
    runtime: str = "python312"
    """Cloud Run functions runtime: python312 or python313. Default python312."""
    available_memory: str = "512Mi"
    """Memory per instance, e.g. 256Mi or 1Gi. Default 512Mi."""
    timeout_seconds: int = 60
    """Request timeout, 1..3600. Default 60 s."""
    min_instances: int = 0
    """Warm instances, 0..100. Default 0 (scale to zero)."""
    max_instances: int = 10
    """Instance cap, 1..1000. Default 10."""
    max_instance_request_concurrency: int = 1
    """Concurrent requests per instance, 1..1000. Default 1; above 1 gets one full vCPU."""
    vpc_connector: str | None = None
    """Serverless VPC Access connector id for egress. Default: none (no VPC egress)."""
    vpc_egress: str = "PRIVATE_RANGES_ONLY"
    """PRIVATE_RANGES_ONLY or ALL_TRAFFIC; only used with vpc_connector."""
    labels: dict[str, str] = field(default_factory=dict)
    """Extra labels on this workflow's resources, merged over the environment's labels."""


@dataclass(frozen=True, kw_only=True)
class WorkflowConfig(WorkflowSettings):
    """One workflow: trigger topic -> push subscription -> handler -> results topic."""

    name: str
    """2..24 lowercase letters, digits and hyphens; prefixes every resource name."""
    routes: dict[str, RouteConfig]
    """Event type -> Vertex AI pipeline. At least one."""
    description: str = ""
    """Free text, used in resource descriptions."""
    trigger: str | None = None
    """Name of another workflow whose results topic triggers this one (chaining).
    Default: the workflow gets a trigger topic of its own."""
    publishers: tuple[str, ...] = ()
    """IAM members granted roles/pubsub.publisher on the trigger topic. Default: none."""
    subscription_filter: str = ""
    """Pub/Sub filter on the push subscription, e.g. `attributes.event_type = "model.train"`.
    Default: deliver everything."""
    secret_env: dict[str, SecretEnvConfig] = field(default_factory=dict)
    """Environment variables from Secret Manager. Default: none."""


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
    """CMEK key for all topics. Default: Google-managed encryption."""
    access_log_bucket: str | None = None
    """Existing bucket that receives the buckets' access logs. Default: no access logs."""
    pipeline_root_retention_days: int = 30
    """Pipeline artifacts are deleted after this many days, 1..3650. Default 30."""
    noncurrent_source_retention_days: int = 30
    """Old function source versions are deleted after this many days, 1..3650. Default 30."""
    state_path: str | None = None
    """Local backend state file, relative to the project root.
    Default: terraform.<env>.tfstate."""

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
        from .naming import WorkflowNames

        workflow = self.workflow(name)
        topic = (
            WorkflowNames(workflow.trigger).results_topic
            if workflow.trigger
            else WorkflowNames(name).trigger_topic
        )
        return f"projects/{self.project_id}/topics/{topic}"


_SETTING_FIELDS = {f.name for f in dataclasses.fields(WorkflowSettings)}
_WORKFLOW_FIELDS = {f.name for f in dataclasses.fields(WorkflowConfig)}
_ENV_FIELDS = {f.name for f in dataclasses.fields(EnvironmentConfig)} - {
    "name",
    "source_file",
    "workflows",
} | {"workflow_defaults", "workflows"}
_ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_LEADING_KEY = re.compile(r"[a-z_]+")


def _unknown_keys(where: str, table: dict[str, Any], allowed: set[str]) -> list[str]:
    return [
        f"{where}{rules.key(key)}: unknown key, allowed {', '.join(sorted(allowed))}"
        for key in sorted(set(table) - allowed)
    ]


def _expect_table(where: str, value: Any) -> list[str]:
    if isinstance(value, dict):
        return []
    return [f"{where}: got {value!r}, allowed a table"]


def settings_problems(where: str, s: WorkflowSettings) -> list[str]:
    """Range and format rules for the tunables (the props validation table)."""
    p: list[str] = []
    p += rules.integer_in_range(f"{where}ack_deadline_seconds", s.ack_deadline_seconds, 10, 600)
    backoff = rules.integer_in_range(
        f"{where}min_retry_backoff_seconds", s.min_retry_backoff_seconds, 0, 600
    ) + rules.integer_in_range(
        f"{where}max_retry_backoff_seconds", s.max_retry_backoff_seconds, 0, 600
    )
    p += backoff
    if (
        not backoff
        and not rules.is_token(s.min_retry_backoff_seconds)
        and s.min_retry_backoff_seconds > s.max_retry_backoff_seconds
    ):
        p.append(
            f"{where}min_retry_backoff_seconds: got {s.min_retry_backoff_seconds}, allowed at "
            f"most max_retry_backoff_seconds ({s.max_retry_backoff_seconds})"
        )
    p += rules.integer_in_range(f"{where}max_delivery_attempts", s.max_delivery_attempts, 5, 100)
    p += rules.integer_in_range(
        f"{where}message_retention_seconds", s.message_retention_seconds, 600, 31 * DAY_SECONDS
    )
    p += rules.integer_in_range(
        f"{where}dead_letter_retention_seconds",
        s.dead_letter_retention_seconds,
        600,
        7 * DAY_SECONDS,
    )
    p += rules.integer_in_range(
        f"{where}max_event_age_seconds", s.max_event_age_seconds, 60, 31 * DAY_SECONDS
    )
    p += rules.one_of(f"{where}runtime", s.runtime, rules.SUPPORTED_RUNTIMES)
    p += rules.matches(
        f"{where}available_memory", s.available_memory, rules.MEMORY, "a size like 256Mi or 1Gi"
    )
    p += rules.integer_in_range(f"{where}timeout_seconds", s.timeout_seconds, 1, 3600)
    instances = rules.integer_in_range(f"{where}max_instances", s.max_instances, 1, 1000)
    instances += rules.integer_in_range(f"{where}min_instances", s.min_instances, 0, 100)
    p += instances
    if not instances and s.min_instances > s.max_instances:
        p.append(
            f"{where}min_instances: got {s.min_instances}, allowed at most max_instances "
            f"({s.max_instances})"
        )
    p += rules.integer_in_range(
        f"{where}max_instance_request_concurrency", s.max_instance_request_concurrency, 1, 1000
    )
    if s.vpc_connector is not None and not isinstance(s.vpc_connector, str):
        p.append(f"{where}vpc_connector: got {s.vpc_connector!r}, allowed a connector id")
    p += rules.one_of(f"{where}vpc_egress", s.vpc_egress, rules.VPC_EGRESS)
    p += rules.labels(f"{where}labels", s.labels)
    return p


def workflow_problems(where: str, w: WorkflowConfig) -> list[str]:
    """Rules for one workflow's props, including its settings."""
    p = rules.matches(
        f"{where}name",
        w.name,
        rules.WORKFLOW_NAME,
        "2..24 lowercase letters, digits and hyphens, starting with a letter "
        "(it prefixes topic, function and service account names)",
    )
    p += settings_problems(where, w)
    if not isinstance(w.routes, dict) or not w.routes:
        p.append(f"{where}routes: got {w.routes!r}, allowed at least one event type route")
    else:
        for event_type, route in w.routes.items():
            at = f"{where}routes.{rules.key(event_type)}"
            p += rules.matches(
                at,
                event_type,
                rules.EVENT_TYPE,
                "a dotted lowercase event type such as model.train",
            )
            p += rules.template_uri(f"{at}.template_uri", route.template_uri)
            if not isinstance(route.parameters, dict):
                p.append(f"{at}.parameters: got {route.parameters!r}, allowed a table")
            else:
                p += rules.json_value(f"{at}.parameters", route.parameters)
            p += rules.matches(
                f"{at}.result_event_type",
                route.result_event_type,
                rules.EVENT_TYPE,
                "a dotted lowercase event type such as workflow.started",
            )
    seen_members: dict[str, int] = {}
    for i, member in enumerate(w.publishers):
        if isinstance(member, str) and member_id(member) in seen_members:
            first = seen_members[member_id(member)]
            p.append(
                f"{where}publishers[{i}]: got {member!r}, allowed each member once "
                f"(publishers[{first}] already grants it)"
            )
        elif isinstance(member, str):
            seen_members[member_id(member)] = i
        if member in rules.PUBLIC_MEMBERS:
            p.append(
                f"{where}publishers[{i}]: got {member!r}, allowed a named principal "
                "(public publishers are never allowed)"
            )
        else:
            p += rules.matches(
                f"{where}publishers[{i}]",
                member,
                rules.IAM_MEMBER,
                "an IAM member such as serviceAccount:producer@proj.iam.gserviceaccount.com",
            )
    if not isinstance(w.description, str) and not rules.is_token(w.description):
        p.append(f"{where}description: got {w.description!r}, allowed text")
    if not isinstance(w.subscription_filter, str) or len(w.subscription_filter) > 256:
        p.append(
            f"{where}subscription_filter: got {w.subscription_filter!r}, "
            "allowed a Pub/Sub filter of at most 256 characters"
        )
    for var, secret in w.secret_env.items():
        p += rules.matches(
            f"{where}secret_env.{rules.key(var)}",
            var,
            rules.ENV_VAR_NAME,
            "an upper-case environment variable name",
        )
        p += rules.matches(
            f"{where}secret_env.{rules.key(var)}.secret",
            secret.secret,
            rules.SECRET_ID,
            "a Secret Manager secret id (letters, digits, - and _)",
        )
        p += rules.matches(
            f"{where}secret_env.{rules.key(var)}.version",
            secret.version,
            rules.SECRET_VERSION,
            "'latest' or a version number as a string, such as '3'",
        )
    return p


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
        problems += _unknown_keys(f"{at}.", table, allowed)
        if required not in table:
            problems.append(f"{at}.{required}: missing, required")
            continue
        parsed[key] = _build_dataclass(cls, table, allowed)
    return parsed


def _parse_workflow(
    where: str,
    raw: Any,
    defaults: dict[str, Any],
    inherited: set[str],
    problems: list[str],
) -> WorkflowConfig | None:
    """One [[workflows]] table over the defaults. A problem with a value the workflow only
    inherits, that `[workflow_defaults]` has on its own too (`inherited`, without the
    `workflow_defaults.` prefix), is left to that one report."""
    if not isinstance(raw, dict):
        problems.append(f"{where[:-1]}: got {raw!r}, allowed a [[workflows]] table")
        return None
    problems += _unknown_keys(where, raw, _WORKFLOW_FIELDS)
    table = {**defaults, **raw}
    missing = [k for k in ("name", "routes") if k not in table]
    problems += [f"{where}{k}: missing, required" for k in missing]
    if missing:
        return None
    raw_routes = table["routes"]
    if not isinstance(raw_routes, dict):
        problems.append(f"{where}routes: got {raw_routes!r}, allowed a table of event types")
        return None
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
    problems += _unknown_keys("", data, _ENV_FIELDS)
    if "project_id" not in data:
        problems.append("project_id: missing, required")
    else:
        problems += rules.matches(
            "project_id",
            data["project_id"],
            rules.PROJECT_ID,
            "a project id: 6..30 lowercase letters, digits and hyphens, starting with a letter",
        )
    if "region" not in data:
        problems.append("region: missing, required")
    else:
        problems += rules.region("region", data["region"])
    problems += rules.labels("labels", data.get("labels", {}))
    if data.get("kms_key_name") is not None:
        problems += rules.matches(
            "kms_key_name",
            data["kms_key_name"],
            rules.KMS_KEY,
            "projects/<p>/locations/<l>/keyRings/<ring>/cryptoKeys/<key>",
        )
    if data.get("access_log_bucket") is not None:
        problems += rules.bucket_name("access_log_bucket", data["access_log_bucket"])
    for key in ("pipeline_root_retention_days", "noncurrent_source_retention_days"):
        if key in data:
            problems += rules.integer_in_range(key, data[key], 1, 3650)
    if "state_path" in data and (
        not isinstance(data["state_path"], str) or data["state_path"].startswith("/")
    ):
        problems.append(
            f"state_path: got {data['state_path']!r}, allowed a path relative to the project root"
        )

    defaults = data.get("workflow_defaults", {})
    problems += _expect_table("workflow_defaults", defaults)
    if isinstance(defaults, dict):
        problems += _unknown_keys("workflow_defaults.", defaults, _SETTING_FIELDS)
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
        workflow = _parse_workflow(f"workflows[{i}].", raw, defaults, inherited, problems)
        if workflow is not None:
            workflows.append(workflow)

    problems += _graph_problems(raw_workflows)
    env = None
    if not problems:
        env = EnvironmentConfig(
            name=name,
            source_file=source_file,
            workflows=tuple(workflows),
            **{k: v for k, v in data.items() if k not in {"workflows", "workflow_defaults"}},
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
    (the handler dead-letters any other). A duplicate name is the only problem reported
    about that name."""
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
        for event_type in _published(raw_workflows[upstream[i]]):
            if event_type not in routes:
                problems.append(
                    f"workflows[{i}].routes: missing {event_type!r}, required because trigger "
                    f"{trigger!r} publishes it (routes: {listed or 'none'})"
                )
    return problems


def _published(table: dict[str, Any]) -> list[str]:
    """The event types a workflow publishes to its results topic: its routes' result types."""
    published: list[str] = []
    routes = table.get("routes")
    for route in routes.values() if isinstance(routes, dict) else ():
        if not isinstance(route, dict):
            continue
        event_type = route.get("result_event_type", DEFAULT_RESULT_EVENT_TYPE)
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


def load_environment(path: str | Path) -> EnvironmentConfig:
    """Read and validate config/<env>.toml; raises ConfigError with every problem."""
    path = Path(path)
    return parse_environment(path.stem, path.as_posix(), _read_settings(path))


def load_environments(paths: list[Path]) -> list[EnvironmentConfig]:
    """Load several files, collecting the problems of all of them before raising. Across
    files: no two environments may share a project (their resource names would collide),
    checked on every well-formed project_id, also in files with other problems."""
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
    problems += collisions
    if problems:
        raise ConfigError(problems)
    return envs


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

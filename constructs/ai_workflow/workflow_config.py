"""What one workflow is made of: its routes, secrets and tunables, and their rules.

These are the props of `AiWorkflow` (see workflow.py). The app's settings loader
(ai_workflow_app.config) builds them from TOML; the library never reads files.
Validation collects every problem, one self-contained line each, and skips values that
are still unresolved tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workflow_handler import contract

from . import rules
from .naming import member_id

# The handler applies the same defaults when a value is missing: they are its contract's
# (function_src/workflow_handler/contract.py), and so is the day they count in.
DAY_SECONDS = contract.DAY_SECONDS
HOUR_SECONDS = 3600
DEFAULT_ON_SUCCESS = contract.DEFAULT_ON_SUCCESS
DEFAULT_ON_FAILURE = contract.DEFAULT_ON_FAILURE


@dataclass(frozen=True, kw_only=True)
class RouteConfig:
    """An event type mapped to a Vertex AI pipeline template."""

    template_uri: str
    """Artifact Registry KFP template, `https://<region>-kfp.pkg.dev/<project>/<repo>/<name>/<tag>`."""
    parameters: dict[str, Any] = field(default_factory=dict)
    """Pipeline parameter defaults; the event payload overrides them. Default: none."""
    on_success: str = DEFAULT_ON_SUCCESS
    """Type of the event published to the results topic when the job succeeds. Default:
    `workflow.succeeded`."""
    on_failure: str = DEFAULT_ON_FAILURE
    """Type of the event published when the job fails or is cancelled. Default:
    `workflow.failed`."""
    on_start: str | None = None
    """Type of an event published when the job is created. Default: none is published."""

    @property
    def published_event_types(self) -> tuple[str, ...]:
        """What this route publishes to the results topic, in order, without repeats."""
        published = (self.on_success, self.on_failure, self.on_start)
        return tuple(dict.fromkeys(t for t in published if t is not None))


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
    max_event_age_seconds: int = contract.DEFAULT_MAX_EVENT_AGE_SECONDS
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
    alerts: bool = True
    """Cloud Monitoring alert policies for this workflow (see alerts.py). Default: on."""
    alert_oldest_unacked_age_seconds: int | None = None
    """Alert when a push subscription's oldest unacked message is older than this, 60 s up
    to less than the subscriptions' retention. Default: derived, see
    `oldest_unacked_age_alert_seconds`."""
    alert_push_error_ratio: float = 0.05
    """Alert when more than this share of pushes fail (0 < ratio < 1) over 5 minutes.
    Default 0.05 (5%)."""

    @property
    def subscription_retention_seconds(self) -> int:
        """How long the push subscriptions keep an unacked message: the topics' retention,
        at most the 7 days a subscription allows."""
        return min(self.message_retention_seconds, 7 * DAY_SECONDS)

    @property
    def longest_retry_seconds(self) -> int:
        """An upper bound on how long a message that keeps failing is retried before it is
        dead-lettered: every attempt waits up to the ack deadline, then up to the maximum
        backoff."""
        return self.max_delivery_attempts * (
            self.ack_deadline_seconds + self.max_retry_backoff_seconds
        )

    @property
    def oldest_unacked_age_alert_seconds(self) -> int:
        """The oldest-unacked-message age that alerts: the set value, else one hour or the
        longest retry if that is longer (older is beyond retrying: delivery is stuck), but
        at most half the retention (time to act before messages expire)."""
        if self.alert_oldest_unacked_age_seconds is not None:
            return self.alert_oldest_unacked_age_seconds
        return min(
            max(HOUR_SECONDS, self.longest_retry_seconds), self.subscription_retention_seconds // 2
        )


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

    @property
    def published_event_types(self) -> tuple[str, ...]:
        """Every event type the workflow publishes to its results topic, sorted."""
        routes = self.routes.values() if isinstance(self.routes, dict) else ()
        return tuple(sorted({t for route in routes for t in route.published_event_types}))

    @property
    def success_event_types(self) -> tuple[str, ...]:
        """The event types it publishes when a job succeeds (what a chained workflow must
        route), sorted."""
        routes = self.routes.values() if isinstance(self.routes, dict) else ()
        return tuple(sorted({route.on_success for route in routes}))


def settings_problems(where: str, s: WorkflowSettings) -> list[str]:
    """Range and format rules for the tunables (the props validation table)."""
    p: list[str] = []
    p += rules.delivery(
        where,
        s.ack_deadline_seconds,
        s.min_retry_backoff_seconds,
        s.max_retry_backoff_seconds,
        s.max_delivery_attempts,
    )
    retention = rules.integer_in_range(
        f"{where}message_retention_seconds", s.message_retention_seconds, 600, 31 * DAY_SECONDS
    )
    p += retention
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
    if not instances:
        p += rules.at_most(
            f"{where}min_instances", s.min_instances, "max_instances", s.max_instances
        )
    p += rules.integer_in_range(
        f"{where}max_instance_request_concurrency", s.max_instance_request_concurrency, 1, 1000
    )
    if s.vpc_connector is not None and not isinstance(s.vpc_connector, str):
        p.append(f"{where}vpc_connector: got {s.vpc_connector!r}, allowed a connector id")
    p += rules.one_of(f"{where}vpc_egress", s.vpc_egress, rules.VPC_EGRESS)
    p += rules.labels(f"{where}labels", s.labels)
    p += alert_problems(where, s, retention_problems=retention)
    return p


def alert_problems(where: str, s: WorkflowSettings, retention_problems: list[str]) -> list[str]:
    """The alert settings: a switch, an age of at least a minute and less than the
    subscriptions' retention (7 days while the retention itself is not valid), a ratio
    between 0 and 1."""
    p = rules.boolean(f"{where}alerts", s.alerts)
    if s.alert_oldest_unacked_age_seconds is not None:
        known = not retention_problems and not rules.is_token(s.message_retention_seconds)
        retention = s.subscription_retention_seconds if known else 7 * DAY_SECONDS
        p += [
            f"{problem} (less than the subscriptions' message retention, {retention} s)"
            for problem in rules.integer_in_range(
                f"{where}alert_oldest_unacked_age_seconds",
                s.alert_oldest_unacked_age_seconds,
                60,
                retention - 1,
            )
        ]
    p += rules.fraction(f"{where}alert_push_error_ratio", s.alert_push_error_ratio)
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
            p += rules.not_reserved_event_type(at, event_type)
            p += rules.template_uri(f"{at}.template_uri", route.template_uri)
            if not isinstance(route.parameters, dict):
                p.append(f"{at}.parameters: got {route.parameters!r}, allowed a table")
            else:
                p += rules.json_value(f"{at}.parameters", route.parameters)
            for key, example in (
                ("on_success", DEFAULT_ON_SUCCESS),
                ("on_failure", DEFAULT_ON_FAILURE),
                ("on_start", "model.training_started"),
            ):
                value = getattr(route, key)
                if key == "on_start" and value is None:
                    continue
                p += rules.matches(
                    f"{at}.{key}",
                    value,
                    rules.EVENT_TYPE,
                    f"a dotted lowercase event type such as {example}",
                )
                p += rules.not_reserved_event_type(f"{at}.{key}", value)
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

"""The handler's configuration, read from the environment that the stack sets.

Every problem is reported as one ConfigError naming the variable, its value and what is
allowed; main.py turns it into a single structured log line and exit status 1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import contract as c
from .contract import EVENT_TYPE_PATTERN, is_event_type
from .events import loads_strict

DEFAULT_TIMEOUT_SECONDS = float(c.DEFAULT_OUTBOUND_TIMEOUT_SECONDS)
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
PUBSUB_ENDPOINT = "https://pubsub.googleapis.com"

_LOCATION_RE = re.compile(r"[a-z]+(?:-[a-z]+)+[0-9]+\Z")
_BUCKET_PATH_RE = re.compile(r"gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](?:/[^\s]*)?\Z")
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\Z")
_AR_TEMPLATE_RE = re.compile(
    r"https://[a-z0-9]+(?:-[a-z0-9]+)*-kfp\.pkg\.dev/"
    + c.PROJECT_ID_PATTERN
    + r"/[a-z][a-z0-9-]*/[^/\s]+/[^/\s]+\Z"
)
_HOST_PORT_RE = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}\Z")
_BASE_URL_RE = re.compile(r"https?://(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?/?\Z")

# The REST API downloads the template itself only from Artifact Registry (a Kubeflow Pipelines
# repository); a gs:// template would need the client to inline pipelineSpec.
TEMPLATE_URI_ALLOWED = (
    "an Artifact Registry template URI "
    "https://<region>-kfp.pkg.dev/<project>/<repository>/<template>/<version-or-tag>"
)


class ConfigError(Exception):
    def __init__(self, variable: str, value: str | None, allowed: str) -> None:
        shown = "<unset>" if value is None else _short(value)
        super().__init__(f"invalid configuration: {variable}={shown}: expected {allowed}")
        self.variable = variable
        self.value = value
        self.allowed = allowed


@dataclass(frozen=True)
class Route:
    event_type: str
    template_uri: str
    parameters: dict[str, Any]
    on_success: str
    """Published when the route's job succeeds."""
    on_failure: str
    """Published when the route's job fails or is cancelled."""
    on_start: str | None = None
    """Published when the job is created; None: nothing is."""


@dataclass(frozen=True)
class Settings:
    workflow: str
    project: str
    location: str
    results_topic: str
    dead_letter_topic: str
    pipeline_root: str
    pipeline_service_account: str
    routes: dict[str, Route]
    pipeline_kms_key: str | None
    """The CMEK key of the PipelineJobs (`encryptionSpec.kmsKeyName`); None: Google-managed."""
    ignored_event_types: frozenset[str]
    max_event_age_seconds: int
    pubsub_emulator_host: str | None
    vertex_endpoint: str
    timeout_seconds: float

    @property
    def pubsub_endpoint(self) -> str:
        if self.pubsub_emulator_host:
            return f"http://{self.pubsub_emulator_host}"
        return PUBSUB_ENDPOINT

    @property
    def pubsub_anonymous(self) -> bool:
        return bool(self.pubsub_emulator_host)

    @property
    def vertex_anonymous(self) -> bool:
        return self.vertex_endpoint.startswith("http://")

    @property
    def pipeline_events_subscription(self) -> str:
        """The subscription that pushes this workflow's pipeline job events (its name is the
        contract's formula, so it needs no variable of its own)."""
        return c.subscription_path(self.project, c.pipeline_events_subscription(self.workflow))


def _required(env: Mapping[str, str], name: str, pattern: re.Pattern[str], allowed: str) -> str:
    value = env.get(name)
    if value is None or value == "" or not pattern.match(value):
        raise ConfigError(name, value, allowed)
    return value


def load_settings(env: Mapping[str, str]) -> Settings:
    """Read and validate the handler's environment. Raises ConfigError."""
    workflow = _required(
        env,
        c.ENV_WORKFLOW_NAME,
        c.WORKFLOW_NAME,
        f"a workflow name like 'train-model' ({c.WORKFLOW_NAME_RULE})",
    )
    project = _required(env, c.ENV_GCP_PROJECT, c.PROJECT_ID, "a project id (6-30 of [a-z0-9-])")
    location = _required(
        env, c.ENV_VERTEX_LOCATION, _LOCATION_RE, "a Vertex AI region like 'europe-west4'"
    )
    results_topic = _required(env, c.ENV_RESULTS_TOPIC, c.TOPIC_PATH, _TOPIC_PATH_ALLOWED)
    dead_letter_topic = _required(env, c.ENV_DEAD_LETTER_TOPIC, c.TOPIC_PATH, _TOPIC_PATH_ALLOWED)
    pipeline_root = _required(
        env,
        c.ENV_PIPELINE_ROOT,
        _BUCKET_PATH_RE,
        "a Cloud Storage path like gs://<bucket>/<prefix>",
    )
    pipeline_sa = _required(
        env, c.ENV_PIPELINE_SERVICE_ACCOUNT, _EMAIL_RE, "a service account email"
    )
    routes = _parse_routes(env.get(c.ENV_ROUTES))
    pipeline_kms_key = _kms_key(env, location)
    ignored = _parse_ignored(env.get(c.ENV_IGNORED_EVENT_TYPES), routes)
    max_age = _positive_int(env, c.ENV_MAX_EVENT_AGE_SECONDS, c.DEFAULT_MAX_EVENT_AGE_SECONDS)

    emulator = env.get(c.ENV_PUBSUB_EMULATOR_HOST) or None
    if emulator is not None and not _HOST_PORT_RE.match(emulator):
        raise ConfigError(c.ENV_PUBSUB_EMULATOR_HOST, emulator, "host:port like localhost:8085")

    default_vertex = f"https://{location}-aiplatform.googleapis.com"
    vertex_endpoint = env.get(c.ENV_VERTEX_AI_ENDPOINT) or default_vertex
    if not _BASE_URL_RE.match(vertex_endpoint):
        raise ConfigError(
            c.ENV_VERTEX_AI_ENDPOINT,
            vertex_endpoint,
            "a base URL like https://europe-west4-aiplatform.googleapis.com or "
            "http://localhost:8086 (no path)",
        )

    timeout = _timeout(env)
    return Settings(
        workflow=workflow,
        project=project,
        location=location,
        results_topic=results_topic,
        dead_letter_topic=dead_letter_topic,
        pipeline_root=pipeline_root.rstrip("/"),
        pipeline_service_account=pipeline_sa,
        routes=routes,
        pipeline_kms_key=pipeline_kms_key,
        ignored_event_types=ignored,
        max_event_age_seconds=max_age,
        pubsub_emulator_host=emulator,
        vertex_endpoint=vertex_endpoint.rstrip("/"),
        timeout_seconds=timeout,
    )


_TOPIC_PATH_ALLOWED = "a full topic path projects/<project>/topics/<topic>"


def _kms_key(env: Mapping[str, str], location: str) -> str | None:
    """PIPELINE_KMS_KEY: unset or empty for Google-managed encryption, else a key in the jobs'
    own location (Vertex AI refuses a key from another region, and `global`)."""
    name = c.ENV_PIPELINE_KMS_KEY
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    found = c.KMS_KEY.match(raw)
    if found is None or found.group("location") != location:
        raise ConfigError(
            name,
            raw,
            f"a Cloud KMS key projects/<p>/locations/{location}/keyRings/<ring>/cryptoKeys/<key> "
            f"(in {c.ENV_VERTEX_LOCATION} {location}), or unset for Google-managed encryption",
        )
    return raw


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"[0-9]{1,10}", raw.strip()) or int(raw) < 1:
        raise ConfigError(name, raw, f"a positive whole number of seconds (default {default})")
    return int(raw)


def _timeout(env: Mapping[str, str]) -> float:
    name = c.ENV_OUTBOUND_TIMEOUT_SECONDS
    raw = env.get(name)
    if raw is None or raw == "":
        return DEFAULT_TIMEOUT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    low, high = c.MIN_OUTBOUND_TIMEOUT_SECONDS, c.MAX_OUTBOUND_TIMEOUT_SECONDS
    if not low <= value <= high:
        raise ConfigError(
            name,
            raw,
            f"a number of seconds from {low:g} to {high:g} (default {DEFAULT_TIMEOUT_SECONDS:g})",
        )
    return value


_ROUTES_SHAPE = (
    f'a JSON object {{"<event type>": {{"{c.ROUTE_TEMPLATE_URI}": "...", '
    f'"{c.ROUTE_PARAMETERS}": {{...}}, "{c.ROUTE_ON_SUCCESS}": "<event type>", '
    f'"{c.ROUTE_ON_FAILURE}": "<event type>", "{c.ROUTE_ON_START}": "<event type>"}}}} '
    "with at least one route"
)


def _parse_routes(raw: str | None) -> dict[str, Route]:
    name, shape = c.ENV_ROUTES, _ROUTES_SHAPE
    if raw is None or raw.strip() == "":
        raise ConfigError(name, raw, shape)
    try:
        obj = loads_strict(raw)
    except ValueError as exc:
        raise ConfigError(name, raw, f"{shape} (the value is not valid JSON: {exc})") from None
    if not isinstance(obj, dict) or not obj:
        raise ConfigError(name, raw, shape)
    routes: dict[str, Route] = {}
    for event_type, spec in obj.items():
        where = f"{name}[{event_type!r}]"
        if not is_event_type(event_type):
            raise ConfigError(
                name, raw, f"event types as keys ({EVENT_TYPE_PATTERN}); got {event_type!r}"
            )
        if c.is_reserved_event_type(event_type):
            raise ConfigError(
                name, raw, f"{c.RESERVED_EVENT_TYPES_RULE} as keys; got {event_type!r}"
            )
        if not isinstance(spec, dict):
            raise ConfigError(name, raw, f"{where} to be an object")
        unknown = sorted(set(spec) - set(c.ROUTE_KEYS))
        if unknown:
            renamed = "".join(
                f"; {old} is now {c.RENAMED_ROUTE_KEYS[old]}"
                for old in unknown
                if old in c.RENAMED_ROUTE_KEYS
            )
            raise ConfigError(
                name, raw, f"{where} keys among {', '.join(c.ROUTE_KEYS)}; got {unknown}{renamed}"
            )
        template_uri = spec.get(c.ROUTE_TEMPLATE_URI)
        if not isinstance(template_uri, str) or not _AR_TEMPLATE_RE.match(template_uri):
            raise ConfigError(
                name,
                raw,
                f"{where}.{c.ROUTE_TEMPLATE_URI} to be {TEMPLATE_URI_ALLOWED}; "
                f"got {template_uri!r}",
            )
        parameters = spec.get(c.ROUTE_PARAMETERS, {})
        if not isinstance(parameters, dict):
            raise ConfigError(name, raw, f"{where}.{c.ROUTE_PARAMETERS} to be a JSON object")
        published: dict[str, Any] = {
            key: spec.get(key, default)
            for key, default in (
                (c.ROUTE_ON_SUCCESS, c.DEFAULT_ON_SUCCESS),
                (c.ROUTE_ON_FAILURE, c.DEFAULT_ON_FAILURE),
                (c.ROUTE_ON_START, None),
            )
        }
        for key, value in published.items():
            if not is_event_type(value) and not (key == c.ROUTE_ON_START and value is None):
                raise ConfigError(
                    name,
                    raw,
                    f"{where}.{key} to be an event type ({EVENT_TYPE_PATTERN}); got {value!r}",
                )
            if c.is_reserved_event_type(value):
                raise ConfigError(
                    name, raw, f"{where}.{key} to be {c.RESERVED_EVENT_TYPES_RULE}; got {value!r}"
                )
        routes[event_type] = Route(
            event_type,
            template_uri,
            parameters,
            on_success=published[c.ROUTE_ON_SUCCESS],
            on_failure=published[c.ROUTE_ON_FAILURE],
            on_start=published[c.ROUTE_ON_START],
        )
    return routes


def _parse_ignored(raw: str | None, routes: dict[str, Route]) -> frozenset[str]:
    """IGNORED_EVENT_TYPES: event types that arrive on the trigger topic (another workflow's
    failure or start events) and are acknowledged without a job. Unset: none."""
    name = c.ENV_IGNORED_EVENT_TYPES
    if raw is None or raw.strip() == "":
        return frozenset()
    allowed = 'a JSON array of event types without a route, such as ["workflow.failed"]'
    try:
        obj = loads_strict(raw)
    except ValueError:
        raise ConfigError(name, raw, allowed) from None
    if not isinstance(obj, list) or not all(is_event_type(t) for t in obj):
        raise ConfigError(name, raw, allowed)
    routed = sorted(set(obj) & set(routes))
    if routed:
        raise ConfigError(name, raw, f"{allowed}; {', '.join(routed)} has a route")
    return frozenset(obj)


def _short(value: str, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."

"""The handler's configuration, read from the environment that the stack sets.

Every problem is reported as one ConfigError naming the variable, its value and what is
allowed; main.py turns it into a single structured log line and exit status 1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .events import EVENT_TYPE_PATTERN, is_event_type, loads_strict

DEFAULT_RESULT_EVENT_TYPE = "workflow.started"
DEFAULT_MAX_EVENT_AGE_SECONDS = 86400
DEFAULT_TIMEOUT_SECONDS = 10.0
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
PUBSUB_ENDPOINT = "https://pubsub.googleapis.com"

_PROJECT = r"[a-z][a-z0-9-]{4,28}[a-z0-9]"
_PROJECT_RE = re.compile(_PROJECT + r"\Z")
_WORKFLOW_RE = re.compile(r"[a-z][a-z0-9_-]{0,62}\Z")
_LOCATION_RE = re.compile(r"[a-z]+(?:-[a-z]+)+[0-9]+\Z")
TOPIC_RE = re.compile(
    r"projects/(" + _PROJECT + r")/topics/((?!goog)[A-Za-z][A-Za-z0-9\-_.~+%]{2,254})\Z"
)
_BUCKET_PATH_RE = re.compile(r"gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](?:/[^\s]*)?\Z")
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\Z")
_AR_TEMPLATE_RE = re.compile(
    r"https://[a-z0-9]+(?:-[a-z0-9]+)*-kfp\.pkg\.dev/"
    + _PROJECT
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
    result_event_type: str


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


def _required(env: Mapping[str, str], name: str, pattern: re.Pattern[str], allowed: str) -> str:
    value = env.get(name)
    if value is None or value == "" or not pattern.match(value):
        raise ConfigError(name, value, allowed)
    return value


def load_settings(env: Mapping[str, str]) -> Settings:
    """Read and validate the handler's environment. Raises ConfigError."""
    workflow = _required(
        env, "WORKFLOW_NAME", _WORKFLOW_RE, "a lowercase name like 'train-model' ([a-z][a-z0-9_-]*)"
    )
    project = _required(env, "GCP_PROJECT", _PROJECT_RE, "a project id (6-30 of [a-z0-9-])")
    location = _required(
        env, "VERTEX_LOCATION", _LOCATION_RE, "a Vertex AI region like 'europe-west4'"
    )
    results_topic = _required(
        env, "RESULTS_TOPIC", TOPIC_RE, "a full topic path projects/<project>/topics/<topic>"
    )
    dead_letter_topic = _required(
        env, "DEAD_LETTER_TOPIC", TOPIC_RE, "a full topic path projects/<project>/topics/<topic>"
    )
    pipeline_root = _required(
        env, "PIPELINE_ROOT", _BUCKET_PATH_RE, "a Cloud Storage path like gs://<bucket>/<prefix>"
    )
    pipeline_sa = _required(env, "PIPELINE_SERVICE_ACCOUNT", _EMAIL_RE, "a service account email")
    routes = _parse_routes(env.get("ROUTES"))
    max_age = _positive_int(env, "MAX_EVENT_AGE_SECONDS", DEFAULT_MAX_EVENT_AGE_SECONDS)

    emulator = env.get("PUBSUB_EMULATOR_HOST") or None
    if emulator is not None and not _HOST_PORT_RE.match(emulator):
        raise ConfigError("PUBSUB_EMULATOR_HOST", emulator, "host:port like localhost:8085")

    default_vertex = f"https://{location}-aiplatform.googleapis.com"
    vertex_endpoint = env.get("VERTEX_AI_ENDPOINT") or default_vertex
    if not _BASE_URL_RE.match(vertex_endpoint):
        raise ConfigError(
            "VERTEX_AI_ENDPOINT",
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
        max_event_age_seconds=max_age,
        pubsub_emulator_host=emulator,
        vertex_endpoint=vertex_endpoint.rstrip("/"),
        timeout_seconds=timeout,
    )


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"[0-9]{1,10}", raw.strip()) or int(raw) < 1:
        raise ConfigError(name, raw, f"a positive whole number of seconds (default {default})")
    return int(raw)


def _timeout(env: Mapping[str, str]) -> float:
    raw = env.get("OUTBOUND_TIMEOUT_SECONDS")
    if raw is None or raw == "":
        return DEFAULT_TIMEOUT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.05 <= value <= 600:
        raise ConfigError(
            "OUTBOUND_TIMEOUT_SECONDS",
            raw,
            f"a number of seconds from 0.05 to 600 (default {DEFAULT_TIMEOUT_SECONDS:g})",
        )
    return value


def _parse_routes(raw: str | None) -> dict[str, Route]:
    shape = (
        'a JSON object {"<event type>": {"template_uri": "...", "parameters": {...}, '
        '"result_event_type": "<event type>"}} with at least one route'
    )
    if raw is None or raw.strip() == "":
        raise ConfigError("ROUTES", raw, shape)
    try:
        obj = loads_strict(raw)
    except ValueError as exc:
        raise ConfigError("ROUTES", raw, f"{shape} (the value is not valid JSON: {exc})") from None
    if not isinstance(obj, dict) or not obj:
        raise ConfigError("ROUTES", raw, shape)
    routes: dict[str, Route] = {}
    for event_type, spec in obj.items():
        where = f"ROUTES[{event_type!r}]"
        if not is_event_type(event_type):
            raise ConfigError(
                "ROUTES", raw, f"event types as keys ({EVENT_TYPE_PATTERN}); got {event_type!r}"
            )
        if not isinstance(spec, dict):
            raise ConfigError("ROUTES", raw, f"{where} to be an object")
        unknown = sorted(set(spec) - {"template_uri", "parameters", "result_event_type"})
        if unknown:
            raise ConfigError(
                "ROUTES",
                raw,
                f"{where} keys among template_uri, parameters, result_event_type; got {unknown}",
            )
        template_uri = spec.get("template_uri")
        if not isinstance(template_uri, str) or not _AR_TEMPLATE_RE.match(template_uri):
            raise ConfigError(
                "ROUTES",
                raw,
                f"{where}.template_uri to be {TEMPLATE_URI_ALLOWED}; got {template_uri!r}",
            )
        parameters = spec.get("parameters", {})
        if not isinstance(parameters, dict):
            raise ConfigError("ROUTES", raw, f"{where}.parameters to be a JSON object")
        result_type = spec.get("result_event_type", DEFAULT_RESULT_EVENT_TYPE)
        if not is_event_type(result_type):
            raise ConfigError(
                "ROUTES",
                raw,
                f"{where}.result_event_type to be an event type ({EVENT_TYPE_PATTERN}); "
                f"got {result_type!r}",
            )
        routes[event_type] = Route(event_type, template_uri, parameters, result_type)
    return routes


def _short(value: str, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."

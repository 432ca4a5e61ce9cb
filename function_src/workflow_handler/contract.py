"""The handler's contract with the stack that deploys it, written once.

Both sides import this module: the handler (settings.py, events.py) to read and validate its
environment, and the stack (`from workflow_handler import contract` in ai_workflow.handler_env,
naming, rules and workflow_config, and ai_workflow_app.config) to build that environment. So
an environment variable's name, the ROUTES encoding, a default, a naming rule or a derived
name is changed here or nowhere.

Stdlib only, and it imports nothing else of the handler: it ships in the function's zip and
costs the stack nothing to import. docs/handler.md, "Configuration", documents the values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

# --- The environment variables the handler reads ----------------------------------------------
# Set by the stack (ai_workflow.handler_env.handler_environment), in this order:
ENV_WORKFLOW_NAME = "WORKFLOW_NAME"
ENV_GCP_PROJECT = "GCP_PROJECT"
ENV_VERTEX_LOCATION = "VERTEX_LOCATION"
ENV_RESULTS_TOPIC = "RESULTS_TOPIC"
ENV_DEAD_LETTER_TOPIC = "DEAD_LETTER_TOPIC"
ENV_PIPELINE_ROOT = "PIPELINE_ROOT"
ENV_PIPELINE_SERVICE_ACCOUNT = "PIPELINE_SERVICE_ACCOUNT"
ENV_ROUTES = "ROUTES"
ENV_IGNORED_EVENT_TYPES = "IGNORED_EVENT_TYPES"
ENV_MAX_EVENT_AGE_SECONDS = "MAX_EVENT_AGE_SECONDS"
ENV_OUTBOUND_TIMEOUT_SECONDS = "OUTBOUND_TIMEOUT_SECONDS"
# Set by the stack only when the environment has a customer-managed key (`kms_key_name`):
ENV_PIPELINE_KMS_KEY = "PIPELINE_KMS_KEY"
# Never set by the stack: they point the handler at local stand-ins or emulators.
ENV_PUBSUB_EMULATOR_HOST = "PUBSUB_EMULATOR_HOST"
ENV_VERTEX_AI_ENDPOINT = "VERTEX_AI_ENDPOINT"

STACK_VARIABLES = (
    ENV_WORKFLOW_NAME,
    ENV_GCP_PROJECT,
    ENV_VERTEX_LOCATION,
    ENV_RESULTS_TOPIC,
    ENV_DEAD_LETTER_TOPIC,
    ENV_PIPELINE_ROOT,
    ENV_PIPELINE_SERVICE_ACCOUNT,
    ENV_ROUTES,
    ENV_IGNORED_EVENT_TYPES,
    ENV_MAX_EVENT_AGE_SECONDS,
    ENV_OUTBOUND_TIMEOUT_SECONDS,
)
"""What the stack sets on every deployed function, in the order it sets them."""
OPTIONAL_STACK_VARIABLES = (ENV_PIPELINE_KMS_KEY,)
"""What the stack sets after those only when the setting behind it is set (a CMEK key)."""
LOCAL_VARIABLES = (ENV_PUBSUB_EMULATOR_HOST, ENV_VERTEX_AI_ENDPOINT)
"""What only a local run sets."""
VARIABLES = STACK_VARIABLES + OPTIONAL_STACK_VARIABLES + LOCAL_VARIABLES
"""Every environment variable the handler reads."""

# --- Defaults -----------------------------------------------------------------------------------
DEFAULT_ON_SUCCESS = "workflow.succeeded"
"""A route's `on_success` when it names none: published when the job succeeds."""
DEFAULT_ON_FAILURE = "workflow.failed"
"""A route's `on_failure` when it names none: published when the job fails or is cancelled."""
DAY_SECONDS = 86_400
DEFAULT_MAX_EVENT_AGE_SECONDS = DAY_SECONDS
"""MAX_EVENT_AGE_SECONDS when unset (and a workflow's `max_event_age_seconds`): one day."""
DEFAULT_OUTBOUND_TIMEOUT_SECONDS = 10
"""OUTBOUND_TIMEOUT_SECONDS when unset; also the most the stack derives from an ack deadline."""
MIN_OUTBOUND_TIMEOUT_SECONDS = 0.05
MAX_OUTBOUND_TIMEOUT_SECONDS = 600

# --- Naming rules -------------------------------------------------------------------------------
# Each is a pattern string (shown in messages) and its compiled form, anchored at both ends so
# that `match`, `fullmatch` and `search` all test the whole value.
WORKFLOW_NAME_PATTERN = r"[a-z][a-z0-9-]{0,22}[a-z0-9]"
WORKFLOW_NAME = re.compile(rf"\A(?:{WORKFLOW_NAME_PATTERN})\Z")
"""2..24 lowercase letters, digits and hyphens, starting with a letter, not ending with a
hyphen. The name prefixes topic, function and service account ids (at most 30 characters)."""
WORKFLOW_NAME_RULE = (
    "2..24 lowercase letters, digits and hyphens, starting with a letter and not ending with a "
    "hyphen"
)

MAX_EVENT_TYPE_LENGTH = 128
EVENT_TYPE_PATTERN = r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+"
EVENT_TYPE = re.compile(rf"\A(?=.{{1,{MAX_EVENT_TYPE_LENGTH}}}\Z)(?:{EVENT_TYPE_PATTERN})\Z")
"""A dotted lowercase name such as `model.train`, at most MAX_EVENT_TYPE_LENGTH characters."""

PROJECT_ID_PATTERN = r"[a-z][a-z0-9-]{4,28}[a-z0-9]"
PROJECT_ID = re.compile(rf"\A(?:{PROJECT_ID_PATTERN})\Z")
KMS_KEY_PATTERN = (
    r"projects/[^/\s]+/locations/(?P<location>[^/\s]+)/keyRings/[^/\s]+/cryptoKeys/[^/\s]+"
)
KMS_KEY = re.compile(rf"\A(?:{KMS_KEY_PATTERN})\Z")
"""A Cloud KMS key `projects/<p>/locations/<l>/keyRings/<ring>/cryptoKeys/<key>`; group:
location. PIPELINE_KMS_KEY holds one in the handler's Vertex AI location."""
TOPIC_NAME_PATTERN = r"(?!goog)[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}"
TOPIC_PATH = re.compile(rf"\Aprojects/({PROJECT_ID_PATTERN})/topics/({TOPIC_NAME_PATTERN})\Z")
"""`projects/<project>/topics/<topic>`; groups: project, topic."""


def is_event_type(value: object) -> bool:
    """True for a dotted lowercase name such as `model.train` (at most 128 characters)."""
    return isinstance(value, str) and EVENT_TYPE.match(value) is not None


# --- The probe (make smoke): reserved event types every handler answers without a job --------
PROBE_EVENT_TYPE = "workflow.probe"
"""On a trigger topic: the handler publishes PROBE_RESULT_EVENT_TYPE to its results topic and
starts nothing. Its payload is exactly `{"nonce": <PROBE_NONCE>}`."""
PROBE_RESULT_EVENT_TYPE = "workflow.probe.ok"
"""The answer: payload `{"nonce": <the probe's>, "workflow": <the answering workflow>}`, the
probe's correlation id. A chained workflow receives it on its trigger topic and acknowledges it
without a job, so it is never taken for an outcome."""
RESERVED_EVENT_TYPES = (PROBE_EVENT_TYPE, PROBE_RESULT_EVENT_TYPE)
"""No route may take or publish these (the stack's settings and the handler's ROUTES refuse
them)."""
PROBE_NONCE_PATTERN = r"[A-Za-z0-9_-]{1,64}"
PROBE_NONCE = re.compile(rf"\A(?:{PROBE_NONCE_PATTERN})\Z")
RESERVED_EVENT_TYPES_RULE = (
    f"an event type other than {' and '.join(RESERVED_EVENT_TYPES)} (reserved for the smoke "
    "probe, which every handler answers without a job)"
)


def is_reserved_event_type(value: object) -> bool:
    """True for the probe's event types, which no route may take or publish."""
    return value in RESERVED_EVENT_TYPES


# --- The ROUTES schema --------------------------------------------------------------------------
ROUTE_TEMPLATE_URI = "template_uri"
ROUTE_PARAMETERS = "parameters"
ROUTE_ON_SUCCESS = "on_success"
ROUTE_ON_FAILURE = "on_failure"
ROUTE_ON_START = "on_start"
ROUTE_KEYS = (
    ROUTE_TEMPLATE_URI,
    ROUTE_PARAMETERS,
    ROUTE_ON_SUCCESS,
    ROUTE_ON_FAILURE,
    ROUTE_ON_START,
)
"""The keys of one route; only template_uri is required. on_start is absent when the route
publishes nothing when its job is created."""
RENAMED_ROUTE_KEYS = {"result_event_type": ROUTE_ON_SUCCESS}
"""Keys of earlier versions and what they are called now."""


def route(
    template_uri: str,
    parameters: Mapping[str, Any],
    on_success: str,
    on_failure: str,
    on_start: str | None = None,
) -> dict[str, Any]:
    """One route as ROUTES carries it."""
    spec: dict[str, Any] = {
        ROUTE_TEMPLATE_URI: template_uri,
        ROUTE_PARAMETERS: parameters,
        ROUTE_ON_SUCCESS: on_success,
        ROUTE_ON_FAILURE: on_failure,
    }
    if on_start is not None:
        spec[ROUTE_ON_START] = on_start
    return spec


def routes_json(routes: Mapping[str, Mapping[str, Any]]) -> str:
    """The ROUTES value: `{"<event type>": <route>}` as compact JSON with sorted keys."""
    return json.dumps(dict(routes), sort_keys=True, separators=(",", ":"))


def ignored_event_types_json(event_types: Iterable[str]) -> str:
    """The IGNORED_EVENT_TYPES value: a sorted JSON array of event types ("[]" for none)."""
    return json.dumps(sorted(set(event_types)), separators=(",", ":"))


# --- Pipeline job events: Cloud Logging -> the pipeline-events topic -> the handler -------------
PIPELINE_JOB_EVENTS_LOG_ID = "aiplatform.googleapis.com%2Fpipeline_job_events"
"""The log Vertex AI Pipelines writes job state changes to (URL-encoded, as in logName)."""
PIPELINE_JOB_RESOURCE_TYPE = "aiplatform.googleapis.com/PipelineJob"
"""The monitored resource of those entries; its labels: resource_container (the project id),
location, pipeline_job_id."""
SUCCEEDED = "PIPELINE_STATE_SUCCEEDED"
FAILED = "PIPELINE_STATE_FAILED"
CANCELLED = "PIPELINE_STATE_CANCELLED"
TERMINAL_STATES = (SUCCEEDED, FAILED, CANCELLED)
"""The PipelineJob states after which nothing changes; each ends in one follow-up event."""
PIPELINE_JOB_SUFFIX_PATTERN = r"(?:[0-9]{1,40}|[hk][0-9a-f]{40})"
"""What follows `<workflow>-` in the id of a job the handler creates: a Pub/Sub message id
(digits), `h` + a hashed message id, or `k` + a hashed idempotency key. It has no `-`, so no
workflow's jobs match another workflow's pattern (`train` vs `train-eu`)."""


def pipeline_job_id_pattern(workflow: str) -> str:
    """The anchored regular expression (RE2 and Python alike) of the job ids of `workflow`
    (a valid workflow name: letters, digits and `-`, none of them special in a pattern)."""
    return f"^{workflow}-{PIPELINE_JOB_SUFFIX_PATTERN}$"


def pipeline_job_events_log(project: str) -> str:
    """logName of the pipeline job events of `project`."""
    return f"projects/{project}/logs/{PIPELINE_JOB_EVENTS_LOG_ID}"


# --- Derived names and values -------------------------------------------------------------------


def trigger_topic(workflow: str) -> str:
    return f"{workflow}-trigger"


def results_topic(workflow: str) -> str:
    return f"{workflow}-results"


def dead_letter_topic(workflow: str) -> str:
    return f"{workflow}-dead-letter"


def pipeline_events_topic(workflow: str) -> str:
    """The topic the workflow's log sink publishes its jobs' terminal state changes to."""
    return f"{workflow}-pipeline-events"


def pipeline_events_subscription(workflow: str) -> str:
    """The push subscription that delivers those to the handler (it knows them by it)."""
    return f"{workflow}-pipeline-events-push"


def subscription_path(project: str, subscription: str) -> str:
    """`projects/<project>/subscriptions/<subscription>`, as a push envelope names it."""
    return f"projects/{project}/subscriptions/{subscription}"


def topic_path(project: str, topic: str) -> str:
    """`projects/<project>/topics/<topic>`: what RESULTS_TOPIC and DEAD_LETTER_TOPIC hold."""
    return f"projects/{project}/topics/{topic}"


def pipeline_root(bucket: str, workflow: str) -> str:
    """PIPELINE_ROOT: the workflow's prefix in the pipeline-root bucket."""
    return f"gs://{bucket}/{workflow}"


def pipeline_account_id(workflow: str) -> str:
    """The id of the service account pipeline runs use (at most 30 characters)."""
    return f"{workflow}-pipe"


def service_account_email(account_id: str, project: str) -> str:
    """PIPELINE_SERVICE_ACCOUNT: the email of a user-managed service account."""
    return f"{account_id}@{project}.iam.gserviceaccount.com"


def outbound_timeout_seconds(ack_deadline_seconds: int) -> int:
    """OUTBOUND_TIMEOUT_SECONDS for a push subscription's ack deadline. A request makes at most
    three Google API calls (create or get the job, publish), and all three must fit in the ack
    deadline, or Pub/Sub redelivers a message that succeeded. 20 s -> 6 s; at most the
    handler's own default (10 s)."""
    return max(1, min(DEFAULT_OUTBOUND_TIMEOUT_SECONDS, (ack_deadline_seconds - 2) // 3))

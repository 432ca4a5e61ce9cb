"""Validation rules shared by the config loader and the constructs' props.

Every check returns a list of problem strings (``field: got X, allowed Y``) so callers
collect all errors and raise once. Values that are still unresolved cdktf tokens are
skipped, since they are only known at apply time.
"""

from __future__ import annotations

import datetime
import difflib
import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from workflow_handler import contract

from . import regions

Problems = list[str]

# The handler checks these two itself, so they are its contract's (workflow_handler.contract).
WORKFLOW_NAME = contract.WORKFLOW_NAME
EVENT_TYPE = contract.EVENT_TYPE
# Names and patterns documented by Google Cloud.
PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
PUBSUB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$")
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9\-_]{1,61}[a-z0-9]$")
LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
# The handler checks PIPELINE_KMS_KEY with the same pattern (group: location).
KMS_KEY = contract.KMS_KEY
IAM_MEMBER = re.compile(r"^(serviceAccount|user|group|domain|principal|principalSet):\S+$")
TEMPLATE_URI = re.compile(
    r"^https://(?P<location>[a-z0-9-]+)-kfp\.pkg\.dev/[^/\s]+/[^/\s]+/[^/\s]+/[^/\s]+$"
)
MEMORY = re.compile(r"^[1-9][0-9]*(Mi|Gi|M|G)$")
SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
SECRET_VERSION = re.compile(r"^(latest|[1-9][0-9]*)$")
ENV_VAR_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
SUPPORTED_RUNTIMES = ("python312", "python313")
VPC_EGRESS = ("PRIVATE_RANGES_ONLY", "ALL_TRAFFIC")
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
NOTIFICATION_CHANNEL = re.compile(r"^projects/[^/\s]+/notificationChannels/[0-9]+$")


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_.-]+$")


def key(name: Any) -> str:
    """A table key as a segment of a key path: as written when plain, else quoted like a
    TOML key with every control character escaped, so a problem is always one line."""
    text = str(name)
    return text if _PLAIN_KEY.fullmatch(text) else json.dumps(text)


def unknown_keys(where: str, table: dict[str, Any], allowed: set[str]) -> Problems:
    """One problem per key of `table` not in `allowed` (a typo must not fall back to a
    default), naming the allowed keys; `where` prefixes each key path."""
    return [
        f"{where}{key(name)}: unknown key, allowed {', '.join(sorted(allowed))}"
        for name in sorted(set(table) - allowed)
    ]


def _may_be_token(value: Any) -> bool:
    """Cheap pre-check: only these shapes can encode a cdktf token (strings and lists hold
    `${TfToken[...]}`-style markers, numbers are huge negative finite doubles, lists are
    lists of such strings). Plain config values skip the round trip to the jsii kernel, and
    so does anything it cannot carry: -inf, nan or a TOML date would kill the kernel (its
    JSON has no such values), and every later call with it."""
    if isinstance(value, str):
        return "${" in value or "#{" in value
    if isinstance(value, float):
        return math.isfinite(value) and value < -1e280
    return (
        isinstance(value, list)
        and all(isinstance(v, str) for v in value)
        and any(_may_be_token(v) for v in value)
    )


def is_token(value: Any) -> bool:
    """True for an unresolved cdktf/cdktn token (only possible once one of them is imported;
    this never imports either)."""
    if not _may_be_token(value):
        return False
    from .compat import loaded_core

    core = loaded_core()
    return core is not None and bool(core.Token.is_unresolved(value))


def integer_in_range(field: str, value: Any, low: int, high: int) -> Problems:
    if is_token(value):
        return []
    if isinstance(value, bool) or not isinstance(value, int):
        return [f"{field}: got {value!r}, allowed an integer {low}..{high}"]
    if not low <= value <= high:
        return [f"{field}: got {value}, allowed {low}..{high}"]
    return []


def boolean(field: str, value: Any) -> Problems:
    if is_token(value) or isinstance(value, bool):
        return []
    return [f"{field}: got {value!r}, allowed true or false"]


def fraction(field: str, value: Any) -> Problems:
    """A ratio strictly between 0 and 1 (0.05 is 5%)."""
    if is_token(value):
        return []
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        return [f"{field}: got {value!r}, allowed a number greater than 0 and less than 1"]
    return []


def notification_channels(field: str, value: Any) -> Problems:
    """Cloud Monitoring notification channel names, each once."""
    if not isinstance(value, list | tuple):
        return [
            f"{field}: got {value!r}, allowed a list of "
            "projects/<project>/notificationChannels/<id>"
        ]
    problems: Problems = []
    seen: dict[str, int] = {}
    for i, channel in enumerate(value):
        at = f"{field}[{i}]"
        if isinstance(channel, str) and channel in seen:
            problems.append(
                f"{at}: got {channel!r}, allowed each channel once ({field}[{seen[channel]}] "
                "already names it)"
            )
            continue
        problems += matches(
            at, channel, NOTIFICATION_CHANNEL, "projects/<project>/notificationChannels/<id>"
        )
        if isinstance(channel, str):
            seen[channel] = i
    return problems


def at_most(field: str, value: Any, other_field: str, other: Any) -> Problems:
    """A cross-key rule, `value` <= `other` (a minimum and its maximum), once each key has
    passed its own rule; nothing to say while either is still a token (known at apply
    time)."""
    if is_token(value) or is_token(other) or value <= other:
        return []
    return [f"{field}: got {value}, allowed at most {other_field} ({other})"]


def delivery(
    where: str,
    ack_deadline_seconds: Any,
    min_retry_backoff_seconds: Any,
    max_retry_backoff_seconds: Any,
    max_delivery_attempts: Any,
) -> Problems:
    """A push subscription's delivery settings: ack deadline 10..600, backoff 0..600 with
    min <= max, 5..100 attempts before dead-lettering. `where` prefixes each key path."""
    p = integer_in_range(f"{where}ack_deadline_seconds", ack_deadline_seconds, 10, 600)
    backoff = integer_in_range(
        f"{where}min_retry_backoff_seconds", min_retry_backoff_seconds, 0, 600
    ) + integer_in_range(f"{where}max_retry_backoff_seconds", max_retry_backoff_seconds, 0, 600)
    p += backoff
    if not backoff:
        p += at_most(
            f"{where}min_retry_backoff_seconds",
            min_retry_backoff_seconds,
            "max_retry_backoff_seconds",
            max_retry_backoff_seconds,
        )
    p += integer_in_range(f"{where}max_delivery_attempts", max_delivery_attempts, 5, 100)
    return p


def matches(field: str, value: Any, pattern: re.Pattern[str], allowed: str) -> Problems:
    if is_token(value):
        return []
    if not isinstance(value, str) or not pattern.fullmatch(value):
        return [f"{field}: got {value!r}, allowed {allowed}"]
    return []


def not_reserved_event_type(field: str, value: Any) -> Problems:
    """The smoke probe's event types are the handler's own: no route takes or publishes them."""
    if contract.is_reserved_event_type(value):
        return [f"{field}: got {value!r}, allowed {contract.RESERVED_EVENT_TYPES_RULE}"]
    return []


def one_of(field: str, value: Any, choices: Iterable[str]) -> Problems:
    options = tuple(choices)
    if value not in options:
        return [f"{field}: got {value!r}, allowed one of {', '.join(options)}"]
    return []


def json_value(field: str, value: Any) -> Problems:
    """A value JSON carries as is (pipeline parameters travel as JSON): no TOML date or time,
    no nan or infinity. One problem per bad leaf, at its own key path."""
    if isinstance(value, dict):
        return [p for k, child in value.items() for p in json_value(f"{field}.{key(k)}", child)]
    if isinstance(value, list | tuple):
        return [p for i, child in enumerate(value) for p in json_value(f"{field}[{i}]", child)]
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{field}: got {value!r}, allowed a finite number"]
    if value is None or isinstance(value, str | int | float) or is_token(value):
        return []
    shown = value.isoformat() if isinstance(value, datetime.date | datetime.time) else repr(value)
    return [
        f"{field}: got {shown}, allowed a JSON value: a string, number, boolean, array or "
        "table (quote a date or time as a string)"
    ]


def labels(field: str, value: Any) -> Problems:
    if not isinstance(value, dict):
        return [f"{field}: got {value!r}, allowed a table of label key = value"]
    problems: Problems = []
    for label_key, label_value in value.items():
        problems += matches(
            f"{field}.{key(label_key)}",
            label_key,
            LABEL_KEY,
            "lowercase letters, digits, _ and -, starting "
            "with a letter, at most 63 characters (label key)",
        )
        problems += matches(
            f"{field}.{key(label_key)}",
            label_value,
            LABEL_VALUE,
            "lowercase letters, digits, _ and -, at most 63 characters (label value)",
        )
    return problems


def bucket_name(field: str, value: str) -> Problems:
    """GCS naming rules for names without dots."""
    problems = matches(
        field,
        value,
        BUCKET_NAME,
        "3..63 lowercase letters, digits, - and _, starting and ending with a letter or digit",
    )
    if not problems and (value.startswith("goog") or "google" in value):
        problems.append(f"{field}: got {value!r}, allowed a name without 'goog' prefix or 'google'")
    return problems


def pubsub_name(field: str, value: str) -> Problems:
    """Pub/Sub topic and subscription naming rules."""
    problems = matches(
        field,
        value,
        PUBSUB_NAME,
        "3..255 characters of letters, digits and -_.~+%, starting with a letter",
    )
    if not problems and value.startswith("goog"):
        problems.append(f"{field}: got {value!r}, allowed a name not starting with 'goog'")
    return problems


def did_you_mean(value: Any, choices: Sequence[str]) -> str:
    """` (did you mean 'x'?)` when `value` is a near miss of one or two of `choices` (the
    best `difflib` matches), else the empty string."""
    if not isinstance(value, str):
        return ""
    wanted = re.sub(r"[\s_]+", "-", value.strip().lower())
    near = difflib.get_close_matches(wanted, choices, n=len(choices), cutoff=0.75)
    if not near:
        return ""
    best = difflib.SequenceMatcher(None, wanted, near[0]).ratio()
    tied = sorted(c for c in near if difflib.SequenceMatcher(None, wanted, c).ratio() == best)
    if len(tied) > 2:
        return ""
    return f" (did you mean {' or '.join(repr(c) for c in tied)}?)"


def known_name(
    field: str, value: Any, choices: Sequence[str], allowed: str, otherwise: str
) -> Problems:
    """`value` must be one of `choices` (a long pinned list): a near miss names the nearest
    ones, anything else says where the list is (`otherwise`)."""
    if is_token(value) or (isinstance(value, str) and value in choices):
        return []
    hint = did_you_mean(value, choices) or f" ({otherwise})"
    return [f"{field}: got {value!r}, allowed {allowed}{hint}"]


REGIONS_FILE = "constructs/ai_workflow/regions.py"


def region(field: str, value: Any) -> Problems:
    """A region where the stack can run: Cloud Run functions (2nd gen) and Vertex AI."""
    allowed = "a Cloud Run functions + Vertex AI region"
    if (
        value in regions.GOOGLE_CLOUD_REGIONS
        and value not in regions.FUNCTIONS_AND_VERTEX_AI_REGIONS
    ):
        return [
            f"{field}: got {value!r}, allowed {allowed} ({value} is a Google Cloud region, "
            f"but {REGIONS_FILE} does not list it as having both)"
        ]
    return known_name(
        field, value, regions.FUNCTIONS_AND_VERTEX_AI_REGIONS, allowed, f"listed in {REGIONS_FILE}"
    )


CMEK_RESOURCES = "the buckets, repository, function and Vertex AI jobs"


def kms_key(field: str, value: Any, region: str | None) -> Problems:
    """A CMEK key for a stack in `region` (None: an invalid region, reported on its own; only
    the key's format is checked). Its buckets, repository, function and Vertex AI jobs
    are regional and refuse a key from another location, `global` included; its topics use
    the same key."""
    problems = matches(
        field, value, KMS_KEY, "projects/<p>/locations/<l>/keyRings/<ring>/cryptoKeys/<key>"
    )
    if problems or region is None or is_token(value) or is_token(region):
        return problems
    found = KMS_KEY.fullmatch(value)
    if found is not None and found.group("location") == region:
        return []
    return [f"{field}: got {value!r}, allowed a key in {region} (the region of {CMEK_RESOURCES})"]


def template_uri(field: str, value: Any) -> Problems:
    """An Artifact Registry KFP template URI in a known location (any region: templates
    can live outside the stack's region)."""
    problems = matches(
        field,
        value,
        TEMPLATE_URI,
        "an Artifact Registry KFP template "
        "https://<region>-kfp.pkg.dev/<project>/<repo>/<template>/<tag-or-version>",
    )
    if problems or is_token(value):
        return problems
    found = TEMPLATE_URI.fullmatch(value)
    location = found.group("location") if found else ""
    if location in regions.ARTIFACT_REGISTRY_LOCATIONS:
        return []
    hint = did_you_mean(location, regions.ARTIFACT_REGISTRY_LOCATIONS)
    return [
        f"{field}: got {value!r}, allowed an Artifact Registry location before -kfp.pkg.dev"
        + (hint or f" (listed in {REGIONS_FILE})")
    ]

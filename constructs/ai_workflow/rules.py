"""Validation rules shared by the config loader and the constructs' props.

Every check returns a list of problem strings (``field: got X, allowed Y``) so callers
collect all errors and raise once. Values that are still unresolved cdktf tokens are
skipped, since they are only known at apply time.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from typing import Any

Problems = list[str]

# Names and patterns documented by Google Cloud.
WORKFLOW_NAME = re.compile(r"^[a-z][a-z0-9-]{0,22}[a-z0-9]$")
PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
PUBSUB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$")
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9\-_]{1,61}[a-z0-9]$")
LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
KMS_KEY = re.compile(r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$")
IAM_MEMBER = re.compile(r"^(serviceAccount|user|group|domain|principal|principalSet):\S+$")
TEMPLATE_URI = re.compile(r"^https://[a-z0-9-]+-kfp\.pkg\.dev/[^/\s]+/[^/\s]+/[^/\s]+/[^/\s]+$")
MEMORY = re.compile(r"^[1-9][0-9]*(Mi|Gi|M|G)$")
SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
ENV_VAR_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
SUPPORTED_RUNTIMES = ("python312", "python313")
VPC_EGRESS = ("PRIVATE_RANGES_ONLY", "ALL_TRAFFIC")
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")


def _may_be_token(value: Any) -> bool:
    """Cheap pre-check: only these shapes can encode a cdktf token (strings and lists hold
    `${TfToken[...]}`-style markers, numbers are huge negative doubles). Plain config
    values skip the round trip to the jsii kernel."""
    if isinstance(value, str):
        return "${" in value or "#{" in value
    if isinstance(value, float):
        return value < -1e280
    return isinstance(value, list) and any(_may_be_token(v) for v in value)


def is_token(value: Any) -> bool:
    """True for an unresolved cdktf token (only possible once cdktf is imported)."""
    if not _may_be_token(value):
        return False
    cdktf = sys.modules.get("cdktf")
    return cdktf is not None and bool(cdktf.Token.is_unresolved(value))


def integer_in_range(field: str, value: Any, low: int, high: int) -> Problems:
    if is_token(value):
        return []
    if isinstance(value, bool) or not isinstance(value, int):
        return [f"{field}: got {value!r}, allowed an integer {low}..{high}"]
    if not low <= value <= high:
        return [f"{field}: got {value}, allowed {low}..{high}"]
    return []


def matches(field: str, value: Any, pattern: re.Pattern[str], allowed: str) -> Problems:
    if is_token(value):
        return []
    if not isinstance(value, str) or not pattern.fullmatch(value):
        return [f"{field}: got {value!r}, allowed {allowed}"]
    return []


def one_of(field: str, value: Any, choices: Iterable[str]) -> Problems:
    options = tuple(choices)
    if value not in options:
        return [f"{field}: got {value!r}, allowed one of {', '.join(options)}"]
    return []


def labels(field: str, value: Any) -> Problems:
    if not isinstance(value, dict):
        return [f"{field}: got {value!r}, allowed a table of label key = value"]
    problems: Problems = []
    for key, label_value in value.items():
        problems += matches(
            f"{field}.{key}",
            key,
            LABEL_KEY,
            "lowercase letters, digits, _ and -, starting "
            "with a letter, at most 63 characters (label key)",
        )
        problems += matches(
            f"{field}.{key}",
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

"""What the handler sends must travel: values Google's APIs can carry, requests that fit.

Two ideas, both about the wire:
- Values. Pub/Sub and Vertex AI carry JSON numbers as IEEE 754 doubles and text as UTF-8, so a
  number outside the double range (`1e400`, `NaN`, a 400-digit integer) or a string with a lone
  (unpaired) surrogate escape (`"\\ud800"`) cannot be put into any request. `check_value` finds
  the first such value and names where it is; the handler rejects it at validation, and also
  job parameters too large for the follow-up events that carry them (MAX_PARAMETERS_BYTES).
- Requests. `encode_request` is the one JSON encoder of every request body the handler sends: it
  refuses what the checks above refuse (a bug if it ever happens, never a transient error), and
  `fit_publish_data` keeps a dead-letter publish within Pub/Sub's 10 MB request limit.

Stdlib only and free of I/O, like events.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import sys
from collections.abc import Mapping
from typing import Any

# --- The `error` attribute values of values that cannot travel (docs/handler.md) ----------------
NON_FINITE_NUMBER = "non_finite_number"
UNPAIRED_SURROGATE = "unpaired_surrogate"
EVENT_TOO_LARGE = "event_too_large"
REQUEST_NOT_SERIALIZABLE = "request_not_serializable"

# --- Pub/Sub's publish limits (cloud.google.com/pubsub/quotas: 10 MB per request and message) ---
MAX_PUBLISH_REQUEST_BYTES = 10_000_000
"""The JSON body of one publish request, base64 data and attributes included. Pub/Sub counts
the message as its raw data plus attributes, which is smaller, so this bounds both limits."""

MAX_PARAMETERS_BYTES = 7_000_000
"""A job's parameter values as JSON, at most: every follow-up event carries them (its
`source_event.parameters`), and with them it must still fit one publish request in base64
(7 MB -> 9.33 MB, and the rest of the event is a few KB: outputs are left out when large)."""

DOUBLE_RANGE = f"a finite number within ±{sys.float_info.max!r}"
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_BIG_INT = 2**1023  # below this, every int converts to a finite double


class Untravelable(ValueError):
    """A value no request can carry. `code` is the dead-letter `error`, `path` where it is."""

    def __init__(self, code: str, path: str, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.code = code
        self.path = path
        self.detail = detail


class UnsendableRequest(ValueError):
    """A request body of ours that cannot be encoded: a bug in the handler, never the API's."""


class _NonFinite:
    """What the JSON parser makes of a number literal that is not a finite double (`1e400`,
    `NaN`, `-Infinity`); check_value reports it, so it never leaves loads_strict."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def parse_float(text: str) -> float | _NonFinite:
    """json.loads' parse_float: a finite double, or a marker check_value reports with its path."""
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(text)


def parse_constant(text: str) -> _NonFinite:
    """json.loads' parse_constant (`NaN`, `Infinity`, `-Infinity`, which Python accepts)."""
    return _NonFinite(text)


def check_value(value: Any, max_depth: int) -> int:
    """The nesting depth of a parsed JSON value (iterative: no recursion limit), stopping past
    `max_depth`. Raises Untravelable for the first number outside the double range or string
    (value or key) with a lone surrogate, naming its path (`payload.items[2]`)."""
    deepest = 0
    stack: list[tuple[Any, int, Any]] = [(value, 1, None)]
    while stack:
        item, level, path = stack.pop()
        kind = type(item)
        if kind is str:
            if not item.isascii() and _SURROGATE_RE.search(item):
                raise _surrogate(path, item)
        elif kind is dict:
            deepest = max(deepest, level)
            if level > max_depth:
                break
            for key in item:
                if not key.isascii() and _SURROGATE_RE.search(key):
                    raise _surrogate(path, key, is_key=True)
            # reversed: the stack pops them in document order, so the first problem is named
            stack.extend((item[key], level + 1, (path, key)) for key in reversed(item))
        elif kind is list:
            deepest = max(deepest, level)
            if level > max_depth:
                break
            stack.extend(
                (item[index], level + 1, (path, index)) for index in range(len(item) - 1, -1, -1)
            )
        elif kind is _NonFinite:
            raise _non_finite(path, item.text)
        elif kind is int and abs(item) >= _BIG_INT:
            try:
                float(item)
            except OverflowError:
                digits = int(item.bit_length() * math.log10(2)) + 1
                raise _non_finite(path, f"an integer of {digits} digits") from None
    return deepest


def path_text(path: Any) -> str:
    """`(((None, 'payload'), 'items'), 2)` -> `payload.items[2]`; the root is `(top level)`."""
    parts: list[str] = []
    while path is not None:
        path, step = path
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif _IDENTIFIER_RE.match(step):
            parts.append(f".{step}")
        else:
            parts.append(f"[{json.dumps(step)}]")
    text = "".join(reversed(parts)).removeprefix(".")
    return text or "(top level)"


def _non_finite(path: Any, text: str) -> Untravelable:
    return Untravelable(
        NON_FINITE_NUMBER,
        path_text(path),
        f"got {text}, allowed {DOUBLE_RANGE} (Pub/Sub and Vertex AI carry numbers as doubles)",
    )


def _surrogate(path: Any, text: str, is_key: bool = False) -> Untravelable:
    match = _SURROGATE_RE.search(text)
    assert match is not None
    what = "a key" if is_key else "a string"
    return Untravelable(
        UNPAIRED_SURROGATE,
        path_text(path),
        f"got {what} with a lone surrogate \\u{ord(match.group()):04x} (an unpaired \\u escape) "
        f"at character {match.start()}, allowed text that UTF-8 can encode",
    )


def check_text(where: str, text: str) -> None:
    """Raise Untravelable(unpaired_surrogate) naming `where` when `text` has a lone surrogate."""
    if not text.isascii() and _SURROGATE_RE.search(text):
        error = _surrogate(None, text)
        raise Untravelable(error.code, where, error.detail)


# --- Encoding requests --------------------------------------------------------------------------


def encode_request(body: Any, *, sort_keys: bool = False) -> bytes:
    """Compact UTF-8 JSON, the way Google's APIs read it. Raises UnsendableRequest for what no
    API accepts: a non-finite number, a lone surrogate, a value JSON cannot encode."""
    try:
        text = json.dumps(
            body, allow_nan=False, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys
        )
        return text.encode("utf-8")
    except (ValueError, TypeError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
        raise UnsendableRequest(f"{type(exc).__name__}: {exc}"[:300]) from None


def json_size(value: Any) -> int:
    """The size of `value` as compact UTF-8 JSON, for checking limits. Never raises for a parsed
    JSON value, even one encode_request refuses (that request reports it as the bug it is)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return len(text.encode("utf-8", "surrogatepass"))


def publish_request(data: bytes, attributes: Mapping[str, str]) -> dict[str, Any]:
    """The body of `POST .../topics/<t>:publish` with one message."""
    message: dict[str, Any] = {"data": base64.b64encode(data).decode("ascii")}
    if attributes:
        message["attributes"] = dict(attributes)
    return {"messages": [message]}


def publish_request_bytes(data_length: int, attributes: Mapping[str, str]) -> int:
    """The size of that body's JSON for data of `data_length` bytes (base64: 4 per 3)."""
    return len(encode_request(publish_request(b"", attributes))) + 4 * -(-data_length // 3)


def truncation_attributes(data: bytes) -> dict[str, str]:
    """What a truncated dead letter says of the payload it stands for."""
    return {
        "dead_letter_truncated": "true",
        "original_size": str(len(data)),
        "original_sha256": hashlib.sha256(data).hexdigest(),
    }


def fit_publish_data(data: bytes, attributes: Mapping[str, str]) -> bytes:
    """The longest prefix of `data` whose publish request with `attributes` is at most
    MAX_PUBLISH_REQUEST_BYTES (all of it when it fits)."""
    if publish_request_bytes(len(data), attributes) <= MAX_PUBLISH_REQUEST_BYTES:
        return data
    room = MAX_PUBLISH_REQUEST_BYTES - publish_request_bytes(0, attributes)
    return data[: max(0, room // 4 * 3)]

"""Structured logs: one JSON object per line, in the shape Cloud Logging parses.

`severity` and `message` are Cloud Logging's special fields; `logging.googleapis.com/trace`
ties a line to the request's trace. Everything else lands in jsonPayload. Lines below ERROR go
to stdout, ERROR and above to stderr; Cloud Logging reads both.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

TRACE_FIELD = "logging.googleapis.com/trace"
_ERROR_SEVERITIES = frozenset({"ERROR", "CRITICAL", "ALERT", "EMERGENCY"})
_lock = threading.Lock()


def format_line(severity: str, message: str, fields: dict[str, Any]) -> str:
    entry: dict[str, Any] = {"severity": severity, "message": message}
    for key, value in fields.items():
        if value is not None and key not in entry:
            entry[key] = value
    # ensure_ascii keeps any lone surrogate from a hostile payload printable.
    return json.dumps(entry, default=str, ensure_ascii=True, separators=(",", ":"))


def log(severity: str, message: str, **fields: Any) -> None:
    line = format_line(severity, message, fields) + "\n"
    stream = sys.stderr if severity in _ERROR_SEVERITIES else sys.stdout
    with _lock:
        stream.write(line)
        stream.flush()


def trace_field(project: str, header: str | None) -> str | None:
    """`X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=1` -> projects/<p>/traces/TRACE_ID."""
    if not header:
        return None
    trace_id = header.split("/", 1)[0].strip()
    if not trace_id or len(trace_id) > 64 or not trace_id.isalnum() or not trace_id.isascii():
        return None
    return f"projects/{project}/traces/{trace_id}"

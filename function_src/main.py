"""Cloud Run function (gen2) entry point `handler`: Pub/Sub push -> Vertex AI PipelineJob ->
follow-up event on the results topic. Contract and failure semantics: docs/handler.md.

Import stays light for cold starts: stdlib only here; `requests` and `google.auth` load on the
first request that needs them, and Flask is the Functions Framework's, never imported by us.
The configuration is read and validated at import, so a bad deployment fails to start with one
log line naming the variable instead of failing every message.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from workflow_handler import logs
from workflow_handler.app import Reply, WorkflowHandler
from workflow_handler.google_apis import GoogleApis
from workflow_handler.settings import ConfigError, load_settings

if TYPE_CHECKING:
    import flask

_JSON = {"Content-Type": "application/json"}


def _load() -> WorkflowHandler:
    try:
        settings = load_settings(os.environ)
    except ConfigError as exc:
        logs.log(
            "CRITICAL",
            str(exc),
            component="workflow-handler",
            variable=exc.variable,
            value=exc.value if exc.value is None else exc.value[:2000],
            allowed=exc.allowed,
        )
        raise SystemExit(1) from None
    return WorkflowHandler(settings, GoogleApis(settings))


_HANDLER = _load()


def handler(request: flask.Request) -> tuple[str, int, dict[str, str]]:
    """The HTTP entry point (Functions Framework signature type `http`)."""
    try:
        body = request.get_data()
    except Exception as exc:  # e.g. the client went away mid-body
        logs.log(
            "WARNING",
            f"could not read the request body: {type(exc).__name__}",
            workflow=_HANDLER.settings.workflow,
        )
        reply = Reply(400, {"outcome": "unreadable_body"})
    else:
        trace = request.headers.get("X-Cloud-Trace-Context")
        headers = {"X-Cloud-Trace-Context": trace} if trace else {}
        reply = _HANDLER.handle(request.method, body, headers)
    return json.dumps(reply.body), reply.status, _JSON

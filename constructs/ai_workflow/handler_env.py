"""The environment variables the handler reads (docs/handler.md, "Configuration").

One function builds them for both uses: the workflow construct passes Terraform references,
and the app's `literal_handler_environment` (`make run-function ENV=<env>`) passes the
literal names those references resolve to.
"""

from __future__ import annotations

import json

from .workflow_config import WorkflowConfig


def routes_json(workflow: WorkflowConfig) -> str:
    """The ROUTES value: event type -> pipeline template, parameters, result type."""
    routes = {
        event_type: {
            "template_uri": route.template_uri,
            "parameters": route.parameters,
            "result_event_type": route.result_event_type,
        }
        for event_type, route in sorted(workflow.routes.items())
    }
    return json.dumps(routes, sort_keys=True, separators=(",", ":"))


def outbound_timeout_seconds(ack_deadline_seconds: int) -> int:
    """Per-call timeout of the handler's Google API calls: a request makes at most three
    (create or get the job, publish), and all three must fit in the ack deadline, or
    Pub/Sub redelivers a message that succeeded. 20 s -> 6 s; capped at 10 s."""
    return max(1, min(10, (ack_deadline_seconds - 2) // 3))


def handler_environment(
    workflow: WorkflowConfig,
    *,
    project_id: str,
    region: str,
    results_topic: str,
    dead_letter_topic: str,
    pipeline_root: str,
    pipeline_service_account: str,
) -> dict[str, str]:
    return {
        "WORKFLOW_NAME": workflow.name,
        "GCP_PROJECT": project_id,
        "VERTEX_LOCATION": region,
        "RESULTS_TOPIC": results_topic,
        "DEAD_LETTER_TOPIC": dead_letter_topic,
        "PIPELINE_ROOT": pipeline_root,
        "PIPELINE_SERVICE_ACCOUNT": pipeline_service_account,
        "ROUTES": routes_json(workflow),
        "MAX_EVENT_AGE_SECONDS": str(workflow.max_event_age_seconds),
        "OUTBOUND_TIMEOUT_SECONDS": str(outbound_timeout_seconds(workflow.ack_deadline_seconds)),
    }

"""The environment variables the handler reads (docs/handler.md, "Configuration").

One function builds them for both uses: the workflow construct passes Terraform references,
and the app's `literal_handler_environment` (`make run-function ENV=<env>`) passes the
literal names those references resolve to. The variables' names, the ROUTES encoding and the
timeout formula are the handler's own (function_src/workflow_handler/contract.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from workflow_handler import contract

from .workflow_config import WorkflowConfig


def routes_json(workflow: WorkflowConfig) -> str:
    """The ROUTES value: event type -> pipeline template, parameters, what it publishes."""
    return contract.routes_json(
        {
            event_type: contract.route(
                route.template_uri,
                route.parameters,
                route.on_success,
                route.on_failure,
                route.on_start,
            )
            for event_type, route in workflow.routes.items()
        }
    )


def handler_environment(
    workflow: WorkflowConfig,
    *,
    project_id: str,
    region: str,
    results_topic: str,
    dead_letter_topic: str,
    pipeline_root: str,
    pipeline_service_account: str,
    ignored_event_types: Iterable[str] = (),
    pipeline_kms_key: str | None = None,
) -> dict[str, str]:
    """`ignored_event_types`: types that arrive on the trigger topic without a route here (the
    upstream workflow's failure and start events), acknowledged without a job.
    `pipeline_kms_key`: the CMEK key of the PipelineJobs; None: the variable is not set."""
    environment = {
        contract.ENV_WORKFLOW_NAME: workflow.name,
        contract.ENV_GCP_PROJECT: project_id,
        contract.ENV_VERTEX_LOCATION: region,
        contract.ENV_RESULTS_TOPIC: results_topic,
        contract.ENV_DEAD_LETTER_TOPIC: dead_letter_topic,
        contract.ENV_PIPELINE_ROOT: pipeline_root,
        contract.ENV_PIPELINE_SERVICE_ACCOUNT: pipeline_service_account,
        contract.ENV_ROUTES: routes_json(workflow),
        contract.ENV_IGNORED_EVENT_TYPES: contract.ignored_event_types_json(ignored_event_types),
        contract.ENV_MAX_EVENT_AGE_SECONDS: str(workflow.max_event_age_seconds),
        contract.ENV_OUTBOUND_TIMEOUT_SECONDS: str(
            contract.outbound_timeout_seconds(workflow.ack_deadline_seconds)
        ),
    }
    if pipeline_kms_key:
        environment[contract.ENV_PIPELINE_KMS_KEY] = pipeline_kms_key
    return environment

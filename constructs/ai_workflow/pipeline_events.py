"""Pipeline job outcomes as events: Cloud Logging -> a topic -> the workflow's handler.

Vertex AI Pipelines writes every PipelineJob state change to Cloud Logging (log
`aiplatform.googleapis.com/pipeline_job_events`, resource `aiplatform.googleapis.com/PipelineJob`).
A `PipelineEvents` routes this workflow's terminal ones there:

    google_logging_project_sink <wf>-pipeline-events   filter: this project's log, this region,
        | unique writer identity                        this workflow's job ids, terminal states
        v  (publisher on this topic only)
    [<wf>-pipeline-events topic]
        | push subscription <wf>-pipeline-events-push: OIDC with the workflow's push identity,
        v retry, dead-letter to the workflow's dead-letter queue
    [<wf>-handler]  GETs the job, publishes its on_success / on_failure event

One sink per workflow, not one per stack: a log sink publishes its entries with no attribute
but a timestamp, so one shared topic could not be split per workflow by subscription filters
and every handler would receive (and have to discard) every other workflow's jobs. Cloud
Logging allows 200 sinks per project (a quota; _Default and _Required count), so a project
holds about 190 workflows before the quota needs raising. The log entry is only a signal: the
handler reads the job itself for its state, labels and outputs (docs/handler.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from constructs import Construct

from workflow_handler import contract

from . import rules
from .compat import provider
from .dead_letter import DeadLetterQueue
from .errors import ConfigError
from .naming import WorkflowNames
from .push_subscription import WEEK_SECONDS, PushSubscription, PushSubscriptionProps
from .topic import EventTopic, EventTopicProps

# cdktf or CDK Terrain, whichever ai_workflow.compat chose (type checkers see cdktf).
if TYPE_CHECKING:
    from cdktf import ITerraformDependable
    from cdktf_cdktf_provider_google.logging_project_sink import LoggingProjectSink
else:
    LoggingProjectSink = provider("logging_project_sink").LoggingProjectSink


def pipeline_events_filter(project_id: str, region: str, workflow: str) -> str:
    """The sink's Logging query: the project's pipeline job events, of `workflow`'s jobs in
    `region` (job ids are the contract's pattern, which no other workflow's ids match), in a
    terminal state."""
    states = " OR ".join(f'"{state}"' for state in contract.TERMINAL_STATES)
    return "\nAND ".join(
        [
            f'logName="{contract.pipeline_job_events_log(project_id)}"',
            f'resource.type="{contract.PIPELINE_JOB_RESOURCE_TYPE}"',
            f'resource.labels.location="{region}"',
            f'resource.labels.pipeline_job_id=~"{contract.pipeline_job_id_pattern(workflow)}"',
            f"jsonPayload.state=({states})",
        ]
    )


@dataclass(frozen=True, kw_only=True)
class PipelineEventsProps:
    name: str
    """Workflow name: names the topic and the sink (`<name>-pipeline-events`), the
    subscription (`<name>-pipeline-events-push`) and addresses; its jobs are `<name>-...`."""
    project_id: str
    """Project whose pipeline job events are routed (the sink's and the topic's)."""
    region: str
    """Region the workflow's jobs run in."""
    push: PushSubscription
    """The workflow's trigger push subscription: events go to its handler, with its push
    identity."""
    dead_letter: DeadLetterQueue
    """Where events the handler cannot take are dead-lettered (the workflow's queue)."""
    pubsub_service_agent: str
    """IAM member of the project's Pub/Sub service agent (subscriber on the new
    subscription, to forward dead letters)."""
    ack_deadline_seconds: int = 20
    """10..600. Default 20 s."""
    min_retry_backoff_seconds: int = 10
    """Exponential backoff lower bound, 0..600. Default 10 s."""
    max_retry_backoff_seconds: int = 600
    """Exponential backoff upper bound, 0..600. Default 600 s."""
    max_delivery_attempts: int = 5
    """Deliveries before an event is dead-lettered, 5..100. Default 5."""
    message_retention_seconds: int = WEEK_SECONDS
    """Retention on the topic, 600..2678400 (the subscription keeps at most 7 days).
    Default 7 days."""
    labels: dict[str, str] = field(default_factory=dict)
    kms_key_name: str | None = None
    """CMEK key for the topic. Default: Google-managed encryption."""
    depends_on: Sequence[ITerraformDependable] = ()
    """What the topic and the sink must wait for (enabled APIs, the KMS grant). Default:
    nothing."""


def pipeline_events_problems(props: PipelineEventsProps) -> list[str]:
    return rules.matches(
        "name", props.name, rules.WORKFLOW_NAME, "2..24 lowercase letters, digits and hyphens"
    )


class PipelineEvents(Construct):
    """Log sink -> pipeline-events topic -> push subscription to the workflow's handler."""

    def __init__(self, scope: Construct, id: str, props: PipelineEventsProps):
        super().__init__(scope, id)
        problems = pipeline_events_problems(props)
        if problems:
            raise ConfigError(problems)
        names = WorkflowNames(props.name)
        self.topic = EventTopic(
            self,
            names.logical_id("pipeline_events_topic"),
            EventTopicProps(
                name=names.pipeline_events_topic,
                message_retention_seconds=props.message_retention_seconds,
                labels=props.labels,
                kms_key_name=props.kms_key_name,
                depends_on=props.depends_on,
            ),
        )
        self.sink = LoggingProjectSink(
            self,
            "sink",
            name=names.pipeline_events_sink,
            project=props.project_id,
            destination=f"pubsub.googleapis.com/{self.topic.id}",
            filter=pipeline_events_filter(props.project_id, props.region, props.name),
            unique_writer_identity=True,
            description=(
                f"Terminal states of workflow {props.name}'s Vertex AI pipeline jobs, "
                "for its handler"
            ),
            depends_on=list(props.depends_on) or None,
        )
        self.sink.override_logical_id(names.logical_id("pipeline_events_sink"))
        # The sink's own identity may publish to this topic and nothing else.
        self.sink_publisher = self.topic.grant_publish(self.writer_identity, "sink_publisher")
        self.push = PushSubscription(
            self,
            "push",
            PushSubscriptionProps(
                name=props.name,
                topic=self.topic,
                handler=props.push.handler,
                pubsub_service_agent=props.pubsub_service_agent,
                dead_letter=props.dead_letter,
                ack_deadline_seconds=props.ack_deadline_seconds,
                min_retry_backoff_seconds=props.min_retry_backoff_seconds,
                max_retry_backoff_seconds=props.max_retry_backoff_seconds,
                max_delivery_attempts=props.max_delivery_attempts,
                message_retention_seconds=props.message_retention_seconds,
                labels=props.labels,
                shares_identity_with=props.push,
                subscription_name=names.pipeline_events_subscription,
                address_prefix=names.logical_id("pipeline_events"),
            ),
        )

    @cached_property
    def writer_identity(self) -> str:
        """The sink's unique writer identity (`serviceAccount:...`), known after apply."""
        return self.sink.writer_identity

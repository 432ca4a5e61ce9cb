"""One AI workflow: trigger -> push subscription -> handler -> Vertex AI -> outcome -> results.

A workflow either owns a trigger topic or, when it chains, uses another workflow's results
topic as its trigger. Its jobs' outcomes come back to the handler through its pipeline
events (pipeline_events.py), and the handler publishes them to the results topic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from constructs import Construct

from . import rules
from .alerts import WorkflowAlerts, WorkflowAlertsProps
from .bucket import HardenedBucket
from .compat import cdk, provider
from .dead_letter import DeadLetterQueue, DeadLetterQueueProps
from .errors import ConfigError
from .handler_env import handler_environment
from .handler_function import HandlerFunction, HandlerFunctionProps, service_account
from .iam import project_role
from .naming import WorkflowNames, member_id
from .pipeline_events import PipelineEvents, PipelineEventsProps
from .push_subscription import PushSubscription, PushSubscriptionProps
from .topic import EventTopic, EventTopicProps
from .workflow_config import WorkflowConfig, workflow_problems

# cdktf or CDK Terrain, whichever ai_workflow.compat chose (type checkers see cdktf).
if TYPE_CHECKING:
    from cdktf import ITerraformDependable, TerraformOutput
    from cdktf_cdktf_provider_google.service_account_iam_member import ServiceAccountIamMember
else:
    ITerraformDependable = cdk.ITerraformDependable
    TerraformOutput = cdk.TerraformOutput
    ServiceAccountIamMember = provider("service_account_iam_member").ServiceAccountIamMember


@dataclass(frozen=True, kw_only=True)
class AiWorkflowProps:
    """One workflow's settings plus the shared resources of the stack it lives in."""

    workflow: WorkflowConfig
    """Name, routes, secrets and tunables (validated here; see workflow_config)."""
    project_id: str
    region: str
    """Region of the function and of the Vertex AI pipeline runs."""
    pubsub_service_agent: str
    """IAM member of the project's Pub/Sub service agent (a token until apply)."""
    source_bucket: HardenedBucket
    """Bucket holding the handler zip."""
    source_object_name: str
    docker_repository_id: str
    """Artifact Registry repository the build identity pushes function images to."""
    pipeline_root_bucket: HardenedBucket
    """Bucket under which pipeline runs write artifacts (`gs://<bucket>/<workflow>`)."""
    labels: dict[str, str] = field(default_factory=dict)
    """Labels on every resource; the workflow's own labels and `workflow` are added."""
    kms_key_name: str | None = None
    """CMEK key in `region` for the workflow's topics, its function and its Vertex AI jobs
    (the handler's PIPELINE_KMS_KEY). The agents' grants on it go in `topic_dependencies` and
    `function_dependencies`. Default: Google-managed encryption."""
    trigger_topic: EventTopic | None = None
    """An existing topic that triggers this workflow (another workflow's results topic, to
    chain). Default: the workflow gets a trigger topic of its own."""
    ignored_event_types: Sequence[str] = ()
    """Event types that arrive on the trigger topic without a route here (the upstream
    workflow's failure and start events), which the handler acknowledges without a job.
    Default: none: the handler dead-letters every type it has no route for."""
    topic_dependencies: Sequence[ITerraformDependable] = ()
    """What topics must wait for (enabled APIs, the KMS grant). Default: nothing."""
    function_dependencies: Sequence[ITerraformDependable] = ()
    """What the function must wait for (enabled APIs, the KMS grants). Default: nothing."""
    notification_channels: Sequence[str] = ()
    """Cloud Monitoring channels (`projects/<p>/notificationChannels/<id>`) the workflow's
    alerts notify. Default: none (incidents show in the console only)."""
    dead_letter_replay_command: str | None = None
    """How an operator replays this workflow's dead letters, quoted in the dead-letter
    alert's runbook. Default: none."""
    alert_dependencies: Sequence[ITerraformDependable] = ()
    """What the alert policies must wait for (the Monitoring API). Default: nothing."""


class AiWorkflow(Construct):
    def __init__(self, scope: Construct, id: str, props: AiWorkflowProps):
        super().__init__(scope, id)
        platform, config = props, props.workflow
        problems = workflow_problems(f"workflows.{config.name}.", config)
        if platform.kms_key_name is not None:
            problems += rules.kms_key("kms_key_name", platform.kms_key_name, platform.region)
        for i, event_type in enumerate(platform.ignored_event_types):
            at = f"workflows.{config.name}.ignored_event_types[{i}]"
            problems += rules.matches(at, event_type, rules.EVENT_TYPE, "an event type")
            if event_type in config.routes:
                problems.append(f"{at}: got {event_type!r}, allowed a type without a route")
        problems += rules.notification_channels(
            f"workflows.{config.name}.notification_channels", platform.notification_channels
        )
        if problems:
            raise ConfigError(problems)
        names = self.names = WorkflowNames(config.name)
        labels = {**platform.labels, **config.labels, "workflow": config.name}

        def topic(kind: str, name: str) -> EventTopic:
            return EventTopic(
                self,
                names.logical_id(kind),
                EventTopicProps(
                    name=name,
                    message_retention_seconds=config.message_retention_seconds,
                    labels=labels,
                    kms_key_name=platform.kms_key_name,
                    depends_on=platform.topic_dependencies,
                ),
            )

        self.trigger = platform.trigger_topic or topic("trigger_topic", names.trigger_topic)
        for member in config.publishers:
            # Keyed by the member: reordering the list leaves every grant in place.
            self.trigger.grant_publish(member, f"{config.name}_publisher_{member_id(member)}")
        self.results = topic("results_topic", names.results_topic)
        self.dead_letter = DeadLetterQueue(
            self,
            "dead_letter",
            DeadLetterQueueProps(
                topic_name=names.dead_letter_topic,
                subscription_name=names.dead_letter_subscription,
                pubsub_service_agent=platform.pubsub_service_agent,
                message_retention_seconds=config.message_retention_seconds,
                subscription_retention_seconds=config.dead_letter_retention_seconds,
                labels=labels,
                kms_key_name=platform.kms_key_name,
                depends_on=platform.topic_dependencies,
                address_prefix=config.name,
            ),
        )

        self.pipeline_account = service_account(
            self,
            names.logical_id("pipeline_sa"),
            names.pipeline_account_id,
            f"Identity the {config.name} Vertex AI pipeline runs execute as",
        )
        pipeline_root = f"gs://{platform.pipeline_root_bucket.name}/{config.name}"
        self.handler = HandlerFunction(
            self,
            "handler",
            HandlerFunctionProps(
                name=config.name,
                project_id=platform.project_id,
                region=platform.region,
                source_bucket=platform.source_bucket,
                source_object_name=platform.source_object_name,
                docker_repository_id=platform.docker_repository_id,
                description=config.description,
                settings=config,
                labels=labels,
                secret_env=config.secret_env,
                kms_key_name=platform.kms_key_name,
                environment=handler_environment(
                    config,
                    project_id=platform.project_id,
                    region=platform.region,
                    results_topic=self.results.id,
                    dead_letter_topic=self.dead_letter.topic.id,
                    pipeline_root=pipeline_root,
                    pipeline_service_account=self.pipeline_account.email,
                    ignored_event_types=platform.ignored_event_types,
                    pipeline_kms_key=platform.kms_key_name,
                ),
                depends_on=platform.function_dependencies,
            ),
        )
        runtime = self.handler.runtime_account.member
        # Exactly what the handler calls: publish follow-ups and poison messages...
        self.results.grant_publish(runtime, "runtime_publisher")
        self.dead_letter.topic.grant_publish(runtime, "runtime_publisher")
        # ...and create/get PipelineJobs (no resource-level IAM exists for them), which
        # run as the pipeline SA, so the handler may act as that SA and no other.
        project_role(
            self,
            "runtime_vertex_user",
            prefix=config.name,
            project=platform.project_id,
            role="roles/aiplatform.user",
            member=runtime,
        )
        act_as = ServiceAccountIamMember(
            self,
            "runtime_acts_as_pipeline",
            service_account_id=self.pipeline_account.name,
            role="roles/iam.serviceAccountUser",
            member=runtime,
        )
        act_as.override_logical_id(names.logical_id("runtime_acts_as_pipeline_sa"))
        # The pipeline runs: Vertex AI jobs and their artifacts under the pipeline root.
        pipeline_member = self.pipeline_account.member
        project_role(
            self,
            "pipeline_vertex_user",
            prefix=config.name,
            project=platform.project_id,
            role="roles/aiplatform.user",
            member=pipeline_member,
        )
        platform.pipeline_root_bucket.grant(
            pipeline_member, "roles/storage.objectUser", names.logical_id("pipeline_artifacts")
        )

        self.push = PushSubscription(
            self,
            "push",
            PushSubscriptionProps(
                name=config.name,
                topic=self.trigger,
                handler=self.handler,
                pubsub_service_agent=platform.pubsub_service_agent,
                dead_letter=self.dead_letter,
                ack_deadline_seconds=config.ack_deadline_seconds,
                min_retry_backoff_seconds=config.min_retry_backoff_seconds,
                max_retry_backoff_seconds=config.max_retry_backoff_seconds,
                max_delivery_attempts=config.max_delivery_attempts,
                message_retention_seconds=config.message_retention_seconds,
                subscription_filter=config.subscription_filter,
                labels=labels,
            ),
        )
        # The jobs' outcomes: a log sink routes their terminal states back to the handler.
        self.pipeline_events = PipelineEvents(
            self,
            "pipeline_events",
            PipelineEventsProps(
                name=config.name,
                project_id=platform.project_id,
                region=platform.region,
                push=self.push,
                dead_letter=self.dead_letter,
                pubsub_service_agent=platform.pubsub_service_agent,
                ack_deadline_seconds=config.ack_deadline_seconds,
                min_retry_backoff_seconds=config.min_retry_backoff_seconds,
                max_retry_backoff_seconds=config.max_retry_backoff_seconds,
                max_delivery_attempts=config.max_delivery_attempts,
                message_retention_seconds=config.message_retention_seconds,
                labels=labels,
                kms_key_name=platform.kms_key_name,
                depends_on=platform.topic_dependencies,
            ),
        )
        self.alerts = (
            WorkflowAlerts(
                self,
                "alerts",
                WorkflowAlertsProps(
                    name=config.name,
                    project_id=platform.project_id,
                    push_subscriptions=(
                        names.push_subscription,
                        names.pipeline_events_subscription,
                    ),
                    dead_letter_subscription=names.dead_letter_subscription,
                    oldest_unacked_age_seconds=config.oldest_unacked_age_alert_seconds,
                    push_error_ratio=config.alert_push_error_ratio,
                    notification_channels=platform.notification_channels,
                    replay_command=platform.dead_letter_replay_command,
                    labels=labels,
                    depends_on=platform.alert_dependencies,
                ),
            )
            if config.alerts
            else None
        )
        self._outputs(config.name)

    def _outputs(self, name: str) -> None:
        values = {
            "function_uri": self.handler.uri,
            "trigger_topic": self.trigger.id,
            "results_topic": self.results.id,
            "dead_letter_topic": self.dead_letter.topic.id,
            "push_subscription": self.push.subscription.id,
            "dead_letter_subscription": self.dead_letter.subscription.id,
            "pipeline_events_topic": self.pipeline_events.topic.id,
            "pipeline_events_subscription": self.pipeline_events.push.subscription.id,
            "runtime_service_account": self.handler.runtime_account.email,
            "push_service_account": self.push.push_account.email,
            "build_service_account": self.handler.build_account.email,
            "pipeline_service_account": self.pipeline_account.email,
        }
        for key, value in values.items():
            output = TerraformOutput(self, f"out_{key}", value=value)
            output.override_logical_id(self.names.logical_id(key))

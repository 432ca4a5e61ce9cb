"""One AI workflow: trigger -> push subscription -> handler -> Vertex AI -> results.

A workflow either owns a trigger topic or, when it chains, uses another workflow's results
topic as its trigger.
"""

from __future__ import annotations

from cdktf import TerraformOutput
from cdktf_cdktf_provider_google.service_account_iam_member import ServiceAccountIamMember
from constructs import Construct

from .dead_letter import DeadLetterQueue, DeadLetterQueueProps
from .errors import ConfigError
from .handler_env import handler_environment
from .handler_function import HandlerFunction, HandlerFunctionProps, service_account
from .iam import project_role
from .naming import WorkflowNames, member_id
from .platform import SharedPlatform
from .push_subscription import PushSubscription, PushSubscriptionProps
from .topic import EventTopic, EventTopicProps
from .workflow_config import WorkflowConfig, workflow_problems


class AiWorkflow(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        props: WorkflowConfig,
        platform: SharedPlatform,
        *,
        trigger: EventTopic | None = None,
    ):
        super().__init__(scope, id)
        problems = workflow_problems(f"workflows.{props.name}.", props)
        if problems:
            raise ConfigError(problems)
        names = self.names = WorkflowNames(props.name)
        labels = {**platform.labels, **props.labels, "workflow": props.name}

        def topic(kind: str, name: str) -> EventTopic:
            return EventTopic(
                self,
                names.logical_id(kind),
                EventTopicProps(
                    name=name,
                    message_retention_seconds=props.message_retention_seconds,
                    labels=labels,
                    kms_key_name=platform.kms_key_name,
                    depends_on=platform.topic_dependencies,
                ),
            )

        self.trigger = trigger or topic("trigger_topic", names.trigger_topic)
        for member in props.publishers:
            # Keyed by the member: reordering the list leaves every grant in place.
            self.trigger.grant_publish(member, f"{props.name}_publisher_{member_id(member)}")
        self.results = topic("results_topic", names.results_topic)
        self.dead_letter = DeadLetterQueue(
            self,
            "dead_letter",
            DeadLetterQueueProps(
                names=names,
                message_retention_seconds=props.message_retention_seconds,
                subscription_retention_seconds=props.dead_letter_retention_seconds,
                labels=labels,
            ),
            platform,
        )

        self.pipeline_account = service_account(
            self,
            names.logical_id("pipeline_sa"),
            names.pipeline_account_id,
            f"Identity the {props.name} Vertex AI pipeline runs execute as",
        )
        pipeline_root = f"gs://{platform.pipeline_root_bucket.name}/{props.name}"
        self.handler = HandlerFunction(
            self,
            "handler",
            HandlerFunctionProps(
                names=names,
                description=props.description,
                settings=props,
                labels=labels,
                secret_env=props.secret_env,
                environment=handler_environment(
                    props,
                    project_id=platform.project_id,
                    region=platform.region,
                    results_topic=self.results.id,
                    dead_letter_topic=self.dead_letter.topic.id,
                    pipeline_root=pipeline_root,
                    pipeline_service_account=self.pipeline_account.email,
                ),
            ),
            platform,
        )
        runtime = self.handler.runtime_account.member
        # Exactly what the handler calls: publish follow-ups and poison messages...
        self.results.grant_publish(runtime, "runtime_publisher")
        self.dead_letter.topic.grant_publish(runtime, "runtime_publisher")
        # ...and create/get PipelineJobs (no resource-level IAM exists for them), which
        # run as the pipeline SA, so the handler may act as that SA and no other.
        project_role(
            self,
            names,
            "runtime_vertex_user",
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
            names,
            "pipeline_vertex_user",
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
                names=names,
                settings=props,
                subscription_filter=props.subscription_filter,
                labels=labels,
            ),
            trigger=self.trigger,
            handler=self.handler,
            dead_letter=self.dead_letter,
            platform=platform,
        )
        self._outputs(props.name)

    def _outputs(self, name: str) -> None:
        values = {
            "function_uri": self.handler.uri,
            "trigger_topic": self.trigger.id,
            "results_topic": self.results.id,
            "dead_letter_topic": self.dead_letter.topic.id,
            "push_subscription": self.push.subscription.id,
            "dead_letter_subscription": self.dead_letter.subscription.id,
            "runtime_service_account": self.handler.runtime_account.email,
            "push_service_account": self.push.push_account.email,
            "build_service_account": self.handler.build_account.email,
            "pipeline_service_account": self.pipeline_account.email,
        }
        for key, value in values.items():
            output = TerraformOutput(self, f"out_{key}", value=value)
            output.override_logical_id(self.names.logical_id(key))

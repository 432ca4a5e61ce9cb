"""Dead-lettering, the infrastructure side, in one place.

A `DeadLetterQueue` is a topic for poison messages and a pull subscription that keeps them
for inspection and replay. A subscription that dead-letters into it gets its policy from
`policy()` and the grants Pub/Sub needs from `allow_forwarding_from()`: the Pub/Sub
service agent publishes to the dead-letter topic on the subscription's behalf (granted
here, on the topic) and must be a subscriber on the source subscription (granted there).
The handler's side (what it dead-letters itself, and with which attributes) is
function_src/workflow_handler/app.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from constructs import Construct

from . import rules
from .compat import cdk, provider
from .errors import ConfigError
from .naming import terraform_id
from .topic import EventTopic, EventTopicProps

# cdktf or CDK Terrain, whichever ai_workflow.compat chose (type checkers see cdktf).
if TYPE_CHECKING:
    from cdktf import ITerraformDependable
    from cdktf_cdktf_provider_google.pubsub_subscription import (
        PubsubSubscription,
        PubsubSubscriptionDeadLetterPolicy,
        PubsubSubscriptionExpirationPolicy,
    )
    from cdktf_cdktf_provider_google.pubsub_subscription_iam_member import (
        PubsubSubscriptionIamMember,
    )
else:
    ITerraformDependable = cdk.ITerraformDependable
    _pubsub_subscription = provider("pubsub_subscription")
    PubsubSubscription = _pubsub_subscription.PubsubSubscription
    PubsubSubscriptionDeadLetterPolicy = _pubsub_subscription.PubsubSubscriptionDeadLetterPolicy
    PubsubSubscriptionExpirationPolicy = _pubsub_subscription.PubsubSubscriptionExpirationPolicy
    PubsubSubscriptionIamMember = provider(
        "pubsub_subscription_iam_member"
    ).PubsubSubscriptionIamMember

WEEK_SECONDS = 604_800


@dataclass(frozen=True, kw_only=True)
class DeadLetterQueueProps:
    topic_name: str
    """Name of the dead-letter topic."""
    subscription_name: str
    """Name of the pull subscription that keeps dead letters."""
    pubsub_service_agent: str
    """IAM member of the project's Pub/Sub service agent, which forwards dead letters."""
    message_retention_seconds: int = WEEK_SECONDS
    """Retention on the dead-letter topic, 600..2678400. Default 7 days."""
    subscription_retention_seconds: int = WEEK_SECONDS
    """How long the pull subscription keeps a dead letter, 600..604800. Default 7 days."""
    ack_deadline_seconds: int = 60
    """Ack deadline of the pull subscription (time to inspect or replay one message),
    10..600. Default 60 s."""
    labels: dict[str, str] = field(default_factory=dict)
    kms_key_name: str | None = None
    """CMEK key for the topic. Default: Google-managed encryption."""
    depends_on: Sequence[ITerraformDependable] = ()
    """What the topic must wait for (enabled APIs, the KMS grant). Default: nothing."""
    address_prefix: str | None = None
    """Terraform addresses are `<prefix>_dead_letter_topic` and
    `<prefix>_dead_letter_subscription` (addresses are API: renaming replaces). Default:
    the construct id."""


def dead_letter_queue_problems(props: DeadLetterQueueProps) -> list[str]:
    return (
        rules.pubsub_name("subscription_name", props.subscription_name)
        + rules.integer_in_range(
            "subscription_retention_seconds",
            props.subscription_retention_seconds,
            600,
            WEEK_SECONDS,
        )
        + rules.integer_in_range("ack_deadline_seconds", props.ack_deadline_seconds, 10, 600)
    )


class DeadLetterQueue(Construct):
    """Dead-letter topic + pull subscription; the Pub/Sub service agent may publish to it."""

    def __init__(self, scope: Construct, id: str, props: DeadLetterQueueProps):
        super().__init__(scope, id)
        problems = dead_letter_queue_problems(props)
        if problems:
            raise ConfigError(problems)
        self._agent = props.pubsub_service_agent
        prefix = terraform_id(props.address_prefix or id)
        self.topic = EventTopic(
            self,
            f"{prefix}_dead_letter_topic",
            EventTopicProps(
                name=props.topic_name,
                message_retention_seconds=props.message_retention_seconds,
                labels=props.labels,
                kms_key_name=props.kms_key_name,
                depends_on=props.depends_on,
            ),
        )
        self.agent_publish = self.topic.grant_publish(self._agent, "pubsub_agent_publisher")
        self.subscription = PubsubSubscription(
            self,
            "subscription",
            name=props.subscription_name,
            topic=self.topic.id,
            ack_deadline_seconds=props.ack_deadline_seconds,
            message_retention_duration=f"{props.subscription_retention_seconds}s",
            retain_acked_messages=False,
            expiration_policy=PubsubSubscriptionExpirationPolicy(ttl=""),
            labels=props.labels,
        )
        self.subscription.override_logical_id(f"{prefix}_dead_letter_subscription")

    def policy(self, max_delivery_attempts: int) -> PubsubSubscriptionDeadLetterPolicy:
        """The dead-letter policy of a subscription that forwards here after
        `max_delivery_attempts` (5..100) failed deliveries."""
        problems = rules.integer_in_range("max_delivery_attempts", max_delivery_attempts, 5, 100)
        if problems:
            raise ConfigError(problems)
        return PubsubSubscriptionDeadLetterPolicy(
            dead_letter_topic=self.topic.id, max_delivery_attempts=max_delivery_attempts
        )

    def allow_forwarding_from(
        self, scope: Construct, subscription: PubsubSubscription, logical_id: str
    ) -> PubsubSubscriptionIamMember:
        """The Pub/Sub service agent acknowledges forwarded messages on the source
        `subscription`: subscriber there, created in `scope` (the subscription's owner)."""
        grant = PubsubSubscriptionIamMember(
            scope,
            "agent_subscriber",
            subscription=subscription.name,
            role="roles/pubsub.subscriber",
            member=self._agent,
        )
        grant.override_logical_id(logical_id)
        return grant

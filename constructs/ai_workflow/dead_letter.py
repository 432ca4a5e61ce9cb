"""Dead-lettering: a topic for poison messages and a pull subscription that keeps them.

The Pub/Sub service agent publishes to the dead-letter topic on the subscription's behalf,
so it gets publisher there (and subscriber on the source subscription; see
`PushSubscription`). A message stays on the pull subscription for inspection and replay.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_google.pubsub_subscription import (
    PubsubSubscription,
    PubsubSubscriptionExpirationPolicy,
)
from constructs import Construct

from .naming import WorkflowNames
from .platform import SharedPlatform
from .topic import EventTopic, EventTopicProps


@dataclass(frozen=True, kw_only=True)
class DeadLetterQueueProps:
    names: WorkflowNames
    message_retention_seconds: int
    subscription_retention_seconds: int
    labels: dict[str, str]


class DeadLetterQueue(Construct):
    def __init__(
        self, scope: Construct, id: str, props: DeadLetterQueueProps, platform: SharedPlatform
    ):
        super().__init__(scope, id)
        names = props.names
        self.topic = EventTopic(
            self,
            names.logical_id("dead_letter_topic"),
            EventTopicProps(
                name=names.dead_letter_topic,
                message_retention_seconds=props.message_retention_seconds,
                labels=props.labels,
                kms_key_name=platform.kms_key_name,
                depends_on=platform.topic_dependencies,
            ),
        )
        self.agent_publish = self.topic.grant_publish(
            platform.pubsub_service_agent, "pubsub_agent_publisher"
        )
        self.subscription = PubsubSubscription(
            self,
            "subscription",
            name=names.dead_letter_subscription,
            topic=self.topic.id,
            ack_deadline_seconds=60,
            message_retention_duration=f"{props.subscription_retention_seconds}s",
            retain_acked_messages=False,
            expiration_policy=PubsubSubscriptionExpirationPolicy(ttl=""),
            labels=props.labels,
        )
        self.subscription.override_logical_id(names.logical_id("dead_letter_subscription"))

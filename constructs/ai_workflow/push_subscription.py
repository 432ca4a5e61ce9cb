"""The push subscription that feeds the handler: ours, not one a trigger creates.

Owning it lets us set the ack deadline, exponential backoff, a filter and a dead-letter
policy, none of which Terraform can set on an Eventarc-managed subscription.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_google.pubsub_subscription import (
    PubsubSubscription,
    PubsubSubscriptionDeadLetterPolicy,
    PubsubSubscriptionExpirationPolicy,
    PubsubSubscriptionPushConfig,
    PubsubSubscriptionPushConfigOidcToken,
    PubsubSubscriptionRetryPolicy,
)
from cdktf_cdktf_provider_google.pubsub_subscription_iam_member import (
    PubsubSubscriptionIamMember,
)
from cdktf_cdktf_provider_google.service_account_iam_member import ServiceAccountIamMember
from constructs import Construct

from .dead_letter import DeadLetterQueue
from .handler_function import HandlerFunction, service_account
from .naming import WorkflowNames
from .platform import SharedPlatform
from .topic import EventTopic
from .workflow_config import WorkflowSettings


@dataclass(frozen=True, kw_only=True)
class PushSubscriptionProps:
    names: WorkflowNames
    settings: WorkflowSettings
    subscription_filter: str
    labels: dict[str, str]


class PushSubscription(Construct):
    """Push with an OIDC token of a push-only service account, retry and dead-lettering."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        props: PushSubscriptionProps,
        *,
        trigger: EventTopic,
        handler: HandlerFunction,
        dead_letter: DeadLetterQueue,
        platform: SharedPlatform,
    ):
        super().__init__(scope, id)
        names, s = props.names, props.settings
        self.push_account = service_account(
            self,
            names.logical_id("push_sa"),
            names.push_account_id,
            f"Pub/Sub push identity that may invoke the {names.workflow} handler only",
        )
        self.invoker = handler.grant_invoke(self.push_account.member, "push_invoker")
        # The Pub/Sub service agent mints the OIDC tokens of the push SA.
        self.agent_token_creator = ServiceAccountIamMember(
            self,
            "agent_token_creator",
            service_account_id=self.push_account.name,
            role="roles/iam.serviceAccountTokenCreator",
            member=platform.pubsub_service_agent,
        )
        self.agent_token_creator.override_logical_id(names.logical_id("pubsub_agent_token_creator"))
        self.subscription = PubsubSubscription(
            self,
            "subscription",
            name=names.push_subscription,
            topic=trigger.id,
            ack_deadline_seconds=s.ack_deadline_seconds,
            message_retention_duration=f"{min(s.message_retention_seconds, 604_800)}s",
            retain_acked_messages=False,
            filter=props.subscription_filter or None,
            labels=props.labels,
            expiration_policy=PubsubSubscriptionExpirationPolicy(ttl=""),
            retry_policy=PubsubSubscriptionRetryPolicy(
                minimum_backoff=f"{s.min_retry_backoff_seconds}s",
                maximum_backoff=f"{s.max_retry_backoff_seconds}s",
            ),
            dead_letter_policy=PubsubSubscriptionDeadLetterPolicy(
                dead_letter_topic=dead_letter.topic.id,
                max_delivery_attempts=s.max_delivery_attempts,
            ),
            push_config=PubsubSubscriptionPushConfig(
                push_endpoint=handler.uri,
                oidc_token=PubsubSubscriptionPushConfigOidcToken(
                    service_account_email=self.push_account.email, audience=handler.uri
                ),
            ),
            depends_on=[self.invoker, self.agent_token_creator, dead_letter.agent_publish],
        )
        self.subscription.override_logical_id(names.logical_id("push_subscription"))
        # The service agent acknowledges dead-lettered messages on this subscription.
        self.agent_subscriber = PubsubSubscriptionIamMember(
            self,
            "agent_subscriber",
            subscription=self.subscription.name,
            role="roles/pubsub.subscriber",
            member=platform.pubsub_service_agent,
        )
        self.agent_subscriber.override_logical_id(names.logical_id("pubsub_agent_subscriber"))

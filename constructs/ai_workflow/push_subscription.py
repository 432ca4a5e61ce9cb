"""The push subscription that feeds the handler: ours, not one a trigger creates.

Owning it lets us set the ack deadline, exponential backoff, a filter and a dead-letter
policy, none of which Terraform can set on an Eventarc-managed subscription. A second
subscription to the same handler (its pipeline job events) shares the first one's push
identity: one identity per handler, allowed to invoke that handler only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from constructs import Construct

from . import rules
from .compat import provider
from .dead_letter import DeadLetterQueue, DeadLetterQueueProps
from .errors import ConfigError
from .handler_function import HandlerFunction, Identity, service_account
from .naming import WorkflowNames, terraform_id
from .topic import EventTopic

# cdktf or CDK Terrain, whichever ai_workflow.compat chose (type checkers see cdktf).
if TYPE_CHECKING:
    from cdktf_cdktf_provider_google.cloud_run_v2_service_iam_member import (
        CloudRunV2ServiceIamMember,
    )
    from cdktf_cdktf_provider_google.pubsub_subscription import (
        PubsubSubscription,
        PubsubSubscriptionExpirationPolicy,
        PubsubSubscriptionPushConfig,
        PubsubSubscriptionPushConfigOidcToken,
        PubsubSubscriptionRetryPolicy,
    )
    from cdktf_cdktf_provider_google.service_account_iam_member import ServiceAccountIamMember
else:
    _pubsub_subscription = provider("pubsub_subscription")
    PubsubSubscription = _pubsub_subscription.PubsubSubscription
    PubsubSubscriptionExpirationPolicy = _pubsub_subscription.PubsubSubscriptionExpirationPolicy
    PubsubSubscriptionPushConfig = _pubsub_subscription.PubsubSubscriptionPushConfig
    PubsubSubscriptionPushConfigOidcToken = (
        _pubsub_subscription.PubsubSubscriptionPushConfigOidcToken
    )
    PubsubSubscriptionRetryPolicy = _pubsub_subscription.PubsubSubscriptionRetryPolicy
    ServiceAccountIamMember = provider("service_account_iam_member").ServiceAccountIamMember

WEEK_SECONDS = 604_800


@dataclass(frozen=True, kw_only=True)
class PushSubscriptionProps:
    name: str
    """Workflow name: names the subscription (`<name>-push`), its push identity
    (`<name>-push`) and addresses."""
    topic: EventTopic
    """The topic to subscribe to (a workflow's trigger, or another's results topic)."""
    handler: HandlerFunction
    """Where to push; the push identity gets roles/run.invoker on it and nothing else."""
    pubsub_service_agent: str
    """IAM member of the project's Pub/Sub service agent, which mints the OIDC tokens."""
    dead_letter: DeadLetterQueue | None = None
    """An existing dead-letter queue. Give this or `dead_letter_props`, not both."""
    dead_letter_props: DeadLetterQueueProps | None = None
    """Props for a new dead-letter queue, created inside this construct. Default: none
    (then `dead_letter` is required: every push subscription dead-letters)."""
    ack_deadline_seconds: int = 20
    """10..600. Default 20 s."""
    min_retry_backoff_seconds: int = 10
    """Exponential backoff lower bound, 0..600. Default 10 s."""
    max_retry_backoff_seconds: int = 600
    """Exponential backoff upper bound, 0..600. Default 600 s."""
    max_delivery_attempts: int = 5
    """Deliveries before a message is dead-lettered, 5..100. Default 5."""
    message_retention_seconds: int = WEEK_SECONDS
    """Unacked messages are kept this long, at most 7 days (longer values are capped).
    Default 7 days."""
    subscription_filter: str = ""
    """Pub/Sub filter. Default: deliver everything."""
    labels: dict[str, str] = field(default_factory=dict)
    shares_identity_with: PushSubscription | None = None
    """Another push subscription to the same handler whose push identity this one uses (its
    invoker and token-creator grants already exist). Default: a new `<name>-push` identity,
    with roles/run.invoker on `handler` and the Pub/Sub service agent as its token creator."""
    subscription_name: str | None = None
    """Default: `<name>-push`."""
    address_prefix: str | None = None
    """Terraform addresses are `<prefix>_push_subscription` and
    `<prefix>_pubsub_agent_subscriber` (addresses are API: renaming replaces). Default: the
    workflow name (`train_push_subscription`)."""


def push_subscription_problems(props: PushSubscriptionProps) -> list[str]:
    p = rules.matches(
        "name", props.name, rules.WORKFLOW_NAME, "2..24 lowercase letters, digits and hyphens"
    )
    if (props.dead_letter is None) == (props.dead_letter_props is None):
        p.append(
            "dead_letter: give either an existing DeadLetterQueue or dead_letter_props, exactly one"
        )
    p += rules.delivery(
        "",
        props.ack_deadline_seconds,
        props.min_retry_backoff_seconds,
        props.max_retry_backoff_seconds,
        props.max_delivery_attempts,
    )
    if props.subscription_name is not None:
        p += rules.pubsub_name("subscription_name", props.subscription_name)
    shared = props.shares_identity_with
    if shared is not None and shared.handler is not props.handler:
        p.append(
            "shares_identity_with: got a push subscription to another handler, allowed one to "
            "the same handler (a push identity may invoke one handler only)"
        )
    return p


class PushSubscription(Construct):
    """Push with an OIDC token of a push-only service account, retry and dead-lettering."""

    def __init__(self, scope: Construct, id: str, props: PushSubscriptionProps):
        super().__init__(scope, id)
        problems = push_subscription_problems(props)
        if problems:
            raise ConfigError(problems)
        names = WorkflowNames(props.name)
        if props.dead_letter is not None:
            self.dead_letter = props.dead_letter
        else:
            assert props.dead_letter_props is not None  # checked above
            self.dead_letter = DeadLetterQueue(self, "dead_letter", props.dead_letter_props)
        self.handler = props.handler
        self.push_account: Identity
        self.invoker: CloudRunV2ServiceIamMember
        self.agent_token_creator: ServiceAccountIamMember
        shared = props.shares_identity_with
        if shared is not None:
            self.push_account = shared.push_account
            self.invoker = shared.invoker
            self.agent_token_creator = shared.agent_token_creator
        else:
            self.push_account = service_account(
                self,
                names.logical_id("push_sa"),
                names.push_account_id,
                f"Pub/Sub push identity that may invoke the {names.workflow} handler only",
            )
            self.invoker = props.handler.grant_invoke(self.push_account.member, "push_invoker")
            # The Pub/Sub service agent mints the OIDC tokens of the push SA.
            self.agent_token_creator = ServiceAccountIamMember(
                self,
                "agent_token_creator",
                service_account_id=self.push_account.name,
                role="roles/iam.serviceAccountTokenCreator",
                member=props.pubsub_service_agent,
            )
            self.agent_token_creator.override_logical_id(
                names.logical_id("pubsub_agent_token_creator")
            )
        prefix = terraform_id(props.address_prefix or props.name)
        uri = props.handler.uri
        self.subscription = PubsubSubscription(
            self,
            "subscription",
            name=props.subscription_name or names.push_subscription,
            topic=props.topic.id,
            ack_deadline_seconds=props.ack_deadline_seconds,
            message_retention_duration=f"{min(props.message_retention_seconds, WEEK_SECONDS)}s",
            retain_acked_messages=False,
            filter=props.subscription_filter or None,
            labels=props.labels,
            expiration_policy=PubsubSubscriptionExpirationPolicy(ttl=""),
            retry_policy=PubsubSubscriptionRetryPolicy(
                minimum_backoff=f"{props.min_retry_backoff_seconds}s",
                maximum_backoff=f"{props.max_retry_backoff_seconds}s",
            ),
            dead_letter_policy=self.dead_letter.policy(props.max_delivery_attempts),
            push_config=PubsubSubscriptionPushConfig(
                push_endpoint=uri,
                oidc_token=PubsubSubscriptionPushConfigOidcToken(
                    service_account_email=self.push_account.email, audience=uri
                ),
            ),
            depends_on=[self.invoker, self.agent_token_creator, self.dead_letter.agent_publish],
        )
        self.subscription.override_logical_id(f"{prefix}_push_subscription")
        self.agent_subscriber = self.dead_letter.allow_forwarding_from(
            self, self.subscription, f"{prefix}_pubsub_agent_subscriber"
        )

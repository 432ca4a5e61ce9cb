"""A Pub/Sub topic with labels, retention, optional CMEK and resource-level grants."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from constructs import Construct

from . import rules
from .compat import cdk, provider
from .errors import ConfigError
from .naming import member_id, terraform_id

# cdktf or CDK Terrain, whichever ai_workflow.compat chose (type checkers see cdktf).
if TYPE_CHECKING:
    from cdktf import ITerraformDependable
    from cdktf_cdktf_provider_google.pubsub_topic import PubsubTopic
    from cdktf_cdktf_provider_google.pubsub_topic_iam_member import PubsubTopicIamMember
else:
    ITerraformDependable = cdk.ITerraformDependable
    PubsubTopic = provider("pubsub_topic").PubsubTopic
    PubsubTopicIamMember = provider("pubsub_topic_iam_member").PubsubTopicIamMember


@dataclass(frozen=True, kw_only=True)
class EventTopicProps:
    name: str
    message_retention_seconds: int
    labels: dict[str, str] = field(default_factory=dict)
    kms_key_name: str | None = None
    """CMEK key. Default: Google-managed encryption."""
    depends_on: Sequence[ITerraformDependable] = ()
    """E.g. the KMS grant to the Pub/Sub service agent, which must exist first."""


class EventTopic(Construct):
    """One topic; grants go through `grant_publish` so they stay on the topic."""

    def __init__(self, scope: Construct, id: str, props: EventTopicProps):
        super().__init__(scope, id)
        problems = rules.pubsub_name("name", props.name) + rules.integer_in_range(
            "message_retention_seconds", props.message_retention_seconds, 600, 2_678_400
        )
        if problems:
            raise ConfigError(problems)
        self.logical_id = terraform_id(id)
        self.topic = PubsubTopic(
            self,
            "topic",
            name=props.name,
            labels=props.labels,
            message_retention_duration=f"{props.message_retention_seconds}s",
            kms_key_name=props.kms_key_name,
            depends_on=list(props.depends_on) or None,
        )
        self.topic.override_logical_id(self.logical_id)

    @cached_property
    def id(self) -> str:
        """`projects/<p>/topics/<t>` reference, read from the jsii kernel once."""
        return self.topic.id

    @cached_property
    def name(self) -> str:
        return self.topic.name

    def grant_publish(self, member: str, grant_id: str | None = None) -> PubsubTopicIamMember:
        """roles/pubsub.publisher for `member` on this topic only. The grant's address is
        `<topic>_<grant_id>`; default grant id: `publisher_<member>`, so it follows the
        member, never a position in a list."""
        grant_id = grant_id or f"publisher_{member_id(member)}"
        if member in rules.PUBLIC_MEMBERS:
            raise ConfigError([f"{grant_id}: got {member!r}, allowed a named principal"])
        if self.node.try_find_child(grant_id) is not None:
            raise ConfigError([f"{grant_id}: got {member!r}, which already has this grant"])
        grant = PubsubTopicIamMember(
            self, grant_id, topic=self.name, role="roles/pubsub.publisher", member=member
        )
        grant.override_logical_id(f"{self.logical_id}_{terraform_id(grant_id)}")
        return grant

"""A hardened Cloud Storage bucket."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from constructs import Construct

from . import rules
from .compat import cdk, provider
from .errors import ConfigError
from .naming import terraform_id

# cdktf or CDK Terrain, whichever ai_workflow.compat chose (type checkers see cdktf).
if TYPE_CHECKING:
    from cdktf import ITerraformDependable
    from cdktf_cdktf_provider_google.storage_bucket import (
        StorageBucket,
        StorageBucketEncryption,
        StorageBucketLifecycleRule,
        StorageBucketLifecycleRuleAction,
        StorageBucketLifecycleRuleCondition,
        StorageBucketLogging,
        StorageBucketVersioning,
    )
    from cdktf_cdktf_provider_google.storage_bucket_iam_member import StorageBucketIamMember
else:
    ITerraformDependable = cdk.ITerraformDependable
    _storage_bucket = provider("storage_bucket")
    StorageBucket = _storage_bucket.StorageBucket
    StorageBucketEncryption = _storage_bucket.StorageBucketEncryption
    StorageBucketLifecycleRule = _storage_bucket.StorageBucketLifecycleRule
    StorageBucketLifecycleRuleAction = _storage_bucket.StorageBucketLifecycleRuleAction
    StorageBucketLifecycleRuleCondition = _storage_bucket.StorageBucketLifecycleRuleCondition
    StorageBucketLogging = _storage_bucket.StorageBucketLogging
    StorageBucketVersioning = _storage_bucket.StorageBucketVersioning
    StorageBucketIamMember = provider("storage_bucket_iam_member").StorageBucketIamMember


@dataclass(frozen=True, kw_only=True)
class HardenedBucketProps:
    name: str
    """Globally unique bucket name; include the project id."""
    location: str
    labels: dict[str, str] = field(default_factory=dict)
    versioned: bool = True
    """Keep old object versions. Default: on."""
    noncurrent_retention_days: int | None = 30
    """Delete noncurrent versions after this many days. None keeps them."""
    delete_after_days: int | None = None
    """Delete live objects after this many days. Default: never."""
    access_log_bucket: str | None = None
    """Bucket that receives access logs. Default: no access logs."""
    kms_key_name: str | None = None
    """CMEK key of new objects (`encryption.default_kms_key_name`), in the bucket's location;
    the Cloud Storage service agent must be able to use it (put its grant in `depends_on`).
    Default: Google-managed encryption."""
    depends_on: Sequence[ITerraformDependable] = ()
    """E.g. the storage API, which must be enabled first. Default: nothing."""


class HardenedBucket(Construct):
    """Uniform access, public access prevention enforced, versioning and lifecycle rules,
    optional CMEK."""

    def __init__(self, scope: Construct, id: str, props: HardenedBucketProps):
        super().__init__(scope, id)
        problems = rules.bucket_name("name", props.name)
        if problems:
            raise ConfigError(problems)
        lifecycle = []
        if props.noncurrent_retention_days is not None:
            lifecycle.append(
                StorageBucketLifecycleRule(
                    action=StorageBucketLifecycleRuleAction(type="Delete"),
                    condition=StorageBucketLifecycleRuleCondition(
                        days_since_noncurrent_time=props.noncurrent_retention_days,
                        with_state="ARCHIVED",
                    ),
                )
            )
        if props.delete_after_days is not None:
            lifecycle.append(
                StorageBucketLifecycleRule(
                    action=StorageBucketLifecycleRuleAction(type="Delete"),
                    condition=StorageBucketLifecycleRuleCondition(age=props.delete_after_days),
                )
            )
        self.bucket = StorageBucket(
            self,
            "bucket",
            name=props.name,
            location=props.location,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            force_destroy=False,
            versioning=StorageBucketVersioning(enabled=props.versioned),
            lifecycle_rule=lifecycle or None,
            logging=(
                StorageBucketLogging(
                    log_bucket=props.access_log_bucket, log_object_prefix=props.name
                )
                if props.access_log_bucket
                else None
            ),
            encryption=(
                StorageBucketEncryption(default_kms_key_name=props.kms_key_name)
                if props.kms_key_name
                else None
            ),
            labels=props.labels,
            depends_on=list(props.depends_on) or None,
        )
        self.bucket.override_logical_id(terraform_id(id))
        self._id = id

    @cached_property
    def name(self) -> str:
        """The bucket name reference, read from the jsii kernel once."""
        return self.bucket.name

    def grant(self, member: str, role: str, grant_id: str) -> StorageBucketIamMember:
        """Bucket-level IAM member (never project-level storage roles)."""
        grant = StorageBucketIamMember(self, grant_id, bucket=self.name, role=role, member=member)
        grant.override_logical_id(terraform_id(f"{self._id}_{grant_id}"))
        return grant

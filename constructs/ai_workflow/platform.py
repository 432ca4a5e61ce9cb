"""What the stack shares with every workflow in it."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import ITerraformDependable

from .bucket import HardenedBucket


@dataclass(frozen=True, kw_only=True)
class SharedPlatform:
    project_id: str
    region: str
    labels: dict[str, str]
    pubsub_service_agent: str
    """IAM member of the project's Pub/Sub service agent (a token until apply)."""
    source_bucket: HardenedBucket
    source_object_name: str
    docker_repository_id: str
    """Artifact Registry repository the build SA pushes function images to."""
    pipeline_root_bucket: HardenedBucket
    kms_key_name: str | None
    topic_dependencies: tuple[ITerraformDependable, ...]
    """Resources topics must wait for (enabled APIs, the KMS grant)."""
    function_dependencies: tuple[ITerraformDependable, ...]
    """Resources functions must wait for (enabled APIs, build SA grants)."""

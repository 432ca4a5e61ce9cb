"""Customer-managed encryption (CMEK): which Google service agents use the key, each granted
roles/cloudkms.cryptoKeyEncrypterDecrypter on that one key and nothing else.

A CMEK resource is encrypted by its service's agent, not by the deploying identity, so each
agent needs the grant before the resource is created (the resource `depends_on` it). The
agents' addresses follow Google's `service-<project number>@<domain>` pattern; the Cloud
Storage agent's comes from its data source instead, which also creates it if it is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from constructs import Construct

from .compat import cdk, provider

# cdktf or CDK Terrain, whichever ai_workflow.compat chose (type checkers see cdktf).
if TYPE_CHECKING:
    from cdktf import ITerraformDependable
    from cdktf_cdktf_provider_google.kms_crypto_key_iam_member import KmsCryptoKeyIamMember
else:
    ITerraformDependable = cdk.ITerraformDependable
    KmsCryptoKeyIamMember = provider("kms_crypto_key_iam_member").KmsCryptoKeyIamMember

ENCRYPTER_DECRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
SERVICE_AGENT_DOMAINS = {
    "pubsub": "gcp-sa-pubsub",
    "artifact_registry": "gcp-sa-artifactregistry",
    "functions": "gcf-admin-robot",
    "cloud_run": "serverless-robot-prod",
    "vertex_ai": "gcp-sa-aiplatform",
}
"""Service -> the domain of its agent `service-<project number>@<domain>.iam.gserviceaccount.com`
(Cloud Run functions' CMEK page names the functions, Cloud Run, Artifact Registry and Cloud
Storage agents; Pub/Sub's and Vertex AI's CMEK pages their own)."""


def service_agent(project_number: str, service: str) -> str:
    """IAM member of `service`'s agent in the project numbered `project_number`."""
    domain = SERVICE_AGENT_DOMAINS[service]
    return f"serviceAccount:service-{project_number}@{domain}.iam.gserviceaccount.com"


def grant_key_use(
    scope: Construct,
    grant_id: str,
    *,
    crypto_key_id: str,
    member: str,
    depends_on: Sequence[ITerraformDependable] = (),
) -> KmsCryptoKeyIamMember:
    """Encrypter/decrypter for `member` on `crypto_key_id` only, addressed as
    google_kms_crypto_key_iam_member.<grant_id>. `depends_on`: what must exist first, e.g.
    the enabled API that creates the agent."""
    grant = KmsCryptoKeyIamMember(
        scope,
        grant_id,
        crypto_key_id=crypto_key_id,
        role=ENCRYPTER_DECRYPTER,
        member=member,
        depends_on=list(depends_on) or None,
    )
    grant.override_logical_id(grant_id)
    return grant

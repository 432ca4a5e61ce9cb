"""Project-level grants, kept in one place because they are the exception.

Everything else is granted on the resource. Only roles whose resources have no IAM of
their own (Vertex AI PipelineJobs, log writing) are granted on the project.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from constructs import Construct

from .compat import provider
from .naming import terraform_id

# cdktf or CDK Terrain, whichever ai_workflow.compat chose (type checkers see cdktf).
if TYPE_CHECKING:
    from cdktf_cdktf_provider_google.project_iam_member import ProjectIamMember
else:
    ProjectIamMember = provider("project_iam_member").ProjectIamMember


def project_role(
    scope: Construct, grant: str, *, prefix: str, project: str, role: str, member: str
) -> ProjectIamMember:
    """`role` for `member` on `project`, addressed as
    google_project_iam_member.<prefix>_<grant>."""
    resource = ProjectIamMember(scope, grant, project=project, role=role, member=member)
    resource.override_logical_id(terraform_id(f"{prefix}_{grant}"))
    return resource

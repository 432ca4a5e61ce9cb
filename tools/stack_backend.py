"""Where a synthesized stack keeps its state, read from its `cdk.tf.json` (not the settings):
the JSON is what Terraform runs, whatever wrote it.

cdktf's shapes: `terraform.backend.local.path`, `terraform.backend.gcs.{bucket, prefix}`,
`terraform.cloud.{organization, hostname?, workspaces.{name | tags, project?}}`. No backend
at all is Terraform's default, local state in the working directory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_CLOUD_HOSTNAME = "app.terraform.io"


@dataclass(frozen=True)
class CloudSettings:
    """The `cloud` block; empty fields are left to Terraform's TF_CLOUD_* / TF_WORKSPACE."""

    organization: str = ""
    hostname: str = ""
    workspace: str = ""
    tags: tuple[str, ...] = ()
    project: str = ""

    def resolved_hostname(self, environ: Mapping[str, str]) -> str:
        """The block's hostname, else TF_CLOUD_HOSTNAME, else app.terraform.io (as Terraform)."""
        return self.hostname or environ.get("TF_CLOUD_HOSTNAME") or DEFAULT_CLOUD_HOSTNAME

    def resolved_organization(self, environ: Mapping[str, str]) -> str:
        return self.organization or environ.get("TF_CLOUD_ORGANIZATION", "")

    def resolved_workspace(self, environ: Mapping[str, str]) -> str:
        return self.workspace or environ.get("TF_WORKSPACE", "")


@dataclass(frozen=True)
class Backend:
    """`kind`: "local", "gcs", "cloud" or another backend's name; `settings`: its block."""

    kind: str
    settings: dict[str, Any] = field(default_factory=dict)
    cloud: CloudSettings | None = None


def read_backend(stack: Mapping[str, Any]) -> Backend:
    """The backend of a parsed `cdk.tf.json`."""
    terraform = stack.get("terraform") or {}
    cloud = terraform.get("cloud")
    if isinstance(cloud, dict):
        workspaces = cloud.get("workspaces") or {}
        return Backend(
            "cloud",
            cloud,
            CloudSettings(
                organization=str(cloud.get("organization") or ""),
                hostname=str(cloud.get("hostname") or ""),
                workspace=str(workspaces.get("name") or ""),
                tags=tuple(str(tag) for tag in workspaces.get("tags") or ()),
                project=str(workspaces.get("project") or ""),
            ),
        )
    backends = terraform.get("backend") or {}
    if isinstance(backends, dict) and backends:
        kind, settings = next(iter(sorted(backends.items())))
        return Backend(kind, settings if isinstance(settings, dict) else {})
    return Backend("local")

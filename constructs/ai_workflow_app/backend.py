"""Where an environment's Terraform state lives: the `[backend]` table of config/<env>.toml.

    [backend]                           # absent: kind = "local", path = terraform.<env>.tfstate
    kind = "gcs"                        # local | gcs | cloud
    bucket = "acme-ai-prod-tfstate"
    prefix = "prod"                     # default: the environment name

`parse_backend` checks the table (every problem at once, one line each) and returns one of
the three settings classes; `add_backend` writes it into a stack as cdktf's own backend
construct, so the JSON holds exactly what Terraform reads:

- local: `terraform.backend.local.path`, relative to the stack directory;
- gcs:   `terraform.backend.gcs.{bucket, prefix}`;
- cloud: `terraform.cloud.{organization, hostname?, workspaces.{name | tags, project?}}`.

The top-level `state_path` key of earlier versions still works, with a notice: it is the
local backend's `path` now.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ai_workflow import compat, rules

if TYPE_CHECKING:
    from constructs import Construct

KINDS = ("local", "gcs", "cloud")
# Terraform's own prefix handling (leading "/" dropped, trailing "/" added) is not relied on:
# segments of safe characters, separated by single slashes.
GCS_PREFIX = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
# HCP Terraform / Terraform Enterprise names (organization, workspace, tag, project).
TFC_ORGANIZATION = re.compile(r"^[A-Za-z0-9_-]+$")
TFC_WORKSPACE = re.compile(r"^[A-Za-z0-9_-]{1,90}$")
TFC_TAG = re.compile(r"^[A-Za-z0-9:_-]{1,255}$")
TFC_PROJECT = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9 _-]{1,38}[A-Za-z0-9_-]$")
# A DNS name (or IPv4 address), lowercase, with an optional port; no scheme, no path.
HOSTNAME = re.compile(
    r"^(?=[^:]{1,253}(:|$))[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
    r"(:[1-9][0-9]{0,4})?$"
)
# Relative to cdktf.out/stacks/<env>: state lives at the project root, outside the directory
# that every synth replaces, and no absolute path enters the JSON.
PROJECT_ROOT_FROM_STACK = "../../../"


@dataclass(frozen=True, kw_only=True)
class LocalBackendSettings:
    """State in a file at the project root (the default)."""

    path: str
    """Relative to the project root, e.g. terraform.dev.tfstate."""


@dataclass(frozen=True, kw_only=True)
class GcsBackendSettings:
    """State in a Cloud Storage bucket, at `<prefix>/default.tfstate`."""

    bucket: str
    prefix: str


@dataclass(frozen=True, kw_only=True)
class CloudBackendSettings:
    """State and runs in HCP Terraform or Terraform Enterprise: one named workspace, or the
    workspaces carrying all of `workspace_tags`."""

    organization: str
    workspace: str | None = None
    workspace_tags: tuple[str, ...] | None = None
    project: str | None = None
    hostname: str | None = None
    """None: app.terraform.io, Terraform's default (not written)."""


BackendSettings = LocalBackendSettings | GcsBackendSettings | CloudBackendSettings

_KEYS = {
    "local": {"kind", "path"},
    "gcs": {"kind", "bucket", "prefix"},
    "cloud": {"kind", "organization", "workspace", "workspace_tags", "project", "hostname"},
}
_RELATIVE = "a path relative to the project root"


def default_state_path(env_name: str) -> str:
    return f"terraform.{env_name}.tfstate"


def parse_backend(
    env_name: str, data: dict[str, Any], problems: list[str], notices: list[str]
) -> BackendSettings | None:
    """The backend of an environment's settings table `data` (its `[backend]` table, or the
    deprecated `state_path`, or the default). Problems and notices are appended; None when
    there is a problem."""
    count = len(problems)
    if "state_path" in data:
        state_path = data["state_path"]
        problems += _relative_path("state_path", state_path)
        if "backend" in data:
            problems.append(
                f"state_path: got {state_path!r} beside [backend], allowed only [backend] "
                "(state_path is the local backend's path now)"
            )
        elif len(problems) == count:
            notices.append(
                f'state_path: moved to [backend] as path (write [backend] kind = "local", '
                f"path = {_toml_string(state_path)})"
            )
            return LocalBackendSettings(path=state_path)
    if "backend" not in data:
        return (
            None
            if len(problems) > count
            else LocalBackendSettings(path=default_state_path(env_name))
        )
    table = data["backend"]
    if not isinstance(table, dict):
        problems.append(f"backend: got {table!r}, allowed a table with kind = local, gcs or cloud")
        return None
    kind = table.get("kind")
    if kind is None:
        problems.append("backend.kind: missing, allowed local, gcs or cloud")
        return None
    if kind not in KINDS:
        problems.append(f"backend.kind: got {kind!r}, allowed local, gcs or cloud")
        return None
    problems += rules.unknown_keys("backend.", table, _KEYS[kind])
    settings = _PARSERS[kind](env_name, table, problems)
    return None if len(problems) > count else settings


def _local(env_name: str, table: dict[str, Any], problems: list[str]) -> LocalBackendSettings:
    path = table.get("path", default_state_path(env_name))
    problems += _relative_path("backend.path", path)
    return LocalBackendSettings(path=path)


def _gcs(env_name: str, table: dict[str, Any], problems: list[str]) -> GcsBackendSettings:
    bucket: Any = table.get("bucket")
    if bucket is None:
        problems.append("backend.bucket: missing, required for kind = gcs")
    else:
        problems += rules.bucket_name("backend.bucket", bucket)
    prefix = table.get("prefix", env_name)
    problems += rules.matches(
        "backend.prefix",
        prefix,
        GCS_PREFIX,
        "path segments of letters, digits, _, . and - joined by /, without a leading or trailing /",
    )
    if isinstance(prefix, str) and {".", ".."} & set(prefix.split("/")):
        problems.append(f"backend.prefix: got {prefix!r}, allowed no . or .. segment")
    return GcsBackendSettings(bucket=bucket, prefix=prefix)


def _cloud(env_name: str, table: dict[str, Any], problems: list[str]) -> CloudBackendSettings:
    organization: Any = table.get("organization")
    if organization is None:
        problems.append("backend.organization: missing, required for kind = cloud")
    else:
        problems += rules.matches(
            "backend.organization",
            organization,
            TFC_ORGANIZATION,
            "an organization name: letters, digits, _ and -",
        )
    workspace, tags = table.get("workspace"), table.get("workspace_tags")
    if workspace is None and tags is None:
        problems.append("backend.workspace: missing, required for kind = cloud (or workspace_tags)")
    elif workspace is not None and tags is not None:
        problems.append(
            f"backend.workspace_tags: got {tags!r} beside workspace, allowed exactly one of "
            "workspace or workspace_tags"
        )
    if workspace is not None:
        problems += rules.matches(
            "backend.workspace",
            workspace,
            TFC_WORKSPACE,
            "a workspace name: 1..90 letters, digits, _ and -",
        )
    if tags is not None:
        problems += _tags(tags)
    project = table.get("project")
    if project is not None:
        problems += rules.matches(
            "backend.project",
            project,
            TFC_PROJECT,
            "a project name: 3..40 letters, digits, spaces, _ and -, not starting or ending "
            "with a space",
        )
    hostname = table.get("hostname")
    if hostname is not None:
        problems += rules.matches(
            "backend.hostname",
            hostname,
            HOSTNAME,
            "a lowercase hostname such as tfe.example.com, optionally with :port "
            "(no scheme, no path)",
        )
    return CloudBackendSettings(
        organization=organization,
        workspace=workspace,
        workspace_tags=tuple(tags) if isinstance(tags, list) else None,
        project=project,
        hostname=hostname,
    )


_PARSERS: dict[str, Callable[[str, dict[str, Any], list[str]], BackendSettings]] = {
    "local": _local,
    "gcs": _gcs,
    "cloud": _cloud,
}


def _tags(tags: Any) -> list[str]:
    if not isinstance(tags, list) or not tags:
        return [f"backend.workspace_tags: got {tags!r}, allowed a non-empty list of tags"]
    problems: list[str] = []
    for i, tag in enumerate(tags):
        problems += rules.matches(
            f"backend.workspace_tags[{i}]",
            tag,
            TFC_TAG,
            "a tag: 1..255 letters, digits, :, _ and -",
        )
        if tag in tags[:i]:
            problems.append(
                f"backend.workspace_tags[{i}]: got {tag!r}, allowed each tag once "
                f"(workspace_tags[{tags.index(tag)}] already has it)"
            )
    return problems


def _relative_path(where: str, value: Any) -> list[str]:
    if (
        not isinstance(value, str)
        or not value.strip()
        or value.startswith(("/", "\\", "~"))
        or re.match(r"^[A-Za-z]:", value)
    ):
        return [f"{where}: got {value!r}, allowed {_RELATIVE}"]
    return []


def state_location(backend: BackendSettings) -> str | None:
    """Where `backend` keeps the state, as one comparable line: two environments with the
    same one would overwrite each other's state. None for tagged cloud workspaces: the
    workspace is chosen at run time (`terraform workspace select`)."""
    if isinstance(backend, LocalBackendSettings):
        return f"local path {posixpath.normpath(backend.path)!r}"
    if isinstance(backend, GcsBackendSettings):
        return f"gcs bucket {backend.bucket!r} prefix {backend.prefix!r}"
    if backend.workspace is None:
        return None
    host = backend.hostname or "app.terraform.io"
    return f"cloud workspace {backend.workspace!r} of {backend.organization!r} on {host}"


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def add_backend(stack: Construct, backend: BackendSettings, *, hcl_output: bool) -> None:
    """`backend` as cdktf's backend construct in `stack`. `hcl_output`: the app writes HCL
    (`cdktf synth --hcl`), where cdktf 0.21 and cdktn 0.24 drop a cloud workspace's
    `project` (their JSON keeps it), so it is added back as an override of the HCL block.
    The framework is imported here, not when the settings are read."""
    cdk = compat.cdk
    if isinstance(backend, LocalBackendSettings):
        cdk.LocalBackend(stack, path=PROJECT_ROOT_FROM_STACK + backend.path)
    elif isinstance(backend, GcsBackendSettings):
        cdk.GcsBackend(stack, bucket=backend.bucket, prefix=backend.prefix)
    else:
        workspaces = (
            cdk.NamedCloudWorkspace(backend.workspace, backend.project)
            if backend.workspace is not None
            else cdk.TaggedCloudWorkspaces(list(backend.workspace_tags or ()), backend.project)
        )
        cloud = cdk.CloudBackend(
            stack,
            organization=backend.organization,
            workspaces=workspaces,
            hostname=backend.hostname,
        )
        if hcl_output and backend.project is not None:
            cloud.add_override(
                "workspaces.value.project",
                {"value": backend.project, "type": "simple", "storageClassType": "string"},
            )

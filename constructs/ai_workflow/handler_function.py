"""The gen2 (Cloud Run functions) handler with dedicated runtime and build identities.

Ingress is internal-only: Pub/Sub push from the same project counts as internal traffic,
and nothing else needs to reach the function. Only members granted `grant_invoke` (the
push service account) may call it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from constructs import Construct

from . import rules
from .bucket import HardenedBucket
from .compat import cdk, provider
from .errors import ConfigError
from .iam import project_role
from .naming import WorkflowNames
from .workflow_config import SecretEnvConfig, WorkflowSettings, settings_problems

# cdktf or CDK Terrain, whichever ai_workflow.compat chose (type checkers see cdktf).
if TYPE_CHECKING:
    from cdktf import ITerraformDependable
    from cdktf_cdktf_provider_google.artifact_registry_repository_iam_member import (
        ArtifactRegistryRepositoryIamMember,
    )
    from cdktf_cdktf_provider_google.cloud_run_v2_service_iam_member import (
        CloudRunV2ServiceIamMember,
    )
    from cdktf_cdktf_provider_google.cloudfunctions2_function import (
        Cloudfunctions2Function,
        Cloudfunctions2FunctionBuildConfig,
        Cloudfunctions2FunctionBuildConfigSource,
        Cloudfunctions2FunctionBuildConfigSourceStorageSource,
        Cloudfunctions2FunctionServiceConfig,
        Cloudfunctions2FunctionServiceConfigSecretEnvironmentVariables,
    )
    from cdktf_cdktf_provider_google.secret_manager_secret_iam_member import (
        SecretManagerSecretIamMember,
    )
    from cdktf_cdktf_provider_google.service_account import ServiceAccount
else:
    ITerraformDependable = cdk.ITerraformDependable
    ArtifactRegistryRepositoryIamMember = provider(
        "artifact_registry_repository_iam_member"
    ).ArtifactRegistryRepositoryIamMember
    CloudRunV2ServiceIamMember = provider(
        "cloud_run_v2_service_iam_member"
    ).CloudRunV2ServiceIamMember
    _cloudfunctions2_function = provider("cloudfunctions2_function")
    Cloudfunctions2Function = _cloudfunctions2_function.Cloudfunctions2Function
    Cloudfunctions2FunctionBuildConfig = (
        _cloudfunctions2_function.Cloudfunctions2FunctionBuildConfig
    )
    Cloudfunctions2FunctionBuildConfigSource = (
        _cloudfunctions2_function.Cloudfunctions2FunctionBuildConfigSource
    )
    Cloudfunctions2FunctionBuildConfigSourceStorageSource = (
        _cloudfunctions2_function.Cloudfunctions2FunctionBuildConfigSourceStorageSource
    )
    Cloudfunctions2FunctionServiceConfig = (
        _cloudfunctions2_function.Cloudfunctions2FunctionServiceConfig
    )
    Cloudfunctions2FunctionServiceConfigSecretEnvironmentVariables = (
        _cloudfunctions2_function.Cloudfunctions2FunctionServiceConfigSecretEnvironmentVariables
    )
    SecretManagerSecretIamMember = provider(
        "secret_manager_secret_iam_member"
    ).SecretManagerSecretIamMember
    ServiceAccount = provider("service_account").ServiceAccount

ENTRY_POINT = "handler"


@dataclass(frozen=True, kw_only=True)
class HandlerFunctionProps:
    name: str
    """Workflow name, 2..24 lowercase letters, digits and hyphens. Names the function
    (`<name>-handler`), its identities (`<name>-run`, `<name>-build`) and addresses."""
    project_id: str
    region: str
    source_bucket: HardenedBucket
    """Bucket holding the handler zip; the build identity gets objectViewer on it."""
    source_object_name: str
    """The zip's object name (content-addressed, see source_bundle)."""
    docker_repository_id: str
    """Artifact Registry repository the build identity pushes the function image to."""
    settings: WorkflowSettings = field(default_factory=WorkflowSettings)
    """Runtime, memory, timeout, instances, concurrency and VPC egress. Default: the
    WorkflowSettings defaults (python312, 512Mi, 60 s, 0..10 instances, concurrency 1)."""
    environment: dict[str, str] = field(default_factory=dict)
    """Plain environment variables: topic names and routes, never secrets. Default: none."""
    secret_env: dict[str, SecretEnvConfig] = field(default_factory=dict)
    """Variables read from Secret Manager; the runtime identity gets accessor on each
    secret. Default: none."""
    labels: dict[str, str] = field(default_factory=dict)
    description: str = ""
    """Default: `Event handler of workflow <name>`."""
    kms_key_name: str | None = None
    """CMEK key of the function (its source copy, image and instances), in `region`;
    `docker_repository_id` must then be a repository encrypted with the same key, and the
    functions, Cloud Run, Artifact Registry and Cloud Storage agents must be able to use it
    (their grants in `depends_on`). Default: Google-managed encryption."""
    depends_on: Sequence[ITerraformDependable] = ()
    """What the function must wait for besides its own grants (enabled APIs). Default:
    nothing."""


def handler_function_problems(props: HandlerFunctionProps) -> list[str]:
    return rules.matches(
        "name", props.name, rules.WORKFLOW_NAME, "2..24 lowercase letters, digits and hyphens"
    ) + settings_problems("", props.settings)


class Identity:
    """A service account and its references, each read from the jsii kernel once
    (every attribute read is a round trip to Node; a workflow uses each several times)."""

    def __init__(self, scope: Construct, logical_id: str, account_id: str, purpose: str):
        self.account = ServiceAccount(
            scope,
            logical_id,
            account_id=account_id,
            display_name=f"{account_id}: {purpose}"[:100],
            description=purpose,
        )
        self.account.override_logical_id(logical_id)

    @cached_property
    def email(self) -> str:
        return self.account.email

    @cached_property
    def member(self) -> str:
        """`serviceAccount:<email>`, for IAM members."""
        return self.account.member

    @cached_property
    def name(self) -> str:
        """`projects/<p>/serviceAccounts/<email>`, for grants on the account itself."""
        return self.account.name

    @cached_property
    def id(self) -> str:
        return self.account.id


def service_account(scope: Construct, logical_id: str, account_id: str, purpose: str) -> Identity:
    return Identity(scope, logical_id, account_id, purpose)


class HandlerFunction(Construct):
    def __init__(self, scope: Construct, id: str, props: HandlerFunctionProps):
        super().__init__(scope, id)
        problems = handler_function_problems(props)
        if problems:
            raise ConfigError(problems)
        names, s = WorkflowNames(props.name), props.settings
        self._names = names
        self._project = props.project_id
        self.runtime_account = service_account(
            self,
            names.logical_id("runtime_sa"),
            names.runtime_account_id,
            f"Runtime identity of the {names.workflow} handler",
        )
        self.build_account = service_account(
            self,
            names.logical_id("build_sa"),
            names.build_account_id,
            f"Cloud Build identity that builds the {names.workflow} handler",
        )
        build_member = self.build_account.member
        image_writer = ArtifactRegistryRepositoryIamMember(
            self,
            "build_image_writer",
            repository=props.docker_repository_id,
            role="roles/artifactregistry.writer",
            member=build_member,
        )
        image_writer.override_logical_id(names.logical_id("build_image_writer"))
        build_grants = [
            project_role(
                self,
                "build_log_writer",
                prefix=names.workflow,
                project=props.project_id,
                role="roles/logging.logWriter",
                member=build_member,
            ),
            image_writer,
            props.source_bucket.grant(
                build_member,
                "roles/storage.objectViewer",
                f"{names.logical_id('build_source_reader')}",
            ),
        ]

        secret_grants = []
        secret_vars = []
        for var, secret in sorted(props.secret_env.items()):
            grant = SecretManagerSecretIamMember(
                self,
                f"secret_{var.lower()}",
                project=props.project_id,
                secret_id=secret.secret,
                role="roles/secretmanager.secretAccessor",
                member=self.runtime_account.member,
            )
            grant.override_logical_id(names.logical_id(f"secret_{var.lower()}_accessor"))
            secret_grants.append(grant)
            secret_vars.append(
                Cloudfunctions2FunctionServiceConfigSecretEnvironmentVariables(
                    key=var,
                    project_id=props.project_id,
                    secret=secret.secret,
                    version=secret.version,
                )
            )

        concurrent = s.max_instance_request_concurrency > 1
        self.function = Cloudfunctions2Function(
            self,
            "function",
            name=names.function,
            location=props.region,
            description=props.description or f"Event handler of workflow {names.workflow}",
            labels=props.labels,
            kms_key_name=props.kms_key_name,
            build_config=Cloudfunctions2FunctionBuildConfig(
                runtime=s.runtime,
                entry_point=ENTRY_POINT,
                service_account=self.build_account.id,
                docker_repository=props.docker_repository_id,
                source=Cloudfunctions2FunctionBuildConfigSource(
                    storage_source=Cloudfunctions2FunctionBuildConfigSourceStorageSource(
                        bucket=props.source_bucket.name,
                        object=props.source_object_name,
                    )
                ),
            ),
            service_config=Cloudfunctions2FunctionServiceConfig(
                service_account_email=self.runtime_account.email,
                ingress_settings="ALLOW_INTERNAL_ONLY",
                all_traffic_on_latest_revision=True,
                min_instance_count=s.min_instances,
                max_instance_count=s.max_instances,
                max_instance_request_concurrency=s.max_instance_request_concurrency,
                available_cpu="1" if concurrent else None,
                available_memory=s.available_memory,
                timeout_seconds=s.timeout_seconds,
                environment_variables=dict(sorted(props.environment.items())),
                secret_environment_variables=secret_vars or None,
                vpc_connector=s.vpc_connector,
                vpc_connector_egress_settings=s.vpc_egress if s.vpc_connector else None,
            ),
            depends_on=[*props.depends_on, *build_grants, *secret_grants],
        )
        self.function.override_logical_id(names.logical_id("function"))

    @cached_property
    def uri(self) -> str:
        return self.function.service_config.uri

    def grant_invoke(self, member: str, grant_id: str) -> CloudRunV2ServiceIamMember:
        """roles/run.invoker on this function's Cloud Run service only."""
        grant = CloudRunV2ServiceIamMember(
            self,
            grant_id,
            project=self._project,
            location=self.function.location,
            name=self.function.name,
            role="roles/run.invoker",
            member=member,
        )
        grant.override_logical_id(self._names.logical_id(grant_id))
        return grant

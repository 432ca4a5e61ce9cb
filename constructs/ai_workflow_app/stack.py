"""One environment as one Terraform stack."""

from __future__ import annotations

from typing import Any

from constructs import Construct

from ai_workflow.bucket import HardenedBucket, HardenedBucketProps
from ai_workflow.compat import cdk, provider
from ai_workflow.kms import grant_key_use, service_agent
from ai_workflow.source_bundle import SourceBundle
from ai_workflow.workflow import AiWorkflow, AiWorkflowProps

from .backend import add_backend
from .config import EnvironmentConfig, WorkflowConfig

# cdktf or cdktn, whichever ai_workflow.compat chose, and the matching Google provider.
App = cdk.App
TerraformOutput = cdk.TerraformOutput
TerraformStack = cdk.TerraformStack
ArtifactRegistryRepository = provider("artifact_registry_repository").ArtifactRegistryRepository
DataGoogleProject = provider("data_google_project").DataGoogleProject
DataGoogleStorageProjectServiceAccount = provider(
    "data_google_storage_project_service_account"
).DataGoogleStorageProjectServiceAccount
ProjectService = provider("project_service").ProjectService
GoogleProvider = provider("provider").GoogleProvider
StorageBucketObject = provider("storage_bucket_object").StorageBucketObject

REQUIRED_APIS = (
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "storage.googleapis.com",
    "aiplatform.googleapis.com",
)
MONITORING_API = "monitoring.googleapis.com"
ASSET_DIR = "assets"
DOCKER_REPOSITORY = "ai-workflow-functions"
PIPELINE_ROOT_NONCURRENT_RETENTION_DAYS = 7
"""The pipeline-root bucket is versioned: an artifact that is overwritten, deleted or expired
stays recoverable this many days as a noncurrent version, then it is deleted too."""
KEY_USERS = {
    # grant address: (service agent, the API whose enabling creates it)
    "pubsub_agent_kms": ("pubsub", "pubsub"),
    "storage_agent_kms": ("storage", "storage"),
    "artifact_registry_agent_kms": ("artifact_registry", "artifactregistry"),
    "functions_agent_kms": ("functions", "cloudfunctions"),
    "cloud_run_agent_kms": ("cloud_run", "run"),
    "vertex_ai_agent_kms": ("vertex_ai", "aiplatform"),
}
"""Every service agent that encrypts something with the environment's CMEK key."""


def required_apis(env: EnvironmentConfig) -> list[str]:
    apis = set(REQUIRED_APIS)
    if env.kms_key_name:
        apis.add("cloudkms.googleapis.com")
    if any(w.secret_env for w in env.workflows):
        apis.add("secretmanager.googleapis.com")
    if any(w.alerts for w in env.workflows):
        apis.add(MONITORING_API)
    return sorted(apis)


def in_trigger_order(workflows: tuple[WorkflowConfig, ...]) -> list[WorkflowConfig]:
    """Upstream workflows first, so a chained workflow can use their results topic."""
    by_name = {w.name: w for w in workflows}
    ordered: list[WorkflowConfig] = []
    placed: set[str] = set()

    def place(w: WorkflowConfig) -> None:
        if w.name in placed:
            return
        if w.trigger:
            place(by_name[w.trigger])
        placed.add(w.name)
        ordered.append(w)

    for w in workflows:
        place(w)
    return ordered


class AiWorkflowStack(TerraformStack):
    """Provider, APIs, shared buckets and repository, then every workflow."""

    def __init__(self, scope: Construct, env: EnvironmentConfig, bundle: SourceBundle):
        super().__init__(scope, env.name)
        self.env = env
        self.bundle = bundle
        labels = env.all_labels
        GoogleProvider(self, "google", project=env.project_id, region=env.region)
        add_backend(self, env.state_backend, hcl_output=App.of(self).hcl_output)

        services: dict[str, Any] = {}  # by API short name: pubsub, storage, ...
        for api in required_apis(env):
            name = api.split(".")[0]
            service = ProjectService(
                self,
                f"api_{name}",
                project=env.project_id,
                service=api,
                disable_on_destroy=False,
            )
            service.override_logical_id(f"api_{name}")
            services[name] = service
        apis = list(services.values())
        # The alert policies wait for the Monitoring API (enabled when any workflow alerts).
        alert_dependencies = [services["monitoring"]] if "monitoring" in services else []
        project = DataGoogleProject(self, "project", project_id=env.project_id)
        agent = service_agent(project.number, "pubsub")
        key_grants = self._key_grants(env, project.number, agent, services)

        def after(*grants: str) -> list[Any]:
            """The enabled APIs, then the named KMS grants (those that exist)."""
            return apis + [key_grants[g] for g in grants if g in key_grants]

        source_bucket = HardenedBucket(
            self,
            "source_bucket",
            HardenedBucketProps(
                name=env.source_bucket_name,
                location=env.region,
                labels=labels,
                noncurrent_retention_days=env.noncurrent_source_retention_days,
                access_log_bucket=env.access_log_bucket,
                kms_key_name=env.kms_key_name,
                depends_on=after("storage_agent_kms"),
            ),
        )
        source_object = StorageBucketObject(
            self,
            "function_source",
            bucket=source_bucket.name,
            name=bundle.object_name,
            source=f"{ASSET_DIR}/{bundle.file_name}",
            content_type="application/zip",
        )
        pipeline_root = HardenedBucket(
            self,
            "pipeline_root_bucket",
            HardenedBucketProps(
                name=env.pipeline_root_bucket_name,
                location=env.region,
                labels=labels,
                noncurrent_retention_days=PIPELINE_ROOT_NONCURRENT_RETENTION_DAYS,
                delete_after_days=env.pipeline_root_retention_days,
                access_log_bucket=env.access_log_bucket,
                kms_key_name=env.kms_key_name,
                depends_on=after("storage_agent_kms"),
            ),
        )
        repository = ArtifactRegistryRepository(
            self,
            "function_images",
            repository_id=DOCKER_REPOSITORY,
            location=env.region,
            format="DOCKER",
            description="Images Cloud Build makes of the workflow handlers",
            labels=labels,
            kms_key_name=env.kms_key_name,
            depends_on=after("artifact_registry_agent_kms"),
        )
        # Each reference is read from the jsii kernel once, not once per workflow.
        source_object_name, repository_id = source_object.name, repository.id
        self.workflows: dict[str, AiWorkflow] = {}
        for workflow in in_trigger_order(env.workflows):
            upstream = self.workflows[workflow.trigger].results if workflow.trigger else None
            self.workflows[workflow.name] = AiWorkflow(
                self,
                workflow.name,
                AiWorkflowProps(
                    workflow=workflow,
                    project_id=env.project_id,
                    region=env.region,
                    labels=labels,
                    pubsub_service_agent=agent,
                    source_bucket=source_bucket,
                    source_object_name=source_object_name,
                    docker_repository_id=repository_id,
                    pipeline_root_bucket=pipeline_root,
                    kms_key_name=env.kms_key_name,
                    trigger_topic=upstream,
                    ignored_event_types=env.ignored_event_types(workflow.name),
                    topic_dependencies=tuple(after("pubsub_agent_kms")),
                    # The function's own encryption, and the key its Vertex AI jobs use.
                    function_dependencies=tuple(
                        after(
                            "functions_agent_kms",
                            "cloud_run_agent_kms",
                            "artifact_registry_agent_kms",
                            "storage_agent_kms",
                            "vertex_ai_agent_kms",
                        )
                    ),
                    notification_channels=env.alert_notification_channels,
                    dead_letter_replay_command=(
                        f"make replay-dead-letters ENV={env.name} WORKFLOW={workflow.name}"
                    ),
                    alert_dependencies=tuple(alert_dependencies),
                ),
            )

        for key, value in {
            "source_bucket": source_bucket.name,
            "pipeline_root_bucket": pipeline_root.name,
            "function_source_object": source_object_name,
        }.items():
            TerraformOutput(self, f"out_{key}", value=value).override_logical_id(key)

    def _key_grants(
        self,
        env: EnvironmentConfig,
        project_number: str,
        pubsub_agent: str,
        services: dict[str, Any],
    ) -> dict[str, Any]:
        """Each KEY_USERS agent's use of the CMEK key, after the API that creates the agent,
        by grant address; none without a key."""
        if not env.kms_key_name:
            return {}
        storage_agent = DataGoogleStorageProjectServiceAccount(
            self, "storage_agent", project=env.project_id, depends_on=[services["storage"]]
        )
        members = {
            "pubsub": pubsub_agent,
            "storage": storage_agent.member,
            **{
                agent: service_agent(project_number, agent)
                for agent in ("artifact_registry", "functions", "cloud_run", "vertex_ai")
            },
        }
        return {
            grant_id: grant_key_use(
                self,
                grant_id,
                crypto_key_id=env.kms_key_name,
                member=members[agent],
                depends_on=[services[api]],
            )
            for grant_id, (agent, api) in KEY_USERS.items()
        }

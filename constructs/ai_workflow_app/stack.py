"""One environment as one Terraform stack."""

from __future__ import annotations

from constructs import Construct

from ai_workflow.bucket import HardenedBucket, HardenedBucketProps
from ai_workflow.compat import cdk, provider
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
KmsCryptoKeyIamMember = provider("kms_crypto_key_iam_member").KmsCryptoKeyIamMember
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

        services = []
        alert_dependencies = []
        for api in required_apis(env):
            service = ProjectService(
                self,
                f"api_{api.split('.')[0]}",
                project=env.project_id,
                service=api,
                disable_on_destroy=False,
            )
            service.override_logical_id(f"api_{api.split('.')[0]}")
            services.append(service)
            if api == MONITORING_API:
                alert_dependencies.append(service)
        project = DataGoogleProject(self, "project", project_id=env.project_id)
        agent = f"serviceAccount:service-{project.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

        topic_dependencies: list = list(services)
        if env.kms_key_name:
            kms_grant = KmsCryptoKeyIamMember(
                self,
                "pubsub_agent_kms",
                crypto_key_id=env.kms_key_name,
                role="roles/cloudkms.cryptoKeyEncrypterDecrypter",
                member=agent,
            )
            topic_dependencies.append(kms_grant)

        source_bucket = HardenedBucket(
            self,
            "source_bucket",
            HardenedBucketProps(
                name=env.source_bucket_name,
                location=env.region,
                labels=labels,
                noncurrent_retention_days=env.noncurrent_source_retention_days,
                access_log_bucket=env.access_log_bucket,
                depends_on=services,
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
                versioned=False,
                noncurrent_retention_days=None,
                delete_after_days=env.pipeline_root_retention_days,
                access_log_bucket=env.access_log_bucket,
                depends_on=services,
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
            depends_on=services,
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
                    topic_dependencies=tuple(topic_dependencies),
                    function_dependencies=tuple(services),
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

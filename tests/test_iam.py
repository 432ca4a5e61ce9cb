"""Every IAM grant, asserted exactly: who gets which role on what, and nothing else."""

from __future__ import annotations

import re
from typing import Any

import pytest
from stack_helpers import iam_members, ref, resources

WORKFLOWS = ("ingest", "train", "batch_predict")
PUBSUB_AGENT = (
    "serviceAccount:service-${data.google_project.project.number}"
    "@gcp-sa-pubsub.iam.gserviceaccount.com"
)
BASIC_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}
KEY = "projects/acme-security/locations/europe-west4/keyRings/pubsub/cryptoKeys/ai-workflows"
ENCRYPTER_DECRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"


def agent(domain: str) -> str:
    return (
        "serviceAccount:service-${data.google_project.project.number}"
        f"@{domain}.iam.gserviceaccount.com"
    )


STORAGE_AGENT = "${data.google_storage_project_service_account.storage_agent.member}"
KEY_USERS = {
    PUBSUB_AGENT,
    STORAGE_AGENT,
    agent("gcp-sa-artifactregistry"),
    agent("gcf-admin-robot"),
    agent("serverless-robot-prod"),
    agent("gcp-sa-aiplatform"),
}
"""Who may use prod's CMEK key: the agents of Pub/Sub, Cloud Storage, Artifact Registry,
Cloud Run functions, Cloud Run and Vertex AI."""


def sa(wf: str, kind: str) -> str:
    return ref("google_service_account", f"{wf}_{kind}_sa", "member")


@pytest.fixture(scope="module", params=["dev", "prod"])
def stack(request: pytest.FixtureRequest, stacks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return stacks[request.param]


def grants(stack: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    """(type, target, role, member) for every IAM member resource."""
    out = set()
    for kind, _, body in iam_members(stack):
        target = next(
            body[k]
            for k in (
                "topic",
                "subscription",
                "service_account_id",
                "bucket",
                "name",
                "repository",
                "crypto_key_id",
                "secret_id",
                "project",
            )
            if k in body
        )
        out.add((kind, target, body["role"], body["member"]))
    return out


def test_no_public_members_no_basic_roles_no_project_level_impersonation(stack: dict) -> None:
    for kind, name, body in iam_members(stack):
        assert body["member"] not in ("allUsers", "allAuthenticatedUsers"), name
        assert body["role"] not in BASIC_ROLES, name
        if kind == "google_project_iam_member":
            assert body["role"] not in (
                "roles/iam.serviceAccountUser",
                "roles/iam.serviceAccountTokenCreator",
            ), name
    assert "google_project_iam_binding" not in stack["resource"]
    assert "google_project_iam_policy" not in stack["resource"]


def test_project_level_roles_are_only_the_unavoidable_ones(stack: dict) -> None:
    project_grants = {
        (body["role"], body["member"])
        for _, _, body in iam_members(stack)
        if "project" in body and "secret_id" not in body and "name" not in body
    }
    expected = set()
    for wf in WORKFLOWS:
        expected |= {
            ("roles/logging.logWriter", sa(wf, "build")),
            ("roles/aiplatform.user", sa(wf, "runtime")),
            ("roles/aiplatform.user", sa(wf, "pipeline")),
        }
    assert project_grants == expected


@pytest.mark.parametrize("wf", WORKFLOWS)
def test_push_account_may_only_invoke_its_own_function(stack: dict, wf: str) -> None:
    push = sa(wf, "push")
    held = {g for g in grants(stack) if g[3] == push}
    assert held == {
        (
            "google_cloud_run_v2_service_iam_member",
            ref("google_cloudfunctions2_function", f"{wf}_function", "name"),
            "roles/run.invoker",
            push,
        )
    }


@pytest.mark.parametrize("wf", WORKFLOWS)
def test_runtime_account_publishes_results_and_dead_letters_and_starts_pipelines(
    stack: dict, wf: str
) -> None:
    runtime = sa(wf, "runtime")
    held = {g for g in grants(stack) if g[3] == runtime and "secret" not in g[0]}
    assert held == {
        (
            "google_pubsub_topic_iam_member",
            ref("google_pubsub_topic", f"{wf}_results_topic", "name"),
            "roles/pubsub.publisher",
            runtime,
        ),
        (
            "google_pubsub_topic_iam_member",
            ref("google_pubsub_topic", f"{wf}_dead_letter_topic", "name"),
            "roles/pubsub.publisher",
            runtime,
        ),
        ("google_project_iam_member", held_project(stack), "roles/aiplatform.user", runtime),
        (
            "google_service_account_iam_member",
            ref("google_service_account", f"{wf}_pipeline_sa", "name"),
            "roles/iam.serviceAccountUser",
            runtime,
        ),
    }


@pytest.mark.parametrize("wf", WORKFLOWS)
def test_pipeline_account_runs_jobs_and_writes_only_the_pipeline_root(stack: dict, wf: str) -> None:
    pipeline = sa(wf, "pipeline")
    held = {(g[0], g[1], g[2]) for g in grants(stack) if g[3] == pipeline}
    assert held == {
        ("google_project_iam_member", held_project(stack), "roles/aiplatform.user"),
        (
            "google_storage_bucket_iam_member",
            ref("google_storage_bucket", "pipeline_root_bucket", "name"),
            "roles/storage.objectUser",
        ),
    }


@pytest.mark.parametrize("wf", WORKFLOWS)
def test_build_account_reads_source_writes_images_and_logs(stack: dict, wf: str) -> None:
    build = sa(wf, "build")
    held = {(g[0], g[1], g[2]) for g in grants(stack) if g[3] == build}
    assert held == {
        ("google_project_iam_member", held_project(stack), "roles/logging.logWriter"),
        (
            "google_artifact_registry_repository_iam_member",
            ref("google_artifact_registry_repository", "function_images", "id"),
            "roles/artifactregistry.writer",
        ),
        (
            "google_storage_bucket_iam_member",
            ref("google_storage_bucket", "source_bucket", "name"),
            "roles/storage.objectViewer",
        ),
    }


@pytest.mark.parametrize("wf", WORKFLOWS)
def test_pubsub_agent_gets_the_dead_letter_and_oidc_grants(stack: dict, wf: str) -> None:
    held = {g for g in grants(stack) if g[3] == PUBSUB_AGENT}
    assert (
        "google_pubsub_topic_iam_member",
        ref("google_pubsub_topic", f"{wf}_dead_letter_topic", "name"),
        "roles/pubsub.publisher",
        PUBSUB_AGENT,
    ) in held
    assert (
        "google_pubsub_subscription_iam_member",
        ref("google_pubsub_subscription", f"{wf}_push_subscription", "name"),
        "roles/pubsub.subscriber",
        PUBSUB_AGENT,
    ) in held
    assert (
        "google_service_account_iam_member",
        ref("google_service_account", f"{wf}_push_sa", "name"),
        "roles/iam.serviceAccountTokenCreator",
        PUBSUB_AGENT,
    ) in held
    # The pipeline-events subscription dead-letters too, so the agent subscribes there as well.
    assert (
        "google_pubsub_subscription_iam_member",
        ref("google_pubsub_subscription", f"{wf}_pipeline_events_push_subscription", "name"),
        "roles/pubsub.subscriber",
        PUBSUB_AGENT,
    ) in held


def test_exactly_the_encrypting_agents_may_use_the_cmek_key_and_only_that_key(
    dev: dict, prod: dict
) -> None:
    kms = {g for g in grants(prod) if g[0] == "google_kms_crypto_key_iam_member"}
    assert kms == {
        ("google_kms_crypto_key_iam_member", KEY, ENCRYPTER_DECRYPTER, member)
        for member in KEY_USERS
    }
    assert not [g for g in grants(dev) if g[0] == "google_kms_crypto_key_iam_member"]


def test_the_other_agents_hold_nothing_but_the_key(prod: dict) -> None:
    for member in KEY_USERS - {PUBSUB_AGENT}:
        held = {g for g in grants(prod) if g[3] == member}
        assert held == {("google_kms_crypto_key_iam_member", KEY, ENCRYPTER_DECRYPTER, member)}


def test_pubsub_agent_has_nothing_else(dev: dict, prod: dict) -> None:
    for stack, extra in ((dev, 0), (prod, 1)):
        held = [g for g in grants(stack) if g[3] == PUBSUB_AGENT]
        assert len(held) == 4 * len(WORKFLOWS) + extra


@pytest.mark.parametrize("wf", WORKFLOWS)
def test_the_log_sinks_identity_may_only_publish_to_its_pipeline_events_topic(
    stack: dict, wf: str
) -> None:
    writer = ref("google_logging_project_sink", f"{wf}_pipeline_events_sink", "writer_identity")
    held = {g for g in grants(stack) if g[3] == writer}
    assert held == {
        (
            "google_pubsub_topic_iam_member",
            ref("google_pubsub_topic", f"{wf}_pipeline_events_topic", "name"),
            "roles/pubsub.publisher",
            writer,
        )
    }
    sink = resources(stack, "google_logging_project_sink")[f"{wf}_pipeline_events_sink"]
    assert sink["unique_writer_identity"] is True  # its own identity, not a shared one


def test_nobody_else_may_publish_to_a_pipeline_events_topic(stack: dict) -> None:
    for wf in WORKFLOWS:
        topic = ref("google_pubsub_topic", f"{wf}_pipeline_events_topic", "name")
        members = {g[3] for g in grants(stack) if g[1] == topic}
        assert members == {
            ref("google_logging_project_sink", f"{wf}_pipeline_events_sink", "writer_identity")
        }


def test_producers_publish_to_the_trigger_topic_only(dev: dict) -> None:
    producer = "serviceAccount:data-landing@acme-ai-dev.iam.gserviceaccount.com"
    held = {g for g in grants(dev) if g[3] == producer}
    assert held == {
        (
            "google_pubsub_topic_iam_member",
            ref("google_pubsub_topic", "ingest_trigger_topic", "name"),
            "roles/pubsub.publisher",
            producer,
        )
    }


def test_every_grant_is_accounted_for(dev: dict, prod: dict) -> None:
    # 3 workflows x (invoker 1, runtime 4, pipeline 2, build 3, agent 4, sink writer 1)
    # + 1 producer.
    assert len(iam_members(dev)) == 3 * 15 + 1
    # prod also: the runtime SA's secret accessor (batch-predict), 6 agents on the key.
    assert len(iam_members(prod)) == 3 * 15 + 1 + 1 + len(KEY_USERS)


def held_project(stack: dict) -> str:
    return resources(stack, "google_project_service")["api_pubsub"]["project"]


def test_publisher_grants_follow_the_member_not_its_position(dev: dict) -> None:
    grants = resources(dev, "google_pubsub_topic_iam_member")
    address = (
        "ingest_trigger_topic_ingest_publisher_"
        "serviceaccount_data_landing_acme_ai_dev_iam_gserviceaccount_com"
    )
    assert grants[address]["member"] == (
        "serviceAccount:data-landing@acme-ai-dev.iam.gserviceaccount.com"
    )
    assert not [name for name in grants if re.search(r"_publisher_\d+$", name)]

"""Fine-grained assertions on every secure default of the synthesized stacks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from stack_helpers import ref, resources

WORKFLOWS = ("ingest", "train", "batch_predict")


@pytest.fixture(scope="module", params=["dev", "prod"])
def stack(request: pytest.FixtureRequest, stacks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return stacks[request.param]


def test_push_subscription_delivers_with_oidc_retry_and_dead_letter(stack: dict) -> None:
    for wf in WORKFLOWS:
        sub = resources(stack, "google_pubsub_subscription")[f"{wf}_push_subscription"]
        uri = ref("google_cloudfunctions2_function", f"{wf}_function", "service_config[0].uri")
        assert sub["push_config"]["push_endpoint"] == uri
        assert sub["push_config"]["oidc_token"] == {
            "service_account_email": ref("google_service_account", f"{wf}_push_sa", "email"),
            "audience": uri,
        }
        assert sub["ack_deadline_seconds"] == 20
        assert sub["retry_policy"] == {"minimum_backoff": "10s", "maximum_backoff": "600s"}
        assert sub["dead_letter_policy"]["dead_letter_topic"] == ref(
            "google_pubsub_topic", f"{wf}_dead_letter_topic", "id"
        )
        assert sub["expiration_policy"] == {"ttl": ""}
        assert sub["labels"]["workflow"] == wf.replace("_", "-")


def test_dead_letter_attempts_follow_the_environment(dev: dict, prod: dict) -> None:
    for stack, attempts in ((dev, 5), (prod, 10)):
        for wf in WORKFLOWS:
            sub = resources(stack, "google_pubsub_subscription")[f"{wf}_push_subscription"]
            assert sub["dead_letter_policy"]["max_delivery_attempts"] == attempts


def test_dead_letter_pull_subscription_keeps_messages_and_never_expires(stack: dict) -> None:
    for wf in WORKFLOWS:
        sub = resources(stack, "google_pubsub_subscription")[f"{wf}_dead_letter_subscription"]
        assert sub["topic"] == ref("google_pubsub_topic", f"{wf}_dead_letter_topic", "id")
        assert sub["message_retention_duration"] == "604800s"
        assert sub["expiration_policy"] == {"ttl": ""}
        assert "push_config" not in sub


def test_chained_workflows_use_the_upstream_results_topic(stack: dict) -> None:
    subs = resources(stack, "google_pubsub_subscription")
    topics = resources(stack, "google_pubsub_topic")
    assert subs["ingest_push_subscription"]["topic"] == ref(
        "google_pubsub_topic", "ingest_trigger_topic", "id"
    )
    assert subs["train_push_subscription"]["topic"] == ref(
        "google_pubsub_topic", "ingest_results_topic", "id"
    )
    assert subs["batch_predict_push_subscription"]["topic"] == ref(
        "google_pubsub_topic", "train_results_topic", "id"
    )
    # Only the head of the chain has a trigger topic of its own.
    assert sorted(n for n in topics if n.endswith("_trigger_topic")) == ["ingest_trigger_topic"]


def test_topics_have_labels_and_retention(stack: dict) -> None:
    for topic in resources(stack, "google_pubsub_topic").values():
        assert topic["message_retention_duration"] == "604800s"
        assert {"env", "workflow", "managed-by", "team"} <= set(topic["labels"])


KEY = "projects/acme-security/locations/europe-west4/keyRings/pubsub/cryptoKeys/ai-workflows"
KMS_GRANT = "google_kms_crypto_key_iam_member"


def depends_on_grants(body: dict) -> set[str]:
    prefix = f"{KMS_GRANT}."
    return {d.removeprefix(prefix) for d in body.get("depends_on", []) if d.startswith(prefix)}


def test_prod_topics_use_cmek_after_the_agent_may_use_the_key(prod: dict, dev: dict) -> None:
    for topic in resources(prod, "google_pubsub_topic").values():
        assert topic["kms_key_name"] == KEY
        assert depends_on_grants(topic) == {"pubsub_agent_kms"}
    for topic in resources(dev, "google_pubsub_topic").values():
        assert "kms_key_name" not in topic
        assert depends_on_grants(topic) == set()
    assert not resources(dev, KMS_GRANT)


def test_prod_buckets_and_repository_use_cmek_after_their_agents_may(prod: dict) -> None:
    for bucket in resources(prod, "google_storage_bucket").values():
        assert bucket["encryption"] == {"default_kms_key_name": KEY}
        assert depends_on_grants(bucket) == {"storage_agent_kms"}
    (repository,) = resources(prod, "google_artifact_registry_repository").values()
    assert repository["kms_key_name"] == KEY
    assert repository["location"] == "europe-west4"
    assert depends_on_grants(repository) == {"artifact_registry_agent_kms"}


def test_prod_functions_and_their_pipeline_jobs_use_cmek(prod: dict) -> None:
    (repository,) = resources(prod, "google_artifact_registry_repository")
    for name, function in resources(prod, "google_cloudfunctions2_function").items():
        assert function["kms_key_name"] == KEY, name
        # Cloud Run functions with CMEK need a repository encrypted with the same key.
        assert function["build_config"]["docker_repository"] == ref(
            "google_artifact_registry_repository", repository, "id"
        )
        assert function["service_config"]["environment_variables"]["PIPELINE_KMS_KEY"] == KEY
        assert depends_on_grants(function) == {
            "functions_agent_kms",
            "cloud_run_agent_kms",
            "artifact_registry_agent_kms",
            "storage_agent_kms",
            "vertex_ai_agent_kms",
        }


def test_dev_uses_google_managed_keys_everywhere(dev: dict) -> None:
    for kind in ("google_storage_bucket", "google_artifact_registry_repository"):
        for body in resources(dev, kind).values():
            assert "encryption" not in body and "kms_key_name" not in body
    for function in resources(dev, "google_cloudfunctions2_function").values():
        assert "kms_key_name" not in function
        assert "PIPELINE_KMS_KEY" not in function["service_config"]["environment_variables"]
    assert "google_storage_project_service_account" not in dev["data"]


def test_each_agent_grant_waits_for_the_api_that_creates_the_agent(prod: dict) -> None:
    apis = {name: grant["depends_on"] for name, grant in resources(prod, KMS_GRANT).items()}
    assert apis == {
        "pubsub_agent_kms": ["google_project_service.api_pubsub"],
        "storage_agent_kms": ["google_project_service.api_storage"],
        "artifact_registry_agent_kms": ["google_project_service.api_artifactregistry"],
        "functions_agent_kms": ["google_project_service.api_cloudfunctions"],
        "cloud_run_agent_kms": ["google_project_service.api_run"],
        "vertex_ai_agent_kms": ["google_project_service.api_aiplatform"],
    }
    agent = prod["data"]["google_storage_project_service_account"]["storage_agent"]
    assert agent["project"] == "acme-ai-prod"
    assert agent["depends_on"] == ["google_project_service.api_storage"]


def test_buckets_are_hardened(stack: dict) -> None:
    buckets = resources(stack, "google_storage_bucket")
    assert set(buckets) == {"source_bucket", "pipeline_root_bucket"}
    for bucket in buckets.values():
        assert bucket["uniform_bucket_level_access"] is True
        assert bucket["public_access_prevention"] == "enforced"
        assert bucket["force_destroy"] is False
        assert bucket["labels"]["managed-by"] == "cdktf"
    source = buckets["source_bucket"]
    assert source["versioning"] == {"enabled": True}
    assert source["lifecycle_rule"][0]["action"] == {"type": "Delete"}
    assert source["lifecycle_rule"][0]["condition"]["with_state"] == "ARCHIVED"


def test_the_pipeline_root_is_versioned_and_every_version_expires(dev: dict, prod: dict) -> None:
    """Versioned (CKV_GCP_78): an overwritten or deleted artifact stays recoverable for 7
    days; live artifacts expire after pipeline_root_retention_days, and then become noncurrent
    versions that the 7-day rule deletes too."""
    for stack, days in ((dev, 7), (prod, 90)):
        root = resources(stack, "google_storage_bucket")["pipeline_root_bucket"]
        assert root["versioning"] == {"enabled": True}
        assert root["lifecycle_rule"] == [
            {
                "action": {"type": "Delete"},
                "condition": {"days_since_noncurrent_time": 7, "with_state": "ARCHIVED"},
            },
            {"action": {"type": "Delete"}, "condition": {"age": days}},
        ]


def test_bucket_names_include_the_project_id(dev: dict, prod: dict) -> None:
    for stack, project in ((dev, "acme-ai-dev"), (prod, "acme-ai-prod")):
        names = {b["name"] for b in resources(stack, "google_storage_bucket").values()}
        assert names == {f"{project}-fn-source", f"{project}-pipeline-root"}


def test_prod_buckets_send_access_logs(prod: dict, dev: dict) -> None:
    for bucket in resources(prod, "google_storage_bucket").values():
        assert bucket["logging"]["log_bucket"] == "acme-ai-prod-access-logs"
        assert bucket["logging"]["log_object_prefix"] == bucket["name"]
    for bucket in resources(dev, "google_storage_bucket").values():
        assert "logging" not in bucket


def test_source_object_is_named_by_content_hash(stack: dict) -> None:
    (obj,) = resources(stack, "google_storage_bucket_object").values()
    assert obj["bucket"] == ref("google_storage_bucket", "source_bucket", "name")
    name = obj["name"]
    assert name.startswith("function-source/") and name.endswith(".zip")
    digest = name.removeprefix("function-source/").removesuffix(".zip")
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert obj["source"] == f"assets/function-source-{digest[:16]}.zip"


def test_functions_are_gen2_internal_scale_to_zero_with_dedicated_accounts(
    stack: dict,
) -> None:
    for wf in WORKFLOWS:
        fn = resources(stack, "google_cloudfunctions2_function")[f"{wf}_function"]
        build, service = fn["build_config"], fn["service_config"]
        assert build["runtime"] == "python312"
        assert build["entry_point"] == "handler"
        assert build["service_account"] == ref("google_service_account", f"{wf}_build_sa", "id")
        assert build["docker_repository"] == ref(
            "google_artifact_registry_repository", "function_images", "id"
        )
        assert build["source"]["storage_source"]["object"] == ref(
            "google_storage_bucket_object", "function_source", "name"
        )
        assert service["ingress_settings"] == "ALLOW_INTERNAL_ONLY"
        assert service["min_instance_count"] == 0
        assert service["max_instance_count"] in (3, 20)
        assert service["max_instance_request_concurrency"] == 1
        assert service["service_account_email"] == ref(
            "google_service_account", f"{wf}_runtime_sa", "email"
        )
        assert service["all_traffic_on_latest_revision"] is True


def test_function_environment_names_topics_and_routes(dev: dict) -> None:
    fn = resources(dev, "google_cloudfunctions2_function")["train_function"]
    env = fn["service_config"]["environment_variables"]
    assert env["WORKFLOW_NAME"] == "train"
    assert env["GCP_PROJECT"] == "acme-ai-dev"
    assert env["VERTEX_LOCATION"] == "europe-west4"
    assert env["RESULTS_TOPIC"] == ref("google_pubsub_topic", "train_results_topic", "id")
    assert env["DEAD_LETTER_TOPIC"] == ref("google_pubsub_topic", "train_dead_letter_topic", "id")
    assert env["PIPELINE_SERVICE_ACCOUNT"] == ref(
        "google_service_account", "train_pipeline_sa", "email"
    )
    assert env["PIPELINE_ROOT"] == (
        "gs://" + ref("google_storage_bucket", "pipeline_root_bucket", "name") + "/train"
    )
    assert env["MAX_EVENT_AGE_SECONDS"] == "86400"
    # Three API calls of at most 6 s each fit in the 20 s ack deadline.
    assert env["OUTBOUND_TIMEOUT_SECONDS"] == "6"
    routes = json.loads(env["ROUTES"])
    assert set(routes) == {"model.train", "model.retrain"}
    assert routes["model.retrain"]["parameters"] == {"epochs": 2, "warm_start": True}
    assert routes["model.train"] == {
        "template_uri": "https://europe-west4-kfp.pkg.dev/acme-ai-dev/pipelines/train-model/latest",
        "parameters": {"epochs": 5},
        "on_success": "predict.batch",
        "on_failure": "workflow.failed",
    }
    # ingest's failure events reach train too: acknowledged there, without a job.
    assert json.loads(env["IGNORED_EVENT_TYPES"]) == ["workflow.failed"]
    ingest = resources(dev, "google_cloudfunctions2_function")["ingest_function"]
    assert ingest["service_config"]["environment_variables"]["IGNORED_EVENT_TYPES"] == "[]"


def test_pipeline_events_subscriptions_are_secure_like_the_trigger_ones(dev: dict) -> None:
    subs = resources(dev, "google_pubsub_subscription")
    for wf in ("ingest", "train", "batch_predict"):
        events, trigger = (
            subs[f"{wf}_pipeline_events_push_subscription"],
            subs[f"{wf}_push_subscription"],
        )
        for key in ("push_config", "retry_policy", "dead_letter_policy", "expiration_policy"):
            assert events[key] == trigger[key], (wf, key)
        assert events["ack_deadline_seconds"] == trigger["ack_deadline_seconds"]


def test_secrets_come_from_secret_manager_never_literals(prod: dict) -> None:
    fn = resources(prod, "google_cloudfunctions2_function")["batch_predict_function"]
    (secret,) = fn["service_config"]["secret_environment_variables"]
    assert secret == {
        "key": "SCORING_API_KEY",
        "project_id": "acme-ai-prod",
        "secret": "scoring-api-key",
        "version": "latest",
    }
    assert "SCORING_API_KEY" not in fn["service_config"]["environment_variables"]
    grant = resources(prod, "google_secret_manager_secret_iam_member")[
        "batch_predict_secret_scoring_api_key_accessor"
    ]
    assert grant["secret_id"] == "scoring-api-key"
    assert grant["role"] == "roles/secretmanager.secretAccessor"
    assert grant["member"] == ref("google_service_account", "batch_predict_runtime_sa", "member")


def test_required_apis_are_enabled_and_survive_destroy(dev: dict, prod: dict) -> None:
    base = {
        "artifactregistry",
        "cloudbuild",
        "cloudfunctions",
        "iam",
        "logging",
        "pubsub",
        "run",
        "storage",
        "aiplatform",
        "monitoring",  # the workflows' alert policies
    }
    for stack, extra in ((dev, set()), (prod, {"cloudkms", "secretmanager"})):
        services = resources(stack, "google_project_service")
        assert {s["service"].split(".")[0] for s in services.values()} == base | extra
        assert all(s["disable_on_destroy"] is False for s in services.values())


def test_state_lives_outside_the_replaced_output_dir(dev: dict, prod: dict) -> None:
    # dev: a local file at the project root; prod: a bucket (tests/test_backends.py has all).
    assert dev["terraform"]["backend"] == {"local": {"path": "../../../terraform.dev.tfstate"}}
    assert prod["terraform"]["backend"] == {
        "gcs": {"bucket": "acme-ai-prod-tfstate", "prefix": "ai-workflows/prod"}
    }


def test_provider_is_pinned(stack: dict) -> None:
    # cdktf's provider package pins google 6.50.0; cdktn's (make test-cdktn) 8.7.0.
    from frameworks import REQUIRED_GOOGLE

    from ai_workflow import compat

    assert stack["terraform"]["required_providers"]["google"] == REQUIRED_GOOGLE[compat.NAME]


def test_outputs_name_the_endpoints_topics_and_accounts(stack: dict) -> None:
    outputs = stack["output"]
    for wf in WORKFLOWS:
        for key in (
            "function_uri",
            "trigger_topic",
            "results_topic",
            "dead_letter_topic",
            "push_subscription",
            "dead_letter_subscription",
            "runtime_service_account",
            "push_service_account",
            "build_service_account",
            "pipeline_service_account",
        ):
            assert f"{wf}_{key}" in outputs
    assert outputs["train_trigger_topic"]["value"] == ref(
        "google_pubsub_topic", "ingest_results_topic", "id"
    )
    assert {"source_bucket", "pipeline_root_bucket", "function_source_object"} <= set(outputs)

"""Each construct of the library, built on its own in a bare stack: its secure defaults, its
grants and its props validation (literal values and unresolved tokens)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from stack_helpers import ref, resources

from ai_workflow.bucket import HardenedBucket, HardenedBucketProps
from ai_workflow.compat import cdk
from ai_workflow.dead_letter import DeadLetterQueue, DeadLetterQueueProps
from ai_workflow.errors import ConfigError
from ai_workflow.handler_function import HandlerFunction, HandlerFunctionProps
from ai_workflow.push_subscription import PushSubscription, PushSubscriptionProps
from ai_workflow.topic import EventTopic, EventTopicProps
from ai_workflow.workflow import AiWorkflow, AiWorkflowProps
from ai_workflow.workflow_config import RouteConfig, WorkflowConfig, WorkflowSettings

AGENT = "serviceAccount:service-123@gcp-sa-pubsub.iam.gserviceaccount.com"
PRODUCER = "serviceAccount:etl@acme.iam.gserviceaccount.com"


@pytest.fixture
def stack() -> Iterator[Any]:
    yield cdk.TerraformStack(cdk.App(), "bare")


def synth(stack: Any) -> dict[str, Any]:
    return json.loads(cdk.Testing.synth(stack))


def token_number() -> Any:
    return cdk.Token.as_number("${var.retention}")


def bucket(stack: Any, name: str = "acme-fn-source", id: str = "source_bucket") -> HardenedBucket:
    return HardenedBucket(stack, id, HardenedBucketProps(name=name, location="eu"))


def handler(stack: Any, **overrides: Any) -> HandlerFunction:
    props = {
        "name": "train",
        "project_id": "acme",
        "region": "europe-west4",
        "source_bucket": bucket(stack),
        "source_object_name": "function-source/abc.zip",
        "docker_repository_id": "projects/acme/locations/europe-west4/repositories/fn",
        **overrides,
    }
    return HandlerFunction(stack, "handler", HandlerFunctionProps(**props))


# --- EventTopic ----------------------------------------------------------------------------


def test_topic_alone_has_labels_retention_and_member_keyed_grants(stack: Any) -> None:
    topic = EventTopic(
        stack,
        "orders",
        EventTopicProps(name="orders", message_retention_seconds=3600, labels={"team": "ml"}),
    )
    topic.grant_publish(PRODUCER)
    out = synth(stack)
    body = resources(out, "google_pubsub_topic")["orders"]
    assert (body["name"], body["message_retention_duration"]) == ("orders", "3600s")
    assert body["labels"] == {"team": "ml"}
    assert "kms_key_name" not in body
    (name, grant), *_ = resources(out, "google_pubsub_topic_iam_member").items()
    assert name == "orders_publisher_serviceaccount_etl_acme_iam_gserviceaccount_com"
    assert grant == grant | {"role": "roles/pubsub.publisher", "member": PRODUCER}


def test_topic_refuses_public_and_repeated_publishers(stack: Any) -> None:
    topic = EventTopic(stack, "t", EventTopicProps(name="orders", message_retention_seconds=600))
    with pytest.raises(ConfigError, match="got 'allUsers', allowed a named principal"):
        topic.grant_publish("allUsers")
    topic.grant_publish(PRODUCER)
    with pytest.raises(ConfigError, match="which already has this grant"):
        topic.grant_publish(PRODUCER)


def test_topic_props_are_validated_and_tokens_skipped(stack: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        EventTopic(stack, "bad", EventTopicProps(name="x", message_retention_seconds=5))
    assert caught.value.problems == [
        "name: got 'x', allowed 3..255 characters of letters, digits and -_.~+%, "
        "starting with a letter",
        "message_retention_seconds: got 5, allowed 600..2678400",
    ]
    EventTopic(stack, "ok", EventTopicProps(name="late", message_retention_seconds=token_number()))
    assert "late" in json.dumps(synth(stack))


# --- HardenedBucket ------------------------------------------------------------------------


def test_bucket_alone_is_hardened(stack: Any) -> None:
    bucket(stack).grant("user:a@acme.com", "roles/storage.objectViewer", "reader")
    out = synth(stack)
    body = resources(out, "google_storage_bucket")["source_bucket"]
    assert body["uniform_bucket_level_access"] is True
    assert body["public_access_prevention"] == "enforced"
    assert body["force_destroy"] is False
    assert body["versioning"] == {"enabled": True}
    grant = resources(out, "google_storage_bucket_iam_member")["source_bucket_reader"]
    assert grant["bucket"] == ref("google_storage_bucket", "source_bucket", "name")


def test_bucket_name_is_validated(stack: Any) -> None:
    with pytest.raises(ConfigError, match=r"^name: got 'No'"):
        bucket(stack, name="No")


# --- DeadLetterQueue -----------------------------------------------------------------------


def test_dead_letter_queue_alone_keeps_messages_and_lets_the_agent_publish(stack: Any) -> None:
    DeadLetterQueue(
        stack,
        "orders",
        DeadLetterQueueProps(
            topic_name="orders-dead-letter",
            subscription_name="orders-dead-letter-pull",
            pubsub_service_agent=AGENT,
        ),
    )
    out = synth(stack)
    topic = resources(out, "google_pubsub_topic")["orders_dead_letter_topic"]
    assert topic["message_retention_duration"] == "604800s"
    sub = resources(out, "google_pubsub_subscription")["orders_dead_letter_subscription"]
    assert sub["topic"] == ref("google_pubsub_topic", "orders_dead_letter_topic", "id")
    assert (sub["ack_deadline_seconds"], sub["expiration_policy"]) == (60, {"ttl": ""})
    assert "push_config" not in sub
    (grant,) = resources(out, "google_pubsub_topic_iam_member").values()
    assert (grant["role"], grant["member"]) == ("roles/pubsub.publisher", AGENT)


def test_dead_letter_queue_props_are_validated(stack: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        DeadLetterQueue(
            stack,
            "dlq",
            DeadLetterQueueProps(
                topic_name="dlq",
                subscription_name="dlq-pull",
                pubsub_service_agent=AGENT,
                subscription_retention_seconds=700_000,
                ack_deadline_seconds=5,
            ),
        )
    assert caught.value.problems == [
        "subscription_retention_seconds: got 700000, allowed 600..604800",
        "ack_deadline_seconds: got 5, allowed 10..600",
    ]


# --- HandlerFunction -----------------------------------------------------------------------


def test_handler_function_alone_is_internal_with_its_own_identities(stack: Any) -> None:
    function = handler(stack)
    function.grant_invoke("serviceAccount:caller@acme.iam.gserviceaccount.com", "caller_invoker")
    out = synth(stack)
    fn = resources(out, "google_cloudfunctions2_function")["train_function"]
    service = fn["service_config"]
    assert service["ingress_settings"] == "ALLOW_INTERNAL_ONLY"
    assert (service["min_instance_count"], service["max_instance_count"]) == (0, 10)
    assert fn["build_config"]["runtime"] == "python312"
    assert service["service_account_email"] == ref(
        "google_service_account", "train_runtime_sa", "email"
    )
    assert set(resources(out, "google_service_account")) == {"train_runtime_sa", "train_build_sa"}
    (invoker,) = resources(out, "google_cloud_run_v2_service_iam_member").values()
    assert (invoker["role"], invoker["name"]) == (
        "roles/run.invoker",
        ref("google_cloudfunctions2_function", "train_function", "name"),
    )
    # The build identity: logs, its image repository, and reading the source bucket.
    roles = {
        body["role"]
        for kind in (
            "google_project_iam_member",
            "google_artifact_registry_repository_iam_member",
            "google_storage_bucket_iam_member",
        )
        for body in resources(out, kind).values()
    }
    assert roles == {
        "roles/logging.logWriter",
        "roles/artifactregistry.writer",
        "roles/storage.objectViewer",
    }


def test_handler_function_props_are_validated(stack: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        handler(stack, name="Train", settings=WorkflowSettings(max_instances=0))
    assert caught.value.problems == [
        "name: got 'Train', allowed 2..24 lowercase letters, digits and hyphens",
        "max_instances: got 0, allowed 1..1000",
    ]


# --- PushSubscription ----------------------------------------------------------------------


def push_props(stack: Any, **overrides: Any) -> PushSubscriptionProps:
    topic = EventTopic(
        stack, "orders", EventTopicProps(name="orders", message_retention_seconds=600)
    )
    props = {
        "name": "train",
        "topic": topic,
        "handler": handler(stack),
        "pubsub_service_agent": AGENT,
        "dead_letter_props": DeadLetterQueueProps(
            topic_name="train-dead-letter",
            subscription_name="train-dead-letter-pull",
            pubsub_service_agent=AGENT,
            address_prefix="train",
        ),
        **overrides,
    }
    return PushSubscriptionProps(**props)


def test_push_subscription_alone_creates_its_dead_letter_queue(stack: Any) -> None:
    push = PushSubscription(stack, "push", push_props(stack))
    out = synth(stack)
    sub = resources(out, "google_pubsub_subscription")["train_push_subscription"]
    uri = ref("google_cloudfunctions2_function", "train_function", "service_config[0].uri")
    assert sub["push_config"]["push_endpoint"] == uri
    assert sub["push_config"]["oidc_token"]["service_account_email"] == ref(
        "google_service_account", "train_push_sa", "email"
    )
    assert sub["dead_letter_policy"] == {
        "dead_letter_topic": ref("google_pubsub_topic", "train_dead_letter_topic", "id"),
        "max_delivery_attempts": 5,
    }
    assert sub["retry_policy"] == {"minimum_backoff": "10s", "maximum_backoff": "600s"}
    assert (sub["ack_deadline_seconds"], sub["expiration_policy"]) == (20, {"ttl": ""})
    # The dead-letter queue is the push subscription's own, and the agent may forward to it.
    assert push.dead_letter.node.scope is push
    subscriber = resources(out, "google_pubsub_subscription_iam_member")[
        "train_pubsub_agent_subscriber"
    ]
    assert (subscriber["role"], subscriber["member"]) == ("roles/pubsub.subscriber", AGENT)
    (creator,) = resources(out, "google_service_account_iam_member").values()
    assert (creator["role"], creator["member"]) == ("roles/iam.serviceAccountTokenCreator", AGENT)


def test_push_subscription_takes_an_existing_dead_letter_queue(stack: Any) -> None:
    existing = DeadLetterQueue(
        stack,
        "shared",
        DeadLetterQueueProps(
            topic_name="shared-dead-letter",
            subscription_name="shared-dead-letter-pull",
            pubsub_service_agent=AGENT,
        ),
    )
    push = PushSubscription(
        stack, "push", push_props(stack, dead_letter=existing, dead_letter_props=None)
    )
    assert push.dead_letter is existing
    sub = resources(synth(stack), "google_pubsub_subscription")["train_push_subscription"]
    assert sub["dead_letter_policy"]["dead_letter_topic"] == ref(
        "google_pubsub_topic", "shared_dead_letter_topic", "id"
    )


def test_push_subscription_props_are_validated(stack: Any) -> None:
    existing = DeadLetterQueue(
        stack,
        "shared",
        DeadLetterQueueProps(
            topic_name="dl-topic", subscription_name="dl-pull", pubsub_service_agent=AGENT
        ),
    )
    with pytest.raises(ConfigError) as caught:
        PushSubscription(
            stack,
            "push",
            push_props(
                stack,
                dead_letter=existing,
                ack_deadline_seconds=5,
                min_retry_backoff_seconds=60,
                max_retry_backoff_seconds=30,
                max_delivery_attempts=3,
            ),
        )
    assert caught.value.problems == [
        "dead_letter: give either an existing DeadLetterQueue or dead_letter_props, exactly one",
        "ack_deadline_seconds: got 5, allowed 10..600",
        "min_retry_backoff_seconds: got 60, allowed at most max_retry_backoff_seconds (30)",
        "max_delivery_attempts: got 3, allowed 5..100",
    ]


def test_push_subscription_skips_tokens(stack: Any) -> None:
    PushSubscription(stack, "push", push_props(stack, ack_deadline_seconds=token_number()))
    sub = resources(synth(stack), "google_pubsub_subscription")["train_push_subscription"]
    assert sub["ack_deadline_seconds"] == "${var.retention}"


# --- AiWorkflow ----------------------------------------------------------------------------


def test_ai_workflow_alone_in_a_bare_stack(stack: Any) -> None:
    workflow = WorkflowConfig(
        name="train",
        routes={
            "model.train": RouteConfig(
                template_uri="https://europe-west4-kfp.pkg.dev/acme/pipelines/train/v1"
            )
        },
        publishers=(PRODUCER,),
    )
    AiWorkflow(
        stack,
        "train",
        AiWorkflowProps(
            workflow=workflow,
            project_id="acme",
            region="europe-west4",
            pubsub_service_agent=AGENT,
            source_bucket=bucket(stack),
            source_object_name="function-source/abc.zip",
            docker_repository_id="projects/acme/locations/europe-west4/repositories/fn",
            pipeline_root_bucket=HardenedBucket(
                stack,
                "pipeline_root",
                HardenedBucketProps(name="acme-pipeline-root", location="eu"),
            ),
        ),
    )
    out = synth(stack)
    assert set(resources(out, "google_pubsub_topic")) == {
        "train_trigger_topic",
        "train_results_topic",
        "train_dead_letter_topic",
    }
    assert set(resources(out, "google_pubsub_subscription")) == {
        "train_push_subscription",
        "train_dead_letter_subscription",
    }
    env = resources(out, "google_cloudfunctions2_function")["train_function"]["service_config"]
    assert env["environment_variables"]["WORKFLOW_NAME"] == "train"
    publishers = {
        body["member"]
        for body in resources(out, "google_pubsub_topic_iam_member").values()
        if body["topic"] == ref("google_pubsub_topic", "train_trigger_topic", "name")
    }
    assert publishers == {PRODUCER}


def test_ai_workflow_props_are_validated(stack: Any) -> None:
    workflow = WorkflowConfig(name="train", routes={}, max_delivery_attempts=1)
    with pytest.raises(ConfigError) as caught:
        AiWorkflow(
            stack,
            "train",
            AiWorkflowProps(
                workflow=workflow,
                project_id="acme",
                region="europe-west4",
                pubsub_service_agent=AGENT,
                source_bucket=bucket(stack),
                source_object_name="o.zip",
                docker_repository_id="repo",
                pipeline_root_bucket=bucket(stack, "acme-root", id="root"),
            ),
        )
    assert caught.value.problems == [
        "workflows.train.max_delivery_attempts: got 1, allowed 5..100",
        "workflows.train.routes: got {}, allowed at least one event type route",
    ]

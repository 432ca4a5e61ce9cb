"""Each construct of the library, built on its own in a bare stack: its secure defaults, its
grants and its props validation (literal values and unresolved tokens)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from stack_helpers import ref, resources

from ai_workflow.alerts import WorkflowAlerts, WorkflowAlertsProps
from ai_workflow.bucket import HardenedBucket, HardenedBucketProps
from ai_workflow.compat import cdk
from ai_workflow.dead_letter import DeadLetterQueue, DeadLetterQueueProps
from ai_workflow.errors import ConfigError
from ai_workflow.handler_function import HandlerFunction, HandlerFunctionProps
from ai_workflow.pipeline_events import PipelineEvents, PipelineEventsProps
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


def first_topic(push: PushSubscription) -> EventTopic:
    topic = push.node.scope.node.find_child("orders")  # type: ignore[union-attr]
    assert isinstance(topic, EventTopic)
    return topic


def test_a_second_push_subscription_shares_the_first_ones_identity(stack: Any) -> None:
    first = PushSubscription(stack, "push", push_props(stack))
    other = EventTopic(stack, "more", EventTopicProps(name="more", message_retention_seconds=600))
    second = PushSubscription(
        stack,
        "second",
        PushSubscriptionProps(
            name="train",
            topic=other,
            handler=first.handler,
            pubsub_service_agent=AGENT,
            dead_letter=first.dead_letter,
            shares_identity_with=first,
            subscription_name="train-more-push",
            address_prefix="train_more",
        ),
    )
    assert second.push_account is first.push_account
    out = synth(stack)
    assert len(resources(out, "google_service_account")) == 3  # push, runtime, build: no second
    assert len(resources(out, "google_cloud_run_v2_service_iam_member")) == 1
    sub = resources(out, "google_pubsub_subscription")["train_more_push_subscription"]
    assert sub["name"] == "train-more-push"
    assert sub["topic"] == ref("google_pubsub_topic", "more", "id")
    assert sub["push_config"]["oidc_token"]["service_account_email"] == ref(
        "google_service_account", "train_push_sa", "email"
    )
    assert sub["depends_on"] == [
        "google_cloud_run_v2_service_iam_member.train_push_invoker",
        "google_service_account_iam_member.train_pubsub_agent_token_creator",
        "google_pubsub_topic_iam_member.train_dead_letter_topic_pubsub_agent_publisher",
    ]
    subscriber = resources(out, "google_pubsub_subscription_iam_member")[
        "train_more_pubsub_agent_subscriber"
    ]
    assert subscriber["subscription"] == ref(
        "google_pubsub_subscription", "train_more_push_subscription", "name"
    )
    assert (subscriber["role"], subscriber["member"]) == ("roles/pubsub.subscriber", AGENT)


def test_an_identity_is_shared_only_with_a_subscription_to_the_same_handler(stack: Any) -> None:
    first = PushSubscription(stack, "push", push_props(stack))
    other = HandlerFunction(
        stack,
        "other_handler",
        HandlerFunctionProps(
            name="other",
            project_id="acme",
            region="europe-west4",
            source_bucket=bucket(stack, "acme-other", id="other_bucket"),
            source_object_name="o.zip",
            docker_repository_id="repo",
        ),
    )
    with pytest.raises(ConfigError) as caught:
        PushSubscription(
            stack,
            "second",
            PushSubscriptionProps(
                name="other",
                topic=first_topic(first),
                handler=other,
                pubsub_service_agent=AGENT,
                dead_letter=first.dead_letter,
                shares_identity_with=first,
                subscription_name="x",
            ),
        )
    assert caught.value.problems == [
        "subscription_name: got 'x', allowed 3..255 characters of letters, digits and -_.~+%, "
        "starting with a letter",
        "shares_identity_with: got a push subscription to another handler, allowed one to the "
        "same handler (a push identity may invoke one handler only)",
    ]


# --- PipelineEvents ------------------------------------------------------------------------


def test_pipeline_events_alone_route_the_workflows_terminal_job_states(stack: Any) -> None:
    push = PushSubscription(stack, "push", push_props(stack))
    events = PipelineEvents(
        stack,
        "pipeline_events",
        PipelineEventsProps(
            name="train",
            project_id="acme",
            region="europe-west4",
            push=push,
            dead_letter=push.dead_letter,
            pubsub_service_agent=AGENT,
            max_delivery_attempts=7,
            labels={"team": "ml"},
        ),
    )
    assert events.push.push_account is push.push_account
    out = synth(stack)
    topic = resources(out, "google_pubsub_topic")["train_pipeline_events_topic"]
    assert (topic["name"], topic["labels"]) == ("train-pipeline-events", {"team": "ml"})
    sink = resources(out, "google_logging_project_sink")["train_pipeline_events_sink"]
    assert sink == sink | {
        "name": "train-pipeline-events",
        "project": "acme",
        "unique_writer_identity": True,
        "destination": "pubsub.googleapis.com/"
        + ref("google_pubsub_topic", "train_pipeline_events_topic", "id"),
        "filter": (
            'logName="projects/acme/logs/aiplatform.googleapis.com%2Fpipeline_job_events"\n'
            'AND resource.type="aiplatform.googleapis.com/PipelineJob"\n'
            'AND resource.labels.location="europe-west4"\n'
            'AND resource.labels.pipeline_job_id=~"^train-(?:[0-9]{1,40}|[hk][0-9a-f]{40})$"\n'
            'AND jsonPayload.state=("PIPELINE_STATE_SUCCEEDED" OR "PIPELINE_STATE_FAILED" OR '
            '"PIPELINE_STATE_CANCELLED")'
        ),
    }
    # The sink's own identity may publish to this topic, and to nothing else.
    grants = {
        name: body
        for name, body in resources(out, "google_pubsub_topic_iam_member").items()
        if "writer_identity" in body["member"]
    }
    assert grants == {
        "train_pipeline_events_topic_sink_publisher": grants[
            "train_pipeline_events_topic_sink_publisher"
        ]
        | {
            "topic": ref("google_pubsub_topic", "train_pipeline_events_topic", "name"),
            "role": "roles/pubsub.publisher",
            "member": ref(
                "google_logging_project_sink", "train_pipeline_events_sink", "writer_identity"
            ),
        }
    }
    sub = resources(out, "google_pubsub_subscription")["train_pipeline_events_push_subscription"]
    assert sub["name"] == "train-pipeline-events-push"
    assert sub["topic"] == ref("google_pubsub_topic", "train_pipeline_events_topic", "id")
    assert sub["push_config"]["oidc_token"]["service_account_email"] == ref(
        "google_service_account", "train_push_sa", "email"
    )
    assert sub["dead_letter_policy"] == {
        "dead_letter_topic": ref("google_pubsub_topic", "train_dead_letter_topic", "id"),
        "max_delivery_attempts": 7,
    }
    assert "filter" not in sub
    subscriber = resources(out, "google_pubsub_subscription_iam_member")[
        "train_pipeline_events_pubsub_agent_subscriber"
    ]
    assert (subscriber["role"], subscriber["member"]) == ("roles/pubsub.subscriber", AGENT)


def test_the_sink_filter_is_the_handlers_job_id_pattern() -> None:
    import re

    from ai_workflow.pipeline_events import pipeline_events_filter
    from workflow_handler import events

    query = pipeline_events_filter("acme", "europe-west4", "train")
    pattern = re.search(r'pipeline_job_id=~"([^"]+)"', query)
    assert pattern is not None
    for job_id in (
        events.pipeline_job_id("train", "12345678901234567"),
        events.pipeline_job_id("train", "local/id"),
        events.keyed_pipeline_job_id("train", "a.b", "key"),
    ):
        assert re.fullmatch(pattern.group(1), job_id)
    for job_id in (
        events.pipeline_job_id("train-eu", "1"),
        events.keyed_pipeline_job_id("train-eu", "a.b", "key"),
        "train-",
        "train-1-2",
    ):
        assert not re.fullmatch(pattern.group(1), job_id)


def test_pipeline_events_props_are_validated(stack: Any) -> None:
    push = PushSubscription(stack, "push", push_props(stack))
    with pytest.raises(ConfigError) as caught:
        PipelineEvents(
            stack,
            "pipeline_events",
            PipelineEventsProps(
                name="Train",
                project_id="acme",
                region="europe-west4",
                push=push,
                dead_letter=push.dead_letter,
                pubsub_service_agent=AGENT,
            ),
        )
    assert caught.value.problems == [
        "name: got 'Train', allowed 2..24 lowercase letters, digits and hyphens"
    ]


# --- WorkflowAlerts ------------------------------------------------------------------------

CHANNEL = "projects/acme-ops/notificationChannels/42"


def test_workflow_alerts_alone_watch_the_named_subscriptions(stack: Any) -> None:
    alerts = WorkflowAlerts(
        stack,
        "alerts",
        WorkflowAlertsProps(
            name="orders",
            project_id="acme",
            push_subscriptions=("orders-push",),
            dead_letter_subscription="orders-dlq",
            oldest_unacked_age_seconds=900,
            push_error_ratio=0.25,
            notification_channels=(CHANNEL,),
            labels={"team": "ml"},
        ),
    )
    out = synth(stack)
    policies = resources(out, "google_monitoring_alert_policy")
    assert set(policies) == {
        "orders_dead_letters_alert",
        "orders_oldest_unacked_age_alert",
        "orders_push_errors_alert",
    }
    assert alerts.push_errors.node.scope is alerts
    for body in policies.values():
        assert body["notification_channels"] == [CHANNEL]
        assert body["user_labels"] == {"team": "ml"}
        assert "depends_on" not in body
    (dead,) = policies["orders_dead_letters_alert"]["conditions"]
    assert 'resource.labels.subscription_id = "orders-dlq"' in dead["condition_threshold"]["filter"]
    (age,) = policies["orders_oldest_unacked_age_alert"]["conditions"]
    assert age["condition_threshold"]["threshold_value"] == 900
    (push,) = policies["orders_push_errors_alert"]["conditions"]
    assert push["condition_threshold"]["threshold_value"] == 0.25
    assert push["display_name"] == "orders-push pushes not acknowledged above 25%"
    # Without a replay command the runbook says what to do by hand.
    content = policies["orders_dead_letters_alert"]["documentation"]["content"]
    assert "publish them again to the topic they came from" in content
    assert "make replay-dead-letters" not in content


def test_workflow_alerts_props_are_validated(stack: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        WorkflowAlerts(
            stack,
            "alerts",
            WorkflowAlertsProps(
                name="orders",
                project_id="acme",
                push_subscriptions=(),
                dead_letter_subscription="x",
                oldest_unacked_age_seconds=10,
                push_error_ratio=1,
                notification_channels=("channel-42",),
            ),
        )
    assert caught.value.problems == [
        "push_subscriptions: got none, allowed at least one subscription name",
        "dead_letter_subscription: got 'x', allowed 3..255 characters of letters, digits and "
        "-_.~+%, starting with a letter",
        "oldest_unacked_age_seconds: got 10, allowed 60..604799",
        "push_error_ratio: got 1, allowed a number greater than 0 and less than 1",
        "notification_channels[0]: got 'channel-42', allowed "
        "projects/<project>/notificationChannels/<id>",
    ]
    assert resources(synth(stack), "google_monitoring_alert_policy") == {}


# --- AiWorkflow ----------------------------------------------------------------------------


def workflow_props(stack: Any, workflow: WorkflowConfig) -> AiWorkflowProps:
    """`workflow` with the shared resources a stack would give it."""
    return AiWorkflowProps(
        workflow=workflow,
        project_id="acme",
        region="europe-west4",
        pubsub_service_agent=AGENT,
        source_bucket=bucket(stack),
        source_object_name="function-source/abc.zip",
        docker_repository_id="projects/acme/locations/europe-west4/repositories/fn",
        pipeline_root_bucket=bucket(stack, "acme-pipeline-root", id="pipeline_root"),
    )


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
    AiWorkflow(stack, "train", workflow_props(stack, workflow))
    out = synth(stack)
    assert set(resources(out, "google_pubsub_topic")) == {
        "train_trigger_topic",
        "train_results_topic",
        "train_dead_letter_topic",
        "train_pipeline_events_topic",
    }
    assert set(resources(out, "google_pubsub_subscription")) == {
        "train_push_subscription",
        "train_dead_letter_subscription",
        "train_pipeline_events_push_subscription",
    }
    assert set(resources(out, "google_logging_project_sink")) == {"train_pipeline_events_sink"}
    env = resources(out, "google_cloudfunctions2_function")["train_function"]["service_config"]
    assert env["environment_variables"]["WORKFLOW_NAME"] == "train"
    publishers = {
        body["member"]
        for body in resources(out, "google_pubsub_topic_iam_member").values()
        if body["topic"] == ref("google_pubsub_topic", "train_trigger_topic", "name")
    }
    assert publishers == {PRODUCER}


ROUTE = RouteConfig(template_uri="https://europe-west4-kfp.pkg.dev/acme/pipelines/t/v1")


def test_ai_workflow_alerts_notify_its_channels_or_are_off(stack: Any) -> None:
    props = workflow_props(stack, WorkflowConfig(name="train", routes={"model.train": ROUTE}))
    AiWorkflow(stack, "train", replace(props, notification_channels=(CHANNEL,)))
    quiet = WorkflowConfig(name="score", routes={"model.score": ROUTE}, alerts=False)
    AiWorkflow(stack, "score", replace(props, workflow=quiet))
    out = synth(stack)
    assert "score_function" in resources(out, "google_cloudfunctions2_function")
    policies = resources(out, "google_monitoring_alert_policy")
    assert set(policies) == {
        "train_dead_letters_alert",
        "train_oldest_unacked_age_alert",
        "train_push_errors_alert",
    }
    assert {tuple(body["notification_channels"]) for body in policies.values()} == {(CHANNEL,)}


def test_ai_workflow_refuses_a_bad_channel_before_creating_anything(stack: Any) -> None:
    props = workflow_props(stack, WorkflowConfig(name="train", routes={"model.train": ROUTE}))
    with pytest.raises(ConfigError) as caught:
        AiWorkflow(stack, "train", replace(props, notification_channels=("ops@acme.com",)))
    assert caught.value.problems == [
        "workflows.train.notification_channels[0]: got 'ops@acme.com', allowed "
        "projects/<project>/notificationChannels/<id>"
    ]
    assert resources(synth(stack), "google_pubsub_topic") == {}


def test_ai_workflow_props_are_validated(stack: Any) -> None:
    workflow = WorkflowConfig(name="train", routes={}, max_delivery_attempts=1)
    with pytest.raises(ConfigError) as caught:
        AiWorkflow(stack, "train", workflow_props(stack, workflow))
    assert caught.value.problems == [
        "workflows.train.max_delivery_attempts: got 1, allowed 5..100",
        "workflows.train.routes: got {}, allowed at least one event type route",
    ]


TRAIN = WorkflowConfig(
    name="train",
    routes={"model.train": RouteConfig(template_uri="https://europe-west4-kfp.pkg.dev/a/p/t/v1")},
)
KEY = "projects/sec/locations/europe-west4/keyRings/r/cryptoKeys/k"


def test_ai_workflow_with_a_key_encrypts_its_topics_function_and_jobs(stack: Any) -> None:
    props = dataclasses.replace(workflow_props(stack, TRAIN), kms_key_name=KEY)
    AiWorkflow(stack, "train", props)
    out = synth(stack)
    assert {t["kms_key_name"] for t in resources(out, "google_pubsub_topic").values()} == {KEY}
    function = resources(out, "google_cloudfunctions2_function")["train_function"]
    assert function["kms_key_name"] == KEY
    assert function["service_config"]["environment_variables"]["PIPELINE_KMS_KEY"] == KEY


def test_ai_workflow_refuses_a_key_outside_its_region(stack: Any) -> None:
    other = KEY.replace("europe-west4", "global")
    props = dataclasses.replace(workflow_props(stack, TRAIN), kms_key_name=other)
    with pytest.raises(ConfigError) as caught:
        AiWorkflow(stack, "train", props)
    assert caught.value.problems == [
        f"kms_key_name: got '{other}', allowed a key in europe-west4 (the region of the "
        "buckets, repository, function and Vertex AI jobs)"
    ]


def test_bucket_with_a_key_encrypts_new_objects_with_it(stack: Any) -> None:
    HardenedBucket(
        stack,
        "keyed",
        HardenedBucketProps(name="acme-keyed", location="europe-west4", kms_key_name=KEY),
    )
    body = resources(synth(stack), "google_storage_bucket")["keyed"]
    assert body["encryption"] == {"default_kms_key_name": KEY}


def test_ai_workflow_acknowledges_only_types_it_does_not_route(stack: Any) -> None:
    workflow = WorkflowConfig(
        name="train",
        routes={
            "model.train": RouteConfig(template_uri="https://europe-west4-kfp.pkg.dev/a/p/t/v1")
        },
    )
    props = {
        "workflow": workflow,
        "project_id": "acme",
        "region": "europe-west4",
        "pubsub_service_agent": AGENT,
        "source_bucket": bucket(stack),
        "source_object_name": "o.zip",
        "docker_repository_id": "repo",
        "pipeline_root_bucket": bucket(stack, "acme-root", id="root"),
    }
    with pytest.raises(ConfigError) as caught:
        AiWorkflow(
            stack,
            "bad",
            AiWorkflowProps(**props, ignored_event_types=("model.train", "Not A Type")),
        )
    assert caught.value.problems == [
        "workflows.train.ignored_event_types[0]: got 'model.train', allowed a type without a route",
        "workflows.train.ignored_event_types[1]: got 'Not A Type', allowed an event type",
    ]
    AiWorkflow(stack, "train", AiWorkflowProps(**props, ignored_event_types=("ingest.failed",)))
    env = resources(synth(stack), "google_cloudfunctions2_function")["train_function"]
    variables = env["service_config"]["environment_variables"]
    assert variables["IGNORED_EVENT_TYPES"] == '["ingest.failed"]'

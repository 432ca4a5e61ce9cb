"""Inventory: how many of each resource type an environment creates, and scale."""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

from environments import SCALE_WORKFLOWS

PER_WORKFLOW = {
    "google_service_account": 4,
    "google_cloudfunctions2_function": 1,
    "google_pubsub_subscription": 3,
    "google_pubsub_subscription_iam_member": 2,
    "google_logging_project_sink": 1,
    "google_cloud_run_v2_service_iam_member": 1,
    "google_service_account_iam_member": 2,
    "google_project_iam_member": 3,
    "google_artifact_registry_repository_iam_member": 1,
    "google_storage_bucket_iam_member": 2,
    # dead letters, oldest unacked age, push errors (ai_workflow/alerts.py)
    "google_monitoring_alert_policy": 3,
}


def counts(stack: dict[str, Any]) -> dict[str, int]:
    return {kind: len(items) for kind, items in stack["resource"].items()}


def expected(workflows: int, own_triggers: int, publishers: int, extra: dict[str, int]) -> dict:
    want = collections.Counter({k: v * workflows for k, v in PER_WORKFLOW.items()})
    # results, dead letter, pipeline events (+ the trigger of those that do not chain)
    want["google_pubsub_topic"] = 3 * workflows + own_triggers
    # runtime -> results + dead letter, agent -> dead letter, sink -> pipeline events, plus
    # producers.
    want["google_pubsub_topic_iam_member"] = 4 * workflows + publishers
    want.update(
        {
            "google_storage_bucket": 2,
            "google_storage_bucket_object": 1,
            "google_artifact_registry_repository": 1,
        }
    )
    want.update(extra)
    return dict(want)


def test_dev_inventory(dev: dict) -> None:
    assert counts(dev) == expected(3, 1, 1, {"google_project_service": 10})
    assert sum(counts(dev).values()) == 106


def test_prod_inventory(prod: dict) -> None:
    assert counts(prod) == expected(
        3,
        1,
        1,
        {
            "google_project_service": 12,
            # the agents of Pub/Sub, Storage, Artifact Registry, functions, Run, Vertex AI
            "google_kms_crypto_key_iam_member": 6,
            "google_secret_manager_secret_iam_member": 1,
        },
    )
    assert sum(counts(prod).values()) == 115


def test_a_stack_of_100_chained_workflows_synthesizes(scale_outdir: Path) -> None:
    stack = json.loads((scale_outdir / "stacks" / "scale" / "cdk.tf.json").read_text())
    size = SCALE_WORKFLOWS
    assert counts(stack) == expected(size, size // 5, 0, {"google_project_service": 10})
    assert sum(counts(stack).values()) == 3034
    # 100 log sinks: within Cloud Logging's 200 per project (a quota; _Default and _Required
    # count too), see ai_workflow/pipeline_events.py.
    assert len(stack["resource"]["google_logging_project_sink"]) == size
    subs = stack["resource"]["google_pubsub_subscription"]
    assert (
        subs["wf001_push_subscription"]["topic"] == "${google_pubsub_topic.wf000_results_topic.id}"
    )
    assert (
        subs["wf005_push_subscription"]["topic"] == "${google_pubsub_topic.wf005_trigger_topic.id}"
    )

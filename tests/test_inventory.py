"""Inventory: how many of each resource type an environment creates, and scale."""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

import pytest

from ai_workflow.config import parse_environment
from ai_workflow.source_bundle import build_source_bundle
from ai_workflow.synth import synth_app

ROOT = Path(__file__).resolve().parent.parent

PER_WORKFLOW = {
    "google_service_account": 4,
    "google_cloudfunctions2_function": 1,
    "google_pubsub_subscription": 2,
    "google_pubsub_subscription_iam_member": 1,
    "google_cloud_run_v2_service_iam_member": 1,
    "google_service_account_iam_member": 2,
    "google_project_iam_member": 3,
    "google_artifact_registry_repository_iam_member": 1,
    "google_storage_bucket_iam_member": 2,
}


def counts(stack: dict[str, Any]) -> dict[str, int]:
    return {kind: len(items) for kind, items in stack["resource"].items()}


def expected(workflows: int, own_triggers: int, publishers: int, extra: dict[str, int]) -> dict:
    want = collections.Counter({k: v * workflows for k, v in PER_WORKFLOW.items()})
    want["google_pubsub_topic"] = 2 * workflows + own_triggers
    # runtime -> results + dead letter, agent -> dead letter, plus producers.
    want["google_pubsub_topic_iam_member"] = 3 * workflows + publishers
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
    assert counts(dev) == expected(3, 1, 1, {"google_project_service": 9})
    assert sum(counts(dev).values()) == 81


def test_prod_inventory(prod: dict) -> None:
    assert counts(prod) == expected(
        3,
        1,
        1,
        {
            "google_project_service": 11,
            "google_kms_crypto_key_iam_member": 1,
            "google_secret_manager_secret_iam_member": 1,
        },
    )
    assert sum(counts(prod).values()) == 85


def generated_environment(workflows: int) -> dict[str, Any]:
    """`workflows` workflows in chains of five, like a long data -> train -> predict line."""
    items = []
    for i in range(workflows):
        item: dict[str, Any] = {
            "name": f"wf{i:03d}",
            "routes": {
                f"step{i}.run": {
                    "template_uri": f"https://europe-west4-kfp.pkg.dev/p/r/step{i}/v1",
                    "result_event_type": f"step{i + 1}.run",
                }
            },
        }
        if i % 5:
            item["trigger"] = f"wf{i - 1:03d}"
        items.append(item)
    return {"project_id": "acme-ai-scale", "region": "europe-west4", "workflows": items}


@pytest.mark.parametrize("size", [100])
def test_a_stack_of_100_chained_workflows_synthesizes(tmp_path: Path, size: int) -> None:
    env = parse_environment("scale", "generated", generated_environment(size))
    synth_app([env], build_source_bundle(ROOT / "function_src"), tmp_path)
    stack = json.loads((tmp_path / "stacks" / "scale" / "cdk.tf.json").read_text())
    assert counts(stack) == expected(size, size // 5, 0, {"google_project_service": 9})
    subs = stack["resource"]["google_pubsub_subscription"]
    assert (
        subs["wf001_push_subscription"]["topic"] == "${google_pubsub_topic.wf000_results_topic.id}"
    )
    assert (
        subs["wf005_push_subscription"]["topic"] == "${google_pubsub_topic.wf005_trigger_topic.id}"
    )

"""Snapshot guard on each environment's cdk.tf.json (`make snapshot-update` refreshes).

The function source hash is replaced by a placeholder so that an edit to the handler does
not churn the snapshots; test_secure_defaults checks the hash-named object itself.

The snapshots are cdktf's. On CDK Terrain (`make test-cdktn`) the stacks are compared with
the same snapshots after turning cdktn's few documented differences into cdktf's
(frameworks.as_framework: the Google provider's source and version in required_providers,
the framework version in the "//" metadata); anything else that differs fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from frameworks import as_framework, on
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from ai_workflow.source_bundle import build_source_bundle

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = Path(__file__).resolve().parent / "__snapshots__" / "test_snapshots"


@pytest.fixture()
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


def stack_with_placeholders(synth_outdir: Path, env: str) -> dict[str, Any]:
    digest = build_source_bundle(ROOT / "function_src").sha256
    text = (synth_outdir / "stacks" / env / "cdk.tf.json").read_text()
    assert digest in text
    text = text.replace(digest, "<sha256>").replace(digest[:16], "<sha256-16>")
    return dict(json.loads(text))


@pytest.mark.skipif(not on("cdktf"), reason="cdktn: compared by test_cdktn_stack_is_the_snapshot")
@pytest.mark.parametrize("env", ["dev", "prod"])
def test_stack_matches_snapshot(env: str, synth_outdir: Path, snapshot_json) -> None:
    assert stack_with_placeholders(synth_outdir, env) == snapshot_json


@pytest.mark.skipif(not on("cdktn"), reason="cdktf: compared by test_stack_matches_snapshot")
@pytest.mark.parametrize("env", ["dev", "prod"])
def test_cdktn_stack_is_the_snapshot_but_for_the_provider_and_version(
    env: str, synth_outdir: Path
) -> None:
    """Reads the committed snapshot file (never writes it: refresh snapshots on cdktf)."""
    snapshot = json.loads((SNAPSHOTS / f"test_stack_matches_snapshot[{env}].json").read_text())
    stack = stack_with_placeholders(synth_outdir, env)
    assert as_framework(stack, "cdktn", "cdktf") == snapshot

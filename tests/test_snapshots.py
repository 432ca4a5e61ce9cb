"""Snapshot guard on each environment's cdk.tf.json (`make snapshot-update` refreshes).

The function source hash is replaced by a placeholder so that an edit to the handler does
not churn the snapshots; test_secure_defaults checks the hash-named object itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from ai_workflow.source_bundle import build_source_bundle

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_stack_matches_snapshot(env: str, synth_outdir: Path, snapshot_json) -> None:
    digest = build_source_bundle(ROOT / "function_src").sha256
    text = (synth_outdir / "stacks" / env / "cdk.tf.json").read_text()
    assert digest in text
    text = text.replace(digest, "<sha256>").replace(digest[:16], "<sha256-16>")
    assert json.loads(text) == snapshot_json

"""The README's examples are true: the smallest config synthesizes, the errors read as shown."""

from __future__ import annotations

import copy
import json
import re
import tomllib
from pathlib import Path

import pytest
from stack_helpers import resources

from ai_workflow import ConfigError
from ai_workflow.config import load_environment, parse_environment
from ai_workflow.source_bundle import build_source_bundle
from ai_workflow.synth import synth_app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_smallest_example_synthesizes(tmp_path: Path) -> None:
    block = re.search(r"```toml\n(.*?)```", README, re.S)
    assert block is not None
    (tmp_path / "qa.toml").write_text(block.group(1))
    env = load_environment(tmp_path / "qa.toml")
    synth_app([env], build_source_bundle(ROOT / "function_src"), tmp_path / "out")
    stack = json.loads((tmp_path / "out" / "stacks" / "qa" / "cdk.tf.json").read_text())
    assert resources(stack, "google_pubsub_topic")["train_trigger_topic"]["name"] == "train-trigger"
    assert "train_function" in resources(stack, "google_cloudfunctions2_function")
    assert (
        resources(stack, "google_storage_bucket")["source_bucket"]["name"] == "acme-ai-qa-fn-source"
    )


def test_error_example_is_what_synth_prints() -> None:
    shown = re.findall(r"^error: (config/dev\.toml: .*)$", README, re.M)
    assert len(shown) == 2
    data = tomllib.loads((ROOT / "config" / "dev.toml").read_text())
    data = copy.deepcopy(data)
    data["workflows"][1]["ack_deadline_seconds"] = 5
    data["workflows"][2]["trigger"] = "trian"
    with pytest.raises(ConfigError) as caught:
        parse_environment("dev", "config/dev.toml", data)
    assert caught.value.problems == shown

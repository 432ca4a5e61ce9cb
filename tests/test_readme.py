"""The README's examples are true: the smallest config synthesizes, the errors read as shown."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from environments import FIXTURE_CONFIG_DIR
from stack_helpers import resources

from ai_workflow import ConfigError
from ai_workflow.source_bundle import build_source_bundle
from ai_workflow_app.config import load_environment, load_environments, parse_environment
from ai_workflow_app.synth import synth_app

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
    # The README shows the shipped example; the test-owned copy keeps it stable under edits.
    data = tomllib.loads((FIXTURE_CONFIG_DIR / "dev.toml").read_text())
    data = copy.deepcopy(data)
    data["workflows"][1]["ack_deadline_seconds"] = 5
    data["workflows"][2]["trigger"] = "trian"
    with pytest.raises(ConfigError) as caught:
        parse_environment("dev", "config/dev.toml", data)
    assert caught.value.problems == shown


def bench_summary(text: str) -> str | None:
    begin = text.find("<!-- bench-summary:")
    end = text.find("<!-- /bench-summary -->")
    return None if begin < 0 or end < begin else text[begin:end]


def load_run_bench(monkeypatch: pytest.MonkeyPatch) -> Any:
    spec = importlib.util.spec_from_file_location("run_bench", ROOT / "bench" / "run_bench.py")
    assert spec is not None and spec.loader is not None
    run_bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "run_bench", run_bench)  # dataclasses look it up
    spec.loader.exec_module(run_bench)
    return run_bench


def test_make_bench_replaces_only_the_quoted_block(monkeypatch: pytest.MonkeyPatch) -> None:
    run_bench = load_run_bench(monkeypatch)
    begin, end = run_bench.SUMMARY_BEGIN, run_bench.SUMMARY_END
    readme = f"intro\n{begin}\nold figures\n{end}\noutro\n"
    results = f"# Synth benchmark\n{begin}\nnew figures\n{end}\nmore tables\n"
    assert (
        run_bench.quote_summary(readme, results) == f"intro\n{begin}\nnew figures\n{end}\noutro\n"
    )
    assert run_bench.quote_summary("no markers\n", results) == "no markers\n"


def test_the_performance_figures_are_the_ones_make_bench_wrote(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    written = bench_summary((ROOT / "bench" / "results.md").read_text(encoding="utf-8"))
    quoted = bench_summary(README)
    assert written is not None, "bench/results.md has no summary block: run `make bench`"
    assert quoted is not None, "README.md does not quote the bench summary block"
    assert quoted == written
    # The block is real data: the raw samples saved next to it render to the same block.
    run_bench = load_run_bench(monkeypatch)
    samples = json.loads((ROOT / "bench" / "results.json").read_text(encoding="utf-8"))
    assert samples["runs"] >= 5
    assert set(samples["scaling"]) == {"1", "10", "50", "100"}
    assert bench_summary(run_bench.render_samples(samples)) == written


def test_the_handler_load_figures_are_in_the_summary_once_measured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_bench = load_run_bench(monkeypatch)
    samples = json.loads((ROOT / "bench" / "results.json").read_text(encoding="utf-8"))
    latency = {"p50_ms": 50.4, "p99_ms": 102.1, "max_ms": 160.1}
    samples["handler_load"] = {
        "deliveries": 2000,
        "senders": 16,
        "kinds": {"valid": 976, "duplicate": 393, "keyed_copy": 208, "poison": 423},
        "jobs": 976,
        "dead_letters": 423,
        "wall_s": 6.71,
        "per_second": 298.1,
        "latency": latency,
        "latency_by_kind": {
            kind: latency for kind in ("valid", "duplicate", "keyed_copy", "poison")
        },
        "server_peak_rss_mb": {"server": 35.8, "worker": 37.6, "total": 73.4},
    }
    text = run_bench.render_samples(samples)
    summary = bench_summary(text)
    assert summary is not None
    assert summary.splitlines()[-1] == (
        "Handler under load (2000 deliveries from 16 senders): p50 50.4 ms, p99 102.1 ms, "
        "server peak RSS 73.4 MB."
    )
    assert "| poison | 423 | 50.4 | 102.1 | 160.1 |" in text
    assert "Server peak RSS (VmHWM): 73.4 MB (arbiter 35.8 MB, worker 37.6 MB)." in text


def test_library_snippet_runs_as_shown(tmp_path: Path) -> None:
    """The Python snippet, saved and run with the README's command, synthesizes on Node 22."""
    toml = re.search(r"This is a complete `config/qa.toml`:\n\n```toml\n(.*?)```", README, re.S)
    snippet = re.search(r"```python\n(from pathlib.*?)```", README, re.S)
    command = re.search(r"```sh\n(JSII_NODE=\S+) (\S+) my_app\.py", README)
    assert toml and snippet and command
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "qa.toml").write_text(toml.group(1))
    (tmp_path / "my_app.py").write_text(snippet.group(1))
    for shared in ("function_src", "node_modules", ".venv"):
        (tmp_path / shared).symlink_to(ROOT / shared)
    variable, value = command.group(1).split("=", 1)
    env = {k: v for k, v in os.environ.items() if k != variable} | {variable: value}
    result = subprocess.run(
        [command.group(2), "my_app.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "b'" not in result.stderr and "end-of-life" not in result.stderr, result.stderr
    stack = json.loads((tmp_path / "cdktf.out" / "stacks" / "qa" / "cdk.tf.json").read_text())
    assert "train_function" in resources(stack, "google_cloudfunctions2_function")


def test_runtime_mistakes_example_is_what_synth_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """qa.toml copied from dev.toml: region typo, a chained route deleted, same project."""
    shown = re.findall(r"^error: (config/qa\.toml: .*)$", README, re.M)
    assert len(shown) == 3
    config = tmp_path / "config"
    config.mkdir()
    dev = (FIXTURE_CONFIG_DIR / "dev.toml").read_text()
    (config / "dev.toml").write_text(dev)
    qa = dev.replace('region = "europe-west4"', 'region = "europe-wset4"')
    route = qa.index('[workflows.routes."model.train"]')
    qa = qa[:route] + qa[qa.index('[workflows.routes."model.retrain"]') :]
    (config / "qa.toml").write_text(qa)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_environments([Path("config/dev.toml"), Path("config/qa.toml")])
    assert caught.value.problems == shown

"""`make diagram`: the Mermaid diagram of a stack shows exactly what its Terraform JSON declares
(every topic, subscription, function and sink; every delivery, push, dead-letter, sink route,
publisher and invoker relation; nothing else), is deterministic, ignores resource types it does
not draw, and the README and docs/diagrams/ hold what it writes: for config/ as it is, or for
the shipped example (tests/fixtures/config/, the copy of config/ the tests own), so a team's
own edits to config/ never break the suite before they run `make diagram`."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from environments import ENVIRONMENTS, EXAMPLE_ENVIRONMENTS, ROOT
from stack_helpers import resources

TOOLS = ROOT / "tools"
if str(TOOLS) not in sys.path:
    sys.path.append(str(TOOLS))

import diagram  # noqa: E402

README = ROOT / "README.md"
DOCS = ROOT / "docs" / "diagrams"
NODE = re.compile(r"^ +([a-z]+_\w+)(?:>|\(\[|\[/|\[|\{\{)\"(.*)\"(?:\]|\]\)|/\]|\}\})$", re.M)
EDGE = re.compile(r"^ +(\w+) (-->|-\.->)\|([a-z ]+)\| (\w+)$", re.M)
SUBGRAPH = re.compile(
    r"^    subgraph (\w+)\[\"workflow ([^\"]+)\"\]\n((?:        .*\n)*)    end$", re.M
)
LANDING = "id_serviceaccount_data_landing_acme_ai_dev_iam_gserviceaccount_com"
FLOW = {"delivers", "push", "dead letter", "routes"}


def parsed(mermaid: str) -> tuple[dict[str, str], set[tuple[str, str, str]]]:
    """The node ids with their labels and the (source, kind, target) edges of a flowchart."""
    nodes = dict(NODE.findall(mermaid))
    edges = set()
    for source, arrow, kind, target in EDGE.findall(mermaid):
        assert arrow == ("-->" if kind in FLOW else "-.->"), (source, kind, target)
        edges.add((source, kind, target))
    declared = len([line for line in mermaid.splitlines() if line.startswith("    ")])
    subgraphs = len(SUBGRAPH.findall(mermaid))
    assert declared == len(nodes) + len(edges) + 2 * subgraphs, "a line the test cannot read"
    return nodes, edges


def ref(value: str, rtype: str) -> str:
    """The resource name in `${rtype.<name>.attr}` (the test reads only the forms cdktf
    writes for this project's stacks, independently of the tool)."""
    match = re.search(rf"\$\{{{rtype}\.([\w-]+)\.", value)
    assert match, (value, rtype)
    return match.group(1)


def member_node(member: str) -> str:
    if member.startswith("${google_service_account."):
        return "id_" + ref(member, "google_service_account")
    if member.startswith("${google_logging_project_sink."):
        return "sink_" + ref(member, "google_logging_project_sink")
    if "@gcp-sa-pubsub.iam.gserviceaccount.com" in member:
        return "id_pubsub_service_agent"
    assert "${" not in member, member
    return "id_" + re.sub(r"[^a-z0-9_]", "_", member.lower())


def expected(stack: dict[str, Any]) -> tuple[set[str], set[tuple[str, str, str]]]:
    """Every node and edge the diagram of `stack` must have, read straight off the JSON."""
    topic = "google_pubsub_topic"
    function = "google_cloudfunctions2_function"
    nodes = {f"topic_{n}" for n in resources(stack, topic)}
    nodes |= {f"sub_{n}" for n in resources(stack, "google_pubsub_subscription")}
    nodes |= {f"fn_{n}" for n in resources(stack, function)}
    nodes |= {f"sink_{n}" for n in resources(stack, "google_logging_project_sink")}
    edges = set()
    for name, body in resources(stack, "google_pubsub_subscription").items():
        edges.add((f"topic_{ref(body['topic'], topic)}", "delivers", f"sub_{name}"))
        if "push_config" in body:
            target = ref(body["push_config"]["push_endpoint"], function)
            edges.add((f"sub_{name}", "push", f"fn_{target}"))
        if "dead_letter_policy" in body:
            dead_letter = ref(body["dead_letter_policy"]["dead_letter_topic"], topic)
            edges.add((f"sub_{name}", "dead letter", f"topic_{dead_letter}"))
    for name, body in resources(stack, "google_logging_project_sink").items():
        edges.add((f"sink_{name}", "routes", f"topic_{ref(body['destination'], topic)}"))
    for body in resources(stack, "google_pubsub_topic_iam_member").values():
        if body["role"] == "roles/pubsub.publisher":
            target = f"topic_{ref(body['topic'], topic)}"
            edges.add((member_node(body["member"]), "publisher", target))
    for body in resources(stack, "google_cloud_run_v2_service_iam_member").values():
        if body["role"] == "roles/run.invoker":
            edges.add((member_node(body["member"]), "invoker", f"fn_{ref(body['name'], function)}"))
    nodes |= {source for source, _, _ in edges}
    return nodes, edges


def drawn(stack: dict[str, Any]) -> tuple[dict[str, str], set[tuple[str, str, str]]]:
    return parsed(diagram.render(diagram.build_graph(stack)))


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_diagram_is_exactly_the_stacks_resources_and_relations(
    stacks: dict[str, dict[str, Any]], env: str
) -> None:
    nodes, edges = drawn(stacks[env])
    want_nodes, want_edges = expected(stacks[env])
    assert set(nodes) == want_nodes
    assert edges == want_edges


def test_dev_in_detail(dev: dict[str, Any]) -> None:
    nodes, edges = drawn(dev)
    # 10 topics, 9 subscriptions, 3 functions, 3 sinks; 6 runtime and push SAs, the Pub/Sub
    # service agent and the one external publisher.
    assert len(nodes) == 10 + 9 + 3 + 3 + 6 + 2
    assert nodes["topic_ingest_trigger_topic"] == "topic ingest-trigger"
    assert nodes["sub_train_push_subscription"] == "push subscription train-push"
    assert nodes["sub_train_dead_letter_subscription"] == "subscription train-dead-letter-pull"
    assert nodes["fn_train_function"] == "function train-handler"
    assert nodes["sink_train_pipeline_events_sink"] == "sink train-pipeline-events"
    assert nodes["id_train_push_sa"] == "SA train-push"
    assert nodes["id_pubsub_service_agent"] == "Pub/Sub service agent"
    landing = "serviceAccount:data-landing@acme-ai-dev.iam.gserviceaccount.com"
    assert nodes[LANDING] == landing
    assert {
        # The chain: train is pushed from ingest's results topic.
        ("topic_ingest_results_topic", "delivers", "sub_train_push_subscription"),
        ("sub_train_push_subscription", "push", "fn_train_function"),
        ("sub_train_push_subscription", "dead letter", "topic_train_dead_letter_topic"),
        # The pipeline-events path: sink -> topic -> push subscription -> the same handler.
        ("sink_train_pipeline_events_sink", "routes", "topic_train_pipeline_events_topic"),
        ("sink_train_pipeline_events_sink", "publisher", "topic_train_pipeline_events_topic"),
        ("topic_train_pipeline_events_topic", "delivers", "sub_train_pipeline_events_push_subscription"),  # noqa: E501
        ("sub_train_pipeline_events_push_subscription", "push", "fn_train_function"),
        # Grants.
        ("id_train_push_sa", "invoker", "fn_train_function"),
        ("id_train_runtime_sa", "publisher", "topic_train_results_topic"),
        ("id_train_runtime_sa", "publisher", "topic_train_dead_letter_topic"),
        ("id_pubsub_service_agent", "publisher", "topic_train_dead_letter_topic"),
        (LANDING, "publisher", "topic_ingest_trigger_topic"),
    } <= edges  # fmt: skip
    assert len(edges) == 9 + 6 + 6 + 3 + 13 + 3
    # Nobody is granted invoker or publisher who the JSON does not grant it.
    assert {s for s, kind, t in edges if kind == "invoker"} == {
        "id_batch_predict_push_sa",
        "id_ingest_push_sa",
        "id_train_push_sa",
    }


def test_one_subgraph_per_workflow_with_its_own_resources(dev: dict[str, Any]) -> None:
    mermaid = diagram.render(diagram.build_graph(dev))
    groups = {
        label: {n for n, _ in NODE.findall(body)} for _, label, body in SUBGRAPH.findall(mermaid)
    }
    assert set(groups) == {"batch-predict", "ingest", "train"}
    assert "sub_train_push_subscription" in groups["train"]  # its topic is ingest's
    assert "topic_ingest_results_topic" in groups["ingest"]
    assert "sink_train_pipeline_events_sink" in groups["train"]
    assert "id_train_push_sa" in groups["train"]
    everywhere = set().union(*groups.values())
    shared = set(parsed(mermaid)[0]) - everywhere
    assert shared == {
        "id_pubsub_service_agent",
        LANDING,
    }


def test_a_100_workflow_stack_is_drawn_the_same_way(scale_outdir: Path) -> None:
    stack = json.loads((scale_outdir / "stacks" / "scale" / "cdk.tf.json").read_text())
    nodes, edges = drawn(stack)
    want_nodes, want_edges = expected(stack)
    assert set(nodes) == want_nodes and edges == want_edges
    assert (
        len(re.findall(r"^    subgraph ", diagram.render(diagram.build_graph(stack)), re.M)) == 100
    )


def test_resource_types_it_does_not_draw_are_ignored(dev: dict[str, Any]) -> None:
    """Other scopes add resources (alert policies, key grants, backends): no node, no crash."""
    more = copy.deepcopy(dev)
    more["resource"]["google_monitoring_alert_policy"] = {
        "train_dead_letters": {"display_name": "x", "conditions": [{"filter": "${var.x}"}]}
    }
    more["resource"]["google_kms_crypto_key_iam_member"] = {
        "agent": {"crypto_key_id": "k", "member": "${data.google_project.p.number}", "role": "r"}
    }
    more["resource"]["google_pubsub_topic_iam_member"]["viewer"] = {
        "member": "${google_service_account.train_runtime_sa.member}",
        "role": "roles/pubsub.viewer",
        "topic": "${google_pubsub_topic.train_results_topic.name}",
    }
    more["resource"]["google_cloud_run_v2_service_iam_member"]["viewer"] = {
        "member": "${google_service_account.train_runtime_sa.member}",
        "name": "${google_cloudfunctions2_function.train_function.name}",
        "role": "roles/run.viewer",
    }
    more["resource"]["future_kind"] = {"odd": {"topic": 3, "member": None}}
    more["resource"]["not_an_object"] = ["x"]
    more["terraform"]["cloud"] = {"organization": "acme", "workspaces": {"name": "dev"}}
    assert diagram.render(diagram.build_graph(more)) == diagram.render(diagram.build_graph(dev))


def test_the_same_json_in_any_key_order_gives_the_same_bytes(dev: dict[str, Any]) -> None:
    shuffled = {
        "resource": {
            rtype: dict(reversed(list(bodies.items())))
            for rtype, bodies in reversed(list(dev["resource"].items()))
        }
    }
    first = diagram.render(diagram.build_graph(dev))
    assert diagram.render(diagram.build_graph(shuffled)) == first
    assert diagram.render(diagram.build_graph(json.loads(json.dumps(dev)))) == first


def test_literal_names_and_external_endpoints() -> None:
    """Written by hand (not this project's constructs): literal topic paths and function
    names resolve to this stack's resources; an endpoint outside it is its own node."""
    stack = {
        "resource": {
            "google_pubsub_topic": {"in": {"name": "orders"}},
            "google_cloudfunctions2_function": {"fn": {"name": "orders-handler"}},
            "google_pubsub_subscription": {
                "external": {
                    "name": "orders-hook",
                    "topic": "projects/acme/topics/orders",
                    "push_config": {"push_endpoint": "https://hooks.example.com/orders"},
                }
            },
            "google_cloud_run_v2_service_iam_member": {
                "invoker": {
                    "name": "orders-handler",
                    "role": "roles/run.invoker",
                    "member": "user:ops@example.com",
                }
            },
            "google_pubsub_topic_iam_member": {
                "channel": {
                    "topic": "orders",
                    "role": "roles/pubsub.publisher",
                    "member": "${google_project_service_identity.monitoring.member}",
                }
            },
        }
    }
    nodes, edges = drawn(stack)
    assert nodes["url_https___hooks_example_com_orders"] == "https://hooks.example.com/orders"
    assert edges == {
        ("topic_in", "delivers", "sub_external"),
        ("sub_external", "push", "url_https___hooks_example_com_orders"),
        ("id_user_ops_example_com", "invoker", "fn_fn"),
        ("id_google_project_service_identity_monitoring", "publisher", "topic_in"),
    }
    assert nodes["id_google_project_service_identity_monitoring"] == (
        "google_project_service_identity.monitoring"
    )


# --- what make diagram wrote ------------------------------------------------------------------


def readme_block() -> str | None:
    text = README.read_text(encoding="utf-8")
    begin, end = text.find(diagram.README_BEGIN), text.find(diagram.README_END)
    return None if begin < 0 or end < begin else text[begin + len(diagram.README_BEGIN) + 1 : end]


def drawn_for(env: str, *stacks_by_env: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The stacks of `env` that the committed diagrams may show: config/'s as it is now,
    and the shipped example's (the test-owned copy)."""
    return [by_env[env] for by_env in stacks_by_env if env in by_env]


def test_the_readme_shows_what_make_diagram_writes(
    example_stacks: dict[str, dict[str, Any]], stacks: dict[str, dict[str, Any]]
) -> None:
    want = [
        diagram.mermaid_block(stack)
        for stack in drawn_for(diagram.README_ENV, example_stacks, stacks)
    ]
    assert readme_block() in want, (
        "README.md's diagram is not what make diagram writes for config/dev.toml (nor for the "
        "shipped example, tests/fixtures/config/dev.toml): run make diagram"
    )


@pytest.mark.parametrize("env", sorted(set(ENVIRONMENTS) | set(EXAMPLE_ENVIRONMENTS)))
def test_docs_diagrams_are_what_make_diagram_writes(
    example_stacks: dict[str, dict[str, Any]], stacks: dict[str, dict[str, Any]], env: str
) -> None:
    """Every shipped environment has its page; an environment a team adds to config/ has one
    once they run make diagram."""
    page = DOCS / f"{env}.md"
    if env not in ENVIRONMENTS and not page.exists():
        pytest.skip(f"config/{env}.toml is not drawn yet (make diagram draws it)")
    assert page.exists(), f"{page.relative_to(ROOT)} is missing: run make diagram"
    want = [diagram.diagram_page(env, stack) for stack in drawn_for(env, example_stacks, stacks)]
    assert page.read_text(encoding="utf-8") in want, (
        f"{page.relative_to(ROOT)} is not what make diagram writes for config/{env}.toml "
        "(nor for the shipped example): run make diagram"
    )


def test_no_diagram_of_an_environment_that_is_gone() -> None:
    drawn = {p.stem for p in DOCS.glob("*.md")}
    assert drawn >= set(ENVIRONMENTS), "docs/diagrams/ lacks a shipped environment"
    assert drawn <= set(ENVIRONMENTS) | set(EXAMPLE_ENVIRONMENTS), (
        "docs/diagrams/ has a page for an environment config/ no longer has: remove it"
    )


# --- the command line -------------------------------------------------------------------------


def run_diagram(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOLS / "diagram.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def project(tmp_path: Path, dev: dict[str, Any]) -> Path:
    """A project folder with a synthesized dev stack and a README with the markers."""
    stack = tmp_path / "cdktf.out" / "stacks" / "dev" / "cdk.tf.json"
    stack.parent.mkdir(parents=True)
    stack.write_text(json.dumps(dev))
    (tmp_path / "README.md").write_text(
        f"intro\n{diagram.README_BEGIN}\nold\n{diagram.README_END}\noutro\n"
    )
    return tmp_path


def test_writes_the_page_and_the_readme_block_then_nothing_changes(
    project: Path, dev: dict[str, Any]
) -> None:
    first = run_diagram(project, "--env", "dev")
    assert first.returncode == 0, first.stderr
    assert first.stdout == ("diagram: README.md written\ndiagram: docs/diagrams/dev.md written\n")
    block = diagram.mermaid_block(dev)
    readme = (project / "README.md").read_text()
    assert readme == f"intro\n{diagram.README_BEGIN}\n{block}{diagram.README_END}\noutro\n"
    assert (project / "docs" / "diagrams" / "dev.md").read_text() == diagram.diagram_page(
        "dev", dev
    )
    again = run_diagram(project, "--env", "dev")
    assert again.stdout == (
        "diagram: README.md unchanged\ndiagram: docs/diagrams/dev.md unchanged\n"
    )
    assert run_diagram(project, "--env", "dev", "--check").returncode == 0


def test_check_names_the_stale_file_and_says_run_make_diagram(project: Path) -> None:
    result = run_diagram(project, "--env", "dev", "--check")
    assert result.returncode == 1
    assert result.stderr == (
        "diagram: README.md is out of date; run make diagram\n"
        "diagram: docs/diagrams/dev.md is out of date; run make diagram\n"
    )
    assert not (project / "docs").exists()


def test_a_missing_stack_is_one_line_and_nothing_is_written(project: Path) -> None:
    before = (project / "README.md").read_text()
    result = run_diagram(project, "--env", "dev", "--env", "qa")
    assert result.returncode == 2
    assert result.stderr == (
        "diagram: error: cdktf.out/stacks/qa/cdk.tf.json: not found; run make synth ENV=qa\n"
    )
    assert result.stdout == ""
    assert (project / "README.md").read_text() == before
    assert not (project / "docs").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a readable JSON file (Expecting property name enclosed in double"),
        ('["a list"]', "not a Terraform JSON stack (no `resource` object)"),
        ('{"resource": 3}', "not a Terraform JSON stack (no `resource` object)"),
    ],
)
def test_an_unreadable_stack_is_one_line(project: Path, content: str, message: str) -> None:
    (project / "cdktf.out" / "stacks" / "dev" / "cdk.tf.json").write_text(content)
    result = run_diagram(project, "--env", "dev")
    assert result.returncode == 2
    assert result.stderr.startswith(f"diagram: error: cdktf.out/stacks/dev/cdk.tf.json: {message}")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_bad_arguments_are_one_line(project: Path) -> None:
    result = run_diagram(project, "--env", "../dev")
    assert (result.returncode, result.stderr) == (
        2,
        "diagram: error: --env: got '../dev', allowed an environment name (config/<env>.toml)\n",
    )
    (project / "README.md").write_text("no markers\n")
    result = run_diagram(project, "--env", "dev")
    assert (result.returncode, result.stderr) == (
        2,
        f"diagram: error: README.md: no {diagram.README_BEGIN} ... {diagram.README_END} markers\n",
    )
    assert run_diagram(project, "--env", "dev", "--no-readme").returncode == 0


def test_make_diagram_synthesizes_then_draws_every_environment() -> None:
    def dry_run(*args: str) -> str:
        return subprocess.run(
            ["make", "--no-print-directory", "-n", "--always-make", "diagram", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout

    every = " ".join(f'--env "{env}"' for env in EXAMPLE_ENVIRONMENTS)
    out = dry_run()
    assert out.index(".venv/bin/python main.py") < out.index(f"tools/diagram.py {every}\n")
    assert 'main.py --env "qa"\n' in dry_run("ENV=qa")
    assert 'tools/diagram.py --env "qa"\n' in dry_run("ENV=qa")

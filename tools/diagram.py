"""One Mermaid diagram per synthesized stack, drawn from its Terraform JSON, never from config/.

    make diagram                      # synthesizes, then writes docs/diagrams/<env>.md for
                                      # every config/<env>.toml and the README's dev block
    .venv/bin/python tools/diagram.py --env dev [--env prod] [--outdir cdktf.out]
        [--docs docs/diagrams] [--readme README.md] [--check]

It draws what `cdktf.out/stacks/<env>/cdk.tf.json` declares: topics, subscriptions, functions,
log sinks and the identities granted on them, with the relations between them (a subscription's
topic, push endpoint and dead-letter topic, a sink's destination, publisher and invoker grants).
Every other resource type is left out, so new kinds of resources never break it. Node ids come
from Terraform addresses and everything is sorted: the same JSON gives the same bytes.

A missing or unreadable stack is one line, exit 2, and nothing is written. `--check` writes
nothing and exits 1 if a file is not what it would write.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from twin.stack import Address, StackError, parse_reference

PROG = "diagram"
ROOT = Path(__file__).resolve().parent.parent
README_ENV = "dev"
"""The environment whose diagram the README embeds."""
README_BEGIN = "<!-- diagram: written by make diagram from cdktf.out/stacks/dev/cdk.tf.json -->"
README_END = "<!-- /diagram -->"

# Node kinds in drawing order, each with its id prefix and Mermaid shape.
KINDS: dict[str, tuple[str, str, str]] = {
    "identity": ("id", '>"{}"]', "identity"),
    "topic": ("topic", '(["{}"])', "topic"),
    "subscription": ("sub", '["{}"]', "subscription"),
    "function": ("fn", '{{{{"{}"}}}}', "function"),
    "sink": ("sink", '[/"{}"/]', "log sink"),
    "endpoint": ("url", '["{}"]', "push endpoint"),
}
# Edge kinds in drawing order: message flow is solid, IAM grants are dotted.
EDGES: dict[str, str] = {
    "delivers": "-->",
    "push": "-->",
    "dead letter": "-->",
    "routes": "-->",
    "publisher": "-.->",
    "invoker": "-.->",
}
PUBLISHER = "roles/pubsub.publisher"
INVOKER = "roles/run.invoker"
_INTERPOLATION = re.compile(r"\$\{([^}]*)\}")
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
_PUBSUB_AGENT = re.compile(r"^serviceAccount:service-.*@gcp-sa-pubsub\.iam\.gserviceaccount\.com$")


class DiagramError(Exception):
    """A stack the diagram cannot be drawn from; the message is one line."""


@dataclass(frozen=True, order=True)
class Node:
    group: str
    """The workflow it belongs to ("" for the stack's shared parts)."""
    kind: str
    id: str
    label: str


@dataclass(frozen=True, order=True)
class Edge:
    kind: str
    source: str
    target: str


@dataclass
class Graph:
    nodes: dict[str, Node]
    edges: set[Edge]


def node_id(kind: str, name: str) -> str:
    """`topic_ingest_trigger_topic` for google_pubsub_topic.ingest_trigger_topic."""
    return f"{KINDS[kind][0]}_{_UNSAFE.sub('_', name)}"


def _references(value: Any) -> Iterator[tuple[Address, list[str | int]]]:
    """The plain references (`${type.name.attr}`) in a string; expressions are skipped."""
    if isinstance(value, str):
        for expression in _INTERPOLATION.findall(value):
            try:
                yield parse_reference(expression)
            except StackError:
                continue


def _referenced(value: Any, rtype: str) -> str | None:
    """The name of the `rtype` resource `value` refers to, if it refers to one."""
    for address, _ in _references(value):
        if address.type == rtype and not address.data:
            return address.name
    return None


def _group(body: dict[str, Any]) -> str:
    """A resource's workflow: its `workflow` label, else the construct path's second part
    (`dev/<workflow>/...`, as cdktf records it), else the stack ("")."""
    labels = body.get("labels")
    if isinstance(labels, dict) and isinstance(labels.get("workflow"), str):
        return str(labels["workflow"])
    path = str(body.get("//", {}).get("metadata", {}).get("path", ""))
    parts = path.split("/")
    return parts[1] if len(parts) > 2 else ""


def _literal(body: dict[str, Any], key: str, fallback: str) -> str:
    value = body.get(key)
    return value if isinstance(value, str) and "${" not in value else fallback


class _Builder:
    """Reads one stack's resources into a Graph."""

    def __init__(self, doc: dict[str, Any]) -> None:
        resources = doc.get("resource", {})
        self.resources: dict[str, dict[str, Any]] = {
            rtype: {n: b for n, b in bodies.items() if isinstance(b, dict)}
            for rtype, bodies in (resources.items() if isinstance(resources, dict) else [])
            if isinstance(bodies, dict)
        }
        self.graph = Graph(nodes={}, edges=set())

    def of_type(self, rtype: str) -> list[tuple[str, dict[str, Any]]]:
        return sorted(self.resources.get(rtype, {}).items())

    def add(self, kind: str, name: str, group: str, label: str) -> str:
        nid = node_id(kind, name)
        self.graph.nodes.setdefault(nid, Node(group, kind, nid, label))
        return nid

    def edge(self, kind: str, source: str, target: str) -> None:
        self.graph.edges.add(Edge(kind, source, target))

    def topic(self, value: Any) -> str | None:
        """The topic node a subscription's `topic`, a dead-letter policy or a sink's
        destination names: a reference, or a literal `projects/p/topics/t` of this stack."""
        name = _referenced(value, "google_pubsub_topic")
        if name is None and isinstance(value, str):
            short = value.rsplit("/", 1)[-1]
            for candidate, body in self.of_type("google_pubsub_topic"):
                if body.get("name") == short:
                    name = candidate
        if name is None or name not in self.resources.get("google_pubsub_topic", {}):
            return None
        return node_id("topic", name)

    def function(self, value: Any) -> str | None:
        """The function a push endpoint or an invoker grant's service names (by reference,
        or by the literal name of a function in this stack)."""
        name = _referenced(value, "google_cloudfunctions2_function")
        if name is None and isinstance(value, str):
            for candidate, body in self.of_type("google_cloudfunctions2_function"):
                if body.get("name") == value:
                    name = candidate
        functions = self.resources.get("google_cloudfunctions2_function", {})
        return node_id("function", name) if name in functions else None

    def member(self, member: Any) -> str:
        """The node of an IAM member: a service account or log sink of this stack, the Pub/Sub
        service agent, another resource's identity (by its address), or the member as written."""
        accounts = self.resources.get("google_service_account", {})
        account = _referenced(member, "google_service_account")
        if account in accounts:
            body = accounts[account]
            label = f"SA {_literal(body, 'account_id', account)}"
            return self.add("identity", account, _group(body), label)
        sink = _referenced(member, "google_logging_project_sink")
        if sink in self.resources.get("google_logging_project_sink", {}):
            return node_id("sink", sink)
        text = str(member)
        if _PUBSUB_AGENT.match(text):
            return self.add("identity", "pubsub_service_agent", "", "Pub/Sub service agent")
        other = next(_references(text), None)
        if other is not None and text == f"${{{other[0]}.{'.'.join(map(str, other[1]))}}}":
            return self.add("identity", f"{other[0].type}_{other[0].name}", "", str(other[0]))
        return self.add("identity", text.lower(), "", text)

    def build(self) -> Graph:
        for name, body in self.of_type("google_pubsub_topic"):
            self.add("topic", name, _group(body), f"topic {_literal(body, 'name', name)}")
        for name, body in self.of_type("google_cloudfunctions2_function"):
            self.add("function", name, _group(body), f"function {_literal(body, 'name', name)}")
        for name, body in self.of_type("google_logging_project_sink"):
            sink = self.add("sink", name, _group(body), f"sink {_literal(body, 'name', name)}")
            destination = self.topic(body.get("destination"))
            if destination:
                self.edge("routes", sink, destination)
        for name, body in self.of_type("google_pubsub_subscription"):
            self.subscription(name, body)
        for rtype in ("google_pubsub_topic_iam_member", "google_pubsub_topic_iam_binding"):
            for _, body in self.of_type(rtype):
                topic = self.topic(body.get("topic"))
                if topic and body.get("role") == PUBLISHER:
                    for member in _members(body):
                        self.edge("publisher", self.member(member), topic)
        for rtype, key in (
            ("google_cloud_run_v2_service_iam_member", "name"),
            ("google_cloud_run_service_iam_member", "service"),
            ("google_cloudfunctions2_function_iam_member", "cloud_function"),
        ):
            for _, body in self.of_type(rtype):
                function = self.function(body.get(key))
                if function and body.get("role") == INVOKER:
                    for member in _members(body):
                        self.edge("invoker", self.member(member), function)
        return self.graph

    def subscription(self, name: str, body: dict[str, Any]) -> None:
        kind = "push subscription" if body.get("push_config") else "subscription"
        sub = self.add("subscription", name, _group(body), f"{kind} {body.get('name', name)}")
        topic = self.topic(body.get("topic"))
        if topic:
            self.edge("delivers", topic, sub)
        push = _block(body.get("push_config"))
        endpoint = push.get("push_endpoint")
        if endpoint:
            target = self.function(endpoint) or self.add(
                "endpoint", str(endpoint).lower(), _group(body), str(endpoint)
            )
            self.edge("push", sub, target)
        dead_letter = self.topic(_block(body.get("dead_letter_policy")).get("dead_letter_topic"))
        if dead_letter:
            self.edge("dead letter", sub, dead_letter)


def _block(value: Any) -> dict[str, Any]:
    """A nested block as cdktf writes it (an object) or as HCL JSON may (a list of one)."""
    if isinstance(value, list):
        value = value[0] if value else {}
    return value if isinstance(value, dict) else {}


def _members(body: dict[str, Any]) -> list[Any]:
    members = body.get("members")
    return list(members) if isinstance(members, list) else [body.get("member")]


def build_graph(doc: dict[str, Any]) -> Graph:
    """What the diagram shows of one stack's Terraform JSON."""
    return _Builder(doc).build()


def _quote(label: str) -> str:
    return label.replace('"', "#quot;")


def render(graph: Graph) -> str:
    """The Mermaid flowchart: one subgraph per workflow, shared parts outside, sorted."""
    kinds = list(KINDS)
    lines = ["flowchart LR"]
    nodes = sorted(graph.nodes.values(), key=lambda n: (n.group, kinds.index(n.kind), n.id))
    groups = sorted({node.group for node in nodes})
    for group in groups:
        members = [node for node in nodes if node.group == group]
        indent = "    "
        if group:
            lines.append(f'    subgraph wf_{_UNSAFE.sub("_", group)}["workflow {group}"]')
            indent = "        "
        for node in members:
            lines.append(f"{indent}{node.id}{KINDS[node.kind][1].format(_quote(node.label))}")
        if group:
            lines.append("    end")
    edge_kinds = list(EDGES)
    for edge in sorted(graph.edges, key=lambda e: (edge_kinds.index(e.kind), e.source, e.target)):
        lines.append(f"    {edge.source} {EDGES[edge.kind]}|{edge.kind}| {edge.target}")
    return "\n".join(lines) + "\n"


def stack_path(outdir: Path, env: str) -> Path:
    return outdir / "stacks" / env / "cdk.tf.json"


def load_stack(path: Path, env: str, shown: str) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DiagramError(f"{shown}: not found; run make synth ENV={env}") from None
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DiagramError(f"{shown}: not a readable JSON file ({reason})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("resource", {}), dict):
        raise DiagramError(f"{shown}: not a Terraform JSON stack (no `resource` object)")
    return doc


def mermaid_block(doc: dict[str, Any]) -> str:
    return f"```mermaid\n{render(build_graph(doc))}```\n"


def diagram_page(env: str, doc: dict[str, Any]) -> str:
    """docs/diagrams/<env>.md."""
    return (
        f"# The `{env}` stack\n\n"
        f"Written by `make diagram` from `cdktf.out/stacks/{env}/cdk.tf.json`; do not edit.\n"
        "Solid arrows carry messages (a topic delivers to its subscriptions, a push subscription\n"
        "pushes to its function, dead letters go to the dead-letter topic, a log sink routes to\n"
        "its topic); dotted arrows are IAM grants (`publisher` on a topic, `invoker` on a\n"
        "function's Cloud Run service).\n\n" + mermaid_block(doc)
    )


def embed(readme: str, block: str) -> str:
    """The README with the text between its diagram markers replaced by `block`."""
    begin, end = readme.find(README_BEGIN), readme.find(README_END)
    if begin < 0 or end < begin:
        raise DiagramError(f"README.md: no {README_BEGIN} ... {README_END} markers")
    return readme[: begin + len(README_BEGIN)] + "\n" + block + readme[end:]


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def plan(envs: Sequence[str], outdir: Path, docs: Path, readme: Path | None) -> dict[Path, str]:
    """Every file and the text it should hold; DiagramError before anything is written."""
    wanted: dict[Path, str] = {}
    for env in envs:
        path = stack_path(outdir, env)
        doc = load_stack(path, env, _shown(path))
        wanted[docs / f"{env}.md"] = diagram_page(env, doc)
        if readme is not None and env == README_ENV:
            try:
                text = readme.read_text(encoding="utf-8")
            except OSError as exc:
                raise DiagramError(f"{_shown(readme)}: {exc.strerror or exc}") from None
            wanted[readme] = embed(text, mermaid_block(doc))
    return wanted


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        _fail(2, message)


def _fail(code: int, message: str) -> NoReturn:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(prog=PROG, description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--env", action="append", required=True, help="stack to draw (repeat)")
    parser.add_argument("--outdir", type=Path, default=Path("cdktf.out"))
    parser.add_argument("--docs", type=Path, default=Path("docs/diagrams"))
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    parser.add_argument("--no-readme", action="store_true", help="leave README.md alone")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    for env in args.env:
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", env):
            _fail(2, f"--env: got {env!r}, allowed an environment name (config/<env>.toml)")
    try:
        wanted = plan(args.env, args.outdir, args.docs, None if args.no_readme else args.readme)
    except DiagramError as exc:
        _fail(2, str(exc))
    stale = sorted(
        path for path, text in wanted.items() if not path.exists() or path.read_text() != text
    )
    if args.check:
        for path in stale:
            print(f"{PROG}: {_shown(path)} is out of date; run make diagram", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(wanted[path], encoding="utf-8")
        except OSError as exc:
            _fail(2, f"cannot write {_shown(path)}: {exc.strerror or exc}")
    for path in sorted(wanted):
        print(f"{PROG}: {_shown(path)} {'written' if path in stale else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

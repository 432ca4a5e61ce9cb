"""Smoke-test a deployed environment: publish -> push -> handler -> results topic, per
workflow, without starting a pipeline (docs/handler.md, "The probe").

    make smoke ENV=dev [WORKFLOW=train] [TIMEOUT=120]
    .venv/bin/python tools/smoke.py --env dev [--workflow train] [--timeout 120]
        [--stack cdktf.out/stacks/dev/cdk.tf.json] [--project P --allow-other-project]

For each workflow of the synthesized stack: a temporary pull subscription
`<wf>-smoke-<nonce>` on its results topic (expiring after a day unused, so a crash leaves
nothing for long), a `workflow.probe` with that nonce on its trigger topic, then the wait for
the handler's `workflow.probe.ok` with the nonce; the subscription is deleted in any case.
All probes go out at once, so the whole run takes at most `--timeout` seconds.

Prints one line per workflow, `PASS <wf>: ... in 0.42 s` or `FAIL <wf>: ...`, and exits 0 when
all pass, 1 otherwise, 2 for bad arguments or a project other than the environment's.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from dataclasses import dataclass

from operator_cli import FAILED, INTERRUPTED, USAGE, Parser, connect, fail
from pubsub_rest import PubSub, PubSubError
from stack_topics import WorkflowTopics

from workflow_handler import contract

PROG = "smoke.py"
DEFAULT_TIMEOUT = 120.0
POLL_SECONDS = 0.25
SUBSCRIPTION_TTL = "86400s"  # the shortest expiration Pub/Sub allows: one day
SUBSCRIPTION_RETENTION = "600s"  # the shortest retention Pub/Sub allows


@dataclass
class Probe:
    topics: WorkflowTopics
    subscription: str
    nonce: str
    sent_at: float = 0.0
    latency: float | None = None
    problem: str | None = None


def subscription_body(results_topic: str) -> dict[str, object]:
    """The temporary pull subscription: short-lived if the tool dies before deleting it."""
    return {
        "topic": results_topic,
        "ackDeadlineSeconds": 10,
        "messageRetentionDuration": SUBSCRIPTION_RETENTION,
        "expirationPolicy": {"ttl": SUBSCRIPTION_TTL},
        "labels": {"purpose": "smoke"},
    }


def probe_message(nonce: str) -> tuple[bytes, dict[str, str]]:
    """The probe event and its attributes, as a producer publishes them."""
    correlation_id = f"smoke-{nonce}"
    event = {
        "type": contract.PROBE_EVENT_TYPE,
        "payload": {"nonce": nonce},
        "correlation_id": correlation_id,
    }
    attributes = {"event_type": contract.PROBE_EVENT_TYPE, "correlation_id": correlation_id}
    return json.dumps(event, sort_keys=True).encode(), attributes


def is_answer(data: bytes, probe: Probe) -> bool:
    """The handler's answer to this very probe (a results topic also carries outcomes)."""
    try:
        event = json.loads(data)
    except ValueError:
        return False
    return (
        isinstance(event, dict)
        and event.get("type") == contract.PROBE_RESULT_EVENT_TYPE
        and event.get("payload") == {"nonce": probe.nonce, "workflow": probe.topics.workflow}
    )


def run(pubsub: PubSub, workflows: list[WorkflowTopics], project: str, timeout: float) -> bool:
    probes = []
    for topics in workflows:
        nonce = secrets.token_hex(6)
        path = f"projects/{project}/subscriptions/{topics.workflow}-smoke-{nonce}"
        probes.append(Probe(topics, path, nonce))
    created: list[Probe] = []
    try:
        for probe in probes:
            try:
                pubsub.create_subscription(
                    probe.subscription, subscription_body(probe.topics.results_topic)
                )
                created.append(probe)
                data, attributes = probe_message(probe.nonce)
                probe.sent_at = time.monotonic()
                pubsub.publish(probe.topics.trigger_topic, data, attributes)
            except PubSubError as exc:
                probe.problem = str(exc)
        wait(pubsub, [p for p in created if p.problem is None], timeout)
    finally:
        for probe in created:
            try:
                pubsub.delete_subscription(probe.subscription)
            except PubSubError as exc:
                print(f"{PROG}: warning: could not delete {probe.subscription}: {exc}")
    for probe in probes:
        print(report(probe, timeout))
    return all(p.latency is not None for p in probes)


def wait(pubsub: PubSub, probes: list[Probe], timeout: float) -> None:
    """Until every probe has its answer, or `timeout` seconds after the first went out."""
    deadline = time.monotonic() + timeout
    pending = list(probes)
    while pending and time.monotonic() < deadline:
        for probe in list(pending):
            try:
                received = pubsub.pull(probe.subscription, 100)
                pubsub.acknowledge(probe.subscription, [r["ackId"] for r in received])
            except PubSubError as exc:
                probe.problem = str(exc)
                pending.remove(probe)
                continue
            if any(is_answer(r["message"]["data"], probe) for r in received):
                probe.latency = time.monotonic() - probe.sent_at
                pending.remove(probe)
        if pending:
            time.sleep(POLL_SECONDS)


def report(probe: Probe, timeout: float) -> str:
    t = probe.topics
    route = f"{t.trigger_topic} -> {t.results_topic}"
    answer = contract.PROBE_RESULT_EVENT_TYPE
    if probe.latency is not None:
        return f"PASS {t.workflow}: {answer} in {probe.latency:.2f} s ({route})"
    if probe.problem is not None:
        return f"FAIL {t.workflow}: {probe.problem}"
    return (
        f"FAIL {t.workflow}: no {answer} within {timeout:g} s "
        f"({route}); look at the function's logs and {t.dead_letter_subscription}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = Parser(PROG, __doc__.split("\n\n")[0])
    parser.add_argument("--workflow", help="only this workflow (default: every one)")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds to wait (default 120)"
    )
    args = parser.parse_args(argv)
    if not 0 < args.timeout <= 3600:
        fail(PROG, USAGE, f"--timeout: got {args.timeout:g}, allowed 0 < seconds <= 3600")
    target = connect(PROG, args, args.workflow)
    try:
        passed = run(target.pubsub, target.workflows, target.project, args.timeout)
    except KeyboardInterrupt:
        fail(PROG, INTERRUPTED, "interrupted; the temporary subscriptions were deleted")
    return 0 if passed else FAILED


if __name__ == "__main__":
    sys.exit(main())

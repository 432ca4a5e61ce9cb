"""The Pub/Sub names of an environment's workflows, read from its synthesized stack
(`cdktf.out/stacks/<env>/cdk.tf.json`): what Terraform deployed, not what config/ says now.

The twin's resolver (tools/twin/stack.py) computes each reference as the Google provider does,
and each function's environment names its results and dead-letter topics; the push and
dead-letter subscriptions are found by their stable names (ai_workflow.naming).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from twin.stack import Address, Stack, StackError

from ai_workflow.naming import WorkflowNames
from workflow_handler import contract

__all__ = ["StackError", "WorkflowTopics", "default_stack_path", "load_workflows"]


@dataclass(frozen=True)
class WorkflowTopics:
    workflow: str
    trigger_topic: str
    """`projects/<p>/topics/<t>` its push subscription reads (the upstream's results topic
    when it chains)."""
    results_topic: str
    dead_letter_subscription: str
    """`projects/<p>/subscriptions/<wf>-dead-letter-pull`."""

    def in_project(self, project: str) -> WorkflowTopics:
        """The same names in another project (`--project` with `--allow-other-project`)."""

        def moved(path: str) -> str:
            return f"projects/{project}/{path.split('/', 2)[2]}"

        return replace(
            self,
            trigger_topic=moved(self.trigger_topic),
            results_topic=moved(self.results_topic),
            dead_letter_subscription=moved(self.dead_letter_subscription),
        )


def default_stack_path(env: str) -> Path:
    return Path("cdktf.out") / "stacks" / env / "cdk.tf.json"


def load_workflows(path: Path) -> tuple[str, list[WorkflowTopics]]:
    """The stack's project and its workflows (by function address); StackError (one line)
    when the file is missing or does not declare what a workflow needs."""
    stack = Stack.load(path)
    subscriptions = {
        stack.literal(Address("google_pubsub_subscription", name), "name"): (name, body)
        for name, body in stack.resources("google_pubsub_subscription").items()
    }

    def subscription(name: str, workflow: str) -> tuple[str, str]:
        if name not in subscriptions:
            raise StackError(f"{path}: workflow {workflow}: no subscription {name!r}")
        logical, body = subscriptions[name]
        address = Address("google_pubsub_subscription", logical)
        where = f"{address}.topic"
        return str(stack.attribute(address, ["id"])), stack.topic_path(body.get("topic", ""), where)

    found = []
    for function in stack.functions():
        workflow = function.workflow
        names = WorkflowNames(workflow)
        _, trigger = subscription(names.push_subscription, workflow)
        dead_letter_pull, _ = subscription(names.dead_letter_subscription, workflow)
        found.append(
            WorkflowTopics(
                workflow=workflow,
                trigger_topic=trigger,
                results_topic=function.environment[contract.ENV_RESULTS_TOPIC],
                dead_letter_subscription=dead_letter_pull,
            )
        )
    if not found:
        raise StackError(f"{path}: declares no workflow (no google_cloudfunctions2_function)")
    return stack.project, found

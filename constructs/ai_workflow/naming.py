"""Stable, readable names derived from a workflow name.

These names are API: changing one replaces the resource. Service account ids are at most
30 characters, which is why workflow names are capped at 24. The names the handler is told
(its topics, its pipeline service account) are the handler's contract's formulas
(function_src/workflow_handler/contract.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from workflow_handler import contract


@dataclass(frozen=True)
class WorkflowNames:
    workflow: str

    @property
    def trigger_topic(self) -> str:
        return contract.trigger_topic(self.workflow)

    @property
    def results_topic(self) -> str:
        return contract.results_topic(self.workflow)

    @property
    def dead_letter_topic(self) -> str:
        return contract.dead_letter_topic(self.workflow)

    @property
    def pipeline_events_topic(self) -> str:
        return contract.pipeline_events_topic(self.workflow)

    @property
    def pipeline_events_subscription(self) -> str:
        return contract.pipeline_events_subscription(self.workflow)

    @property
    def pipeline_events_sink(self) -> str:
        return f"{self.workflow}-pipeline-events"

    @property
    def push_subscription(self) -> str:
        return f"{self.workflow}-push"

    @property
    def dead_letter_subscription(self) -> str:
        return f"{self.workflow}-dead-letter-pull"

    @property
    def function(self) -> str:
        return f"{self.workflow}-handler"

    @property
    def runtime_account_id(self) -> str:
        return f"{self.workflow}-run"

    @property
    def push_account_id(self) -> str:
        return f"{self.workflow}-push"

    @property
    def build_account_id(self) -> str:
        return f"{self.workflow}-build"

    @property
    def pipeline_account_id(self) -> str:
        return contract.pipeline_account_id(self.workflow)

    def logical_id(self, kind: str) -> str:
        """Terraform address component, e.g. train_model_trigger_topic."""
        return terraform_id(f"{self.workflow}_{kind}")


def terraform_id(name: str) -> str:
    """Readable Terraform identifier: hyphens become underscores."""
    return name.replace("-", "_")


def member_id(member: str) -> str:
    """A stable identifier for an IAM member, so a grant's address follows the member, not
    its position in a list: `serviceAccount:etl@p.iam.gserviceaccount.com` ->
    `serviceaccount_etl_p_iam_gserviceaccount_com`."""
    return re.sub(r"[^a-z0-9]+", "_", member.lower()).strip("_")

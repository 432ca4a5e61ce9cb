"""Stable, readable names derived from a workflow name.

These names are API: changing one replaces the resource. Service account ids are at most
30 characters, which is why workflow names are capped at 24.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class WorkflowNames:
    workflow: str

    @property
    def trigger_topic(self) -> str:
        return f"{self.workflow}-trigger"

    @property
    def results_topic(self) -> str:
        return f"{self.workflow}-results"

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.workflow}-dead-letter"

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
        return f"{self.workflow}-pipe"

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

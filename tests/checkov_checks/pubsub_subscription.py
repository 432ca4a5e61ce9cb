"""This project's own checkov checks for google_pubsub_subscription, for which checkov 3.3.30
ships none: without them no subscription would be scanned at all. checkov loads this file
(`--external-checks-dir tests/checkov_checks`, see tests/test_checkov.py) in .venv-checkov."""

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck


def first(value: Any) -> Any:
    """checkov wraps each attribute value in a list; the value itself."""
    return value[0] if isinstance(value, list) and value else value


class SubscriptionNeverExpires(BaseResourceCheck):
    """An expiring subscription is deleted after 31 idle days, and its messages with it."""

    def __init__(self) -> None:
        super().__init__(
            name="Ensure the Pub/Sub subscription never expires (expiration_policy.ttl is empty)",
            id="CKV_AIWF_1",
            categories=[CheckCategories.GENERAL_SECURITY],
            supported_resources=["google_pubsub_subscription"],
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        policy = first(conf.get("expiration_policy"))
        if isinstance(policy, dict) and first(policy.get("ttl")) == "":
            return CheckResult.PASSED
        return CheckResult.FAILED


class PushSubscriptionAuthenticatesAndDeadLetters(BaseResourceCheck):
    """A push subscription sends an OIDC token (the function is not public) and moves what it
    cannot deliver to a dead-letter topic instead of retrying it until retention ends."""

    def __init__(self) -> None:
        super().__init__(
            name="Ensure a Pub/Sub push subscription uses an OIDC token and a dead-letter policy",
            id="CKV_AIWF_2",
            categories=[CheckCategories.GENERAL_SECURITY],
            supported_resources=["google_pubsub_subscription"],
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        push = first(conf.get("push_config"))
        if not isinstance(push, dict):
            return CheckResult.PASSED  # a pull subscription: nothing is pushed
        oidc = first(push.get("oidc_token"))
        dead_letter = first(conf.get("dead_letter_policy"))
        if (
            isinstance(oidc, dict)
            and first(oidc.get("service_account_email"))
            and isinstance(dead_letter, dict)
            and first(dead_letter.get("dead_letter_topic"))
        ):
            return CheckResult.PASSED
        return CheckResult.FAILED


never_expires = SubscriptionNeverExpires()
push_authenticates_and_dead_letters = PushSubscriptionAuthenticatesAndDeadLetters()

"""Invariants of every environment in config/, whatever a team has put there.

These hold for any valid settings, so editing config/ (a new environment, another workflow)
keeps them green; exact counts and names are pinned on tests/fixtures/config instead.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from environments import EXAMPLE_ENVIRONMENTS
from stack_helpers import iam_members, resources

PUBLIC_MEMBERS = {"allUsers", "allAuthenticatedUsers"}
BASIC_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}
IMPERSONATION_ROLES = {"roles/iam.serviceAccountUser", "roles/iam.serviceAccountTokenCreator"}
SA_REFERENCE = re.compile(r"^\$\{google_service_account\.([a-z0-9_]+)\.(email|member|id|name)\}$")
FUNCTION_URI = re.compile(
    r"^\$\{google_cloudfunctions2_function\.([a-z0-9_]+)\.service_config\[0\]\.uri\}$"
)


@pytest.fixture(params=EXAMPLE_ENVIRONMENTS)
def stack(request: pytest.FixtureRequest, example_stacks: dict[str, dict[str, Any]]) -> dict:
    return example_stacks[request.param]


def _service_account(reference: str) -> str:
    match = SA_REFERENCE.match(reference)
    assert match, f"not a reference to a service account of this stack: {reference}"
    return match.group(1)


def test_there_are_example_environments() -> None:
    assert EXAMPLE_ENVIRONMENTS, "config/ holds no <env>.toml: `make synth` would fail"


def test_no_public_members_basic_roles_or_authoritative_iam(stack: dict) -> None:
    for kind, name, body in iam_members(stack):
        assert body["member"] not in PUBLIC_MEMBERS, f"{kind}.{name}"
        assert body["role"] not in BASIC_ROLES, f"{kind}.{name}"
        if kind == "google_project_iam_member":
            assert body["role"] not in IMPERSONATION_ROLES, f"{kind}.{name}"
    authoritative = [k for k in stack["resource"] if k.endswith(("_iam_binding", "_iam_policy"))]
    assert authoritative == []


def test_every_push_subscription_is_authenticated_retried_and_dead_lettered(stack: dict) -> None:
    invokers = {
        (body["name"], body["member"])
        for body in resources(stack, "google_cloud_run_v2_service_iam_member").values()
        if body["role"] == "roles/run.invoker"
    }
    pushes = {
        name: sub
        for name, sub in resources(stack, "google_pubsub_subscription").items()
        if "push_config" in sub
    }
    assert pushes, "no push subscription"
    for name, sub in pushes.items():
        endpoint = sub["push_config"]["push_endpoint"]
        function = FUNCTION_URI.match(endpoint)
        assert function, f"{name} pushes somewhere other than one of our functions: {endpoint}"
        email = sub["push_config"]["oidc_token"]["service_account_email"]
        push_sa = _service_account(email)
        assert sub["push_config"]["oidc_token"]["audience"] == endpoint
        # The push identity may invoke exactly the function it pushes to.
        function_name = "${google_cloudfunctions2_function." + function.group(1) + ".name}"
        member = "${google_service_account." + push_sa + ".member}"
        assert (function_name, member) in invokers, name
        assert sub["dead_letter_policy"]["dead_letter_topic"].startswith("${google_pubsub_topic.")
        assert 5 <= sub["dead_letter_policy"]["max_delivery_attempts"] <= 100
        assert set(sub["retry_policy"]) == {"minimum_backoff", "maximum_backoff"}
        assert 10 <= sub["ack_deadline_seconds"] <= 600


def test_every_function_is_internal_current_and_has_its_own_identities(stack: dict) -> None:
    functions = resources(stack, "google_cloudfunctions2_function")
    assert functions
    runtime_accounts, build_accounts = [], []
    for name, fn in functions.items():
        service, build = fn["service_config"], fn["build_config"]
        assert service["ingress_settings"] == "ALLOW_INTERNAL_ONLY", name
        assert build["runtime"] in {"python312", "python313"}, name
        assert service["min_instance_count"] <= service["max_instance_count"], name
        runtime_accounts.append(_service_account(service["service_account_email"]))
        build_accounts.append(_service_account(build["service_account"]))
        for secret in service.get("secret_environment_variables", []):
            assert secret["secret"] and secret["version"], name
    accounts = runtime_accounts + build_accounts
    assert len(set(accounts)) == len(accounts), "functions share a runtime or build identity"


def test_every_bucket_is_hardened(stack: dict) -> None:
    for name, bucket in resources(stack, "google_storage_bucket").items():
        assert bucket["uniform_bucket_level_access"] is True, name
        assert bucket["public_access_prevention"] == "enforced", name
        assert bucket["force_destroy"] is False, name


def test_every_topic_and_subscription_is_labelled_and_kept(stack: dict) -> None:
    for name, topic in resources(stack, "google_pubsub_topic").items():
        assert topic["labels"]["env"] and topic["labels"]["managed-by"] == "cdktf", name
        assert topic["message_retention_duration"].endswith("s"), name
    for name, sub in resources(stack, "google_pubsub_subscription").items():
        assert sub["labels"]["env"], name
        assert sub["expiration_policy"] == {"ttl": ""}, name


def test_apis_survive_destroy(stack: dict) -> None:
    services = resources(stack, "google_project_service")
    assert services
    assert all(body["disable_on_destroy"] is False for body in services.values())

"""No secret value leaves the machine in the deployed artifacts: the function zip and the
synthesized JSON hold secrets only as Secret Manager references
(secret_environment_variables: key, secret, version), never a value.

A secret is planted where a developer might leave one (a .env file, a key file, a private
key pasted into the source) and must be left out of the zip, or the bundle refused; the
real outputs are scanned for what a leaked credential looks like."""

from __future__ import annotations

import json
import math
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from environments import ENVIRONMENTS, SOURCE_DIR

from ai_workflow.source_bundle import SecretInSourceError, build_source_bundle

PLANTED = "s3cr3t-" + "7f9c2ba4e88f827d616045507605853e"
PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
LEAKS = {
    "a PEM block": re.compile(r"-----BEGIN [A-Z ]+-----"),
    "a Google API key": re.compile(r"AIza[0-9A-Za-z_-]{35}"),
    "a service account key": re.compile(r'"private_key(_id)?"\s*:'),
    "an OAuth client secret": re.compile(r"GOCSPX-[0-9A-Za-z_-]{20,}"),
    "an access token": re.compile(r"ya29\.[0-9A-Za-z_-]{20,}"),
}


def leaks(text: str) -> list[str]:
    return [what for what, pattern in LEAKS.items() if pattern.search(text)]


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def looks_random(text: str) -> bool:
    """A long run of letters and digits with high entropy, such as an API key (names,
    paths and URLs are words joined by / and .)."""
    return any(
        len(t) >= 24 and entropy(t) > 4.0 and re.search(r"\d", t) and re.search(r"[A-Za-z]", t)
        for t in re.findall(r"[A-Za-z0-9+_=-]+", text)
    )


@pytest.fixture
def source(tmp_path: Path) -> Path:
    copy = tmp_path / "function_src"
    shutil.copytree(SOURCE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


@pytest.mark.parametrize(
    "name", [".env", ".env.local", "service-account.key", "tls.pem", "client.p12", "id_rsa"]
)
def test_env_and_key_files_are_left_out_of_the_zip(source: Path, name: str) -> None:
    clean = build_source_bundle(source)
    (source / name).write_text(f"API_KEY={PLANTED}\n")
    (source / "workflow_handler" / name).write_text(f"API_KEY={PLANTED}\n")
    bundle = build_source_bundle(source)
    assert bundle.files == clean.files
    assert bundle.data == clean.data
    assert PLANTED.encode() not in bundle.data


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("settings.py", f'KEY = """{PEM}"""\n'),
        ("sa.json", json.dumps({"type": "service_account", "private_key": PLANTED})),
    ],
)
def test_a_private_key_in_the_source_refuses_the_bundle(source: Path, name: str, text: str) -> None:
    (source / "workflow_handler" / name).write_text(text)
    with pytest.raises(SecretInSourceError) as caught:
        build_source_bundle(source)
    assert str(caught.value) == (
        f"{(source / 'workflow_handler' / name).as_posix()}: holds a private key, allowed no "
        "secrets in the function source (use secret_env: Secret Manager)"
    )


def test_the_real_zip_holds_no_secret() -> None:
    bundle = build_source_bundle(SOURCE_DIR)
    assert leaks(bundle.data.decode("utf-8", errors="replace")) == []
    assert not [f for f in bundle.files if f.endswith((".env", ".key", ".pem"))]


def functions(stack: dict[str, Any]) -> dict[str, Any]:
    return stack["resource"]["google_cloudfunctions2_function"]


def test_the_scan_finds_what_it_looks_for() -> None:
    assert leaks(PEM) == ["a PEM block"]
    assert leaks('{"private_key": "x"}') == ["a service account key"]
    assert leaks("AIza" + "Sy" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r") == ["a Google API key"]
    assert looks_random(PLANTED) and not looks_random("projects/acme-ai-prod/topics/train-results")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_synthesized_json_holds_no_secret_value(
    stacks: dict[str, dict[str, Any]], env: str
) -> None:
    stack = stacks[env]
    assert leaks(json.dumps(stack)) == []
    for name, function in functions(stack).items():
        variables = function["service_config"].get("environment_variables", {})
        assert [k for k, v in variables.items() if looks_random(str(v))] == [], name


def test_every_secret_env_is_only_a_secret_manager_reference(
    stacks: dict[str, dict[str, Any]],
) -> None:
    from environments import FIXTURE_CONFIG_DIR

    from ai_workflow_app.config import load_environment

    seen = 0
    for env in ENVIRONMENTS:
        config = load_environment(FIXTURE_CONFIG_DIR / f"{env}.toml")
        for workflow in config.workflows:
            function = functions(stacks[env])[f"{workflow.name.replace('-', '_')}_function"]
            service = function["service_config"]
            assert service.get("secret_environment_variables", []) == [
                {
                    "key": var,
                    "project_id": config.project_id,
                    "secret": secret.secret,
                    "version": secret.version,
                }
                for var, secret in sorted(workflow.secret_env.items())
            ]
            assert not set(workflow.secret_env) & set(service.get("environment_variables", {}))
            seen += len(workflow.secret_env)
    assert seen >= 1

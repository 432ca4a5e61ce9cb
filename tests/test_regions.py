"""The pinned region lists and the "did you mean" hints built on them."""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path

import pytest
from environments import FIXTURE_CONFIG_DIR

from ai_workflow import regions, rules
from ai_workflow_app.config import parse_environment

ROOT = Path(__file__).resolve().parent.parent
DEV = tomllib.loads((FIXTURE_CONFIG_DIR / "dev.toml").read_text())


def test_lists_are_sorted_unique_region_names() -> None:
    for listed in (regions.FUNCTIONS_AND_VERTEX_AI_REGIONS, regions.GOOGLE_CLOUD_REGIONS):
        assert list(listed) == sorted(set(listed))
        assert all(re.fullmatch(r"[a-z]+-[a-z]+[0-9]+", r) for r in listed)
    assert set(regions.FUNCTIONS_AND_VERTEX_AI_REGIONS) <= set(regions.GOOGLE_CLOUD_REGIONS)
    assert {"us", "europe", "asia"} <= set(regions.ARTIFACT_REGISTRY_LOCATIONS)


def test_the_list_says_when_and_where_it_comes_from() -> None:
    text = (ROOT / "constructs" / "ai_workflow" / "regions.py").read_text()
    assert re.search(r"Pinned on \d{4}-\d{2}-\d{2}", text)
    assert "https://cloud.google.com/functions/docs/locations" in text
    assert "https://cloud.google.com/vertex-ai/docs/general/locations" in text


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("europe-wset4", " (did you mean 'europe-west4'?)"),
        ("Europe-West4", " (did you mean 'europe-west4'?)"),
        ("europe-west4-a", " (did you mean 'europe-west4'?)"),
        ("uscentral1", " (did you mean 'us-central1'?)"),
        ("us_central1", " (did you mean 'us-central1'?)"),
        ("asia-southeast", " (did you mean 'asia-southeast1' or 'asia-southeast2'?)"),
        ("us-east", ""),  # us-east1, us-east4 and us-east5 are equally near: no guess
        ("europe", ""),
        (5, ""),
    ],
)
def test_did_you_mean(value: object, hint: str) -> None:
    assert rules.did_you_mean(value, regions.FUNCTIONS_AND_VERTEX_AI_REGIONS) == hint


def test_every_listed_region_is_accepted_and_templates_may_live_elsewhere() -> None:
    for region in regions.FUNCTIONS_AND_VERTEX_AI_REGIONS:
        data = copy.deepcopy(DEV)
        data["region"] = region
        assert parse_environment("dev", "config/dev.toml", data).region == region
    data = copy.deepcopy(DEV)
    route = data["workflows"][0]["routes"]["data.ready"]
    for location in ("us", "europe", "me-central1", "us-central1"):
        route["template_uri"] = f"https://{location}-kfp.pkg.dev/acme-ai-dev/pipelines/p/v1"
        parse_environment("dev", "config/dev.toml", data)

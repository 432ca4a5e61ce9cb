"""Where the tests' settings come from: test-owned copies, the user's config/, generated."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_CONFIG_DIR = ROOT / "tests" / "fixtures" / "config"
EXAMPLE_CONFIG_DIR = ROOT / "config"
SOURCE_DIR = ROOT / "function_src"
ENVIRONMENTS = ("dev", "prod")
"""The test-owned environments under tests/fixtures/config/."""
EXAMPLE_ENVIRONMENTS = tuple(sorted(p.stem for p in EXAMPLE_CONFIG_DIR.glob("*.toml")))
"""Whatever environments config/ holds today."""
SCALE_WORKFLOWS = 100


def generated_environment(workflows: int) -> dict[str, Any]:
    """`workflows` workflows in chains of five, like a long data -> train -> predict line."""
    items = []
    for i in range(workflows):
        item: dict[str, Any] = {
            "name": f"wf{i:03d}",
            "routes": {
                f"step{i}.run": {
                    "template_uri": f"https://europe-west4-kfp.pkg.dev/p/r/step{i}/v1",
                    "on_success": f"step{i + 1}.run",
                }
            },
        }
        if i % 5:
            item["trigger"] = f"wf{i - 1:03d}"
        items.append(item)
    return {"project_id": "acme-ai-scale", "region": "europe-west4", "workflows": items}


# Read once, at import: tests that give a child process another HOME change it later.
_JSII_CACHE_ROOT = os.environ.get("JSII_RUNTIME_PACKAGE_CACHE_ROOT") or str(
    Path.home() / ".cache" / "aws" / "jsii" / "package-cache"
)


def jsii_cache_environ() -> dict[str, str]:
    """jsii's package cache kept where it is, for a child process given another HOME (jsii
    finds its cache through HOME, and unpacking the provider again costs ~10 s)."""
    return {"JSII_RUNTIME_PACKAGE_CACHE_ROOT": _JSII_CACHE_ROOT}

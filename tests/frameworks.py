"""What differs between cdktf and CDK Terrain (cdktn) in what the tests see.

The suite runs on whichever framework ai_workflow.compat chose (`make pytest`: cdktf in
.venv; `make test-cdktn`: cdktn in .venv-cdktn). The synthesized stacks are the same but for
the entries below; the manifest.json layout differs too (ai_workflow_app.synth).
"""

from __future__ import annotations

import json
from typing import Any

from ai_workflow import compat

# terraform.required_providers.google as each framework's pinned provider package writes it:
# cdktf-cdktf-provider-google 16.12.1 is google 6.50.0 with a short source; cdktn-provider-google
# 21.1.0 is google 8.7.0 with the full registry source.
REQUIRED_GOOGLE = {
    "cdktf": {"source": "google", "version": "6.50.0"},
    "cdktn": {"source": "hashicorp/google", "version": "8.7.0"},
}
# The framework version, in the "//" metadata of every stack and in manifest.json.
FRAMEWORK_VERSION = {"cdktf": "0.21.0", "cdktn": "0.24.0"}
# Python packages (and their pins) that make up each framework's environment.
PINS = {
    "cdktf": {"cdktf": "0.21.0", "cdktf-cdktf-provider-google": "16.12.1", "constructs": "10.8.1"},
    "cdktn": {"cdktn": "0.24.0", "cdktn-provider-google": "21.1.0", "constructs": "10.7.2"},
}


def on(name: str) -> bool:
    """Whether the suite runs on framework `name` ("cdktf" or "cdktn")."""
    return bool(name == compat.NAME)


def as_framework(stack: dict[str, Any], source: str, target: str) -> dict[str, Any]:
    """`stack` as framework `target` would have written it, given that `source` did: only the
    documented differences are replaced, and each must hold the value `source` writes (a
    KeyError or AssertionError otherwise), so anything else that differs still shows."""
    converted: dict[str, Any] = json.loads(json.dumps(stack))
    metadata = converted["//"]["metadata"]
    assert metadata["version"] == FRAMEWORK_VERSION[source], metadata
    metadata["version"] = FRAMEWORK_VERSION[target]
    google = converted["terraform"]["required_providers"]["google"]
    assert google == REQUIRED_GOOGLE[source], google
    converted["terraform"]["required_providers"]["google"] = dict(REQUIRED_GOOGLE[target])
    return converted

"""The pinned Node (node_modules/.bin/node) for tests that run JavaScript hooks directly."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NODE = ROOT / "node_modules" / ".bin" / "node"
needs_node = pytest.mark.skipif(
    not NODE.exists(), reason="node_modules/.bin/node missing: run `make install` (npm ci)"
)


def run_with_preload(
    hook: Path, probe: str, argument: Path, **environ: str
) -> subprocess.CompletedProcess[str]:
    """`node --require <hook> -e <probe> <argument>`, without the caller's NODE_OPTIONS (nor
    CDKTN_DISABLE_CREATION_STACK), with `environ` added."""
    drop = {"NODE_OPTIONS", "CDKTN_DISABLE_CREATION_STACK"}
    env = {k: v for k, v in os.environ.items() if k not in drop} | environ
    return subprocess.run(
        [str(NODE), "--require", str(hook), "-e", probe, str(argument)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

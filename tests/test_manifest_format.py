"""manifest.json as each framework writes it: synth.stable_stringify's two flavours.

cdktf writes manifest.json with json-stable-stringify `{space: 2}` (empty containers still
get a line break), cdktn with safe-stable-stringify indent 2 (`[]`, `{}`). synth.py merges
manifests (`main.py --env`) in the flavour of the framework in use; here each flavour is
checked against the stringifier that the framework in use bundles, run by Node.
"""

from __future__ import annotations

import importlib
import importlib.resources
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from node_helpers import NODE, needs_node

from ai_workflow import compat
from ai_workflow_app.synth import stable_stringify

VALUE: dict[str, Any] = {
    "version": "0.21.0",
    "stacks": {
        "b": {"deps": [], "x": [1, [], {}], "none": None, "t": True},
        "a": {},
        "é ü": {"nested": {"deeper": ["s", 2.5, {"k": "v"}]}},
    },
}


def test_the_cdktf_flavour() -> None:
    assert stable_stringify({"b": {"deps": [], "x": [1]}, "a": {}}, flavour="cdktf") == (
        '{\n  "a": {\n  },\n  "b": {\n    "deps": [\n    ],\n    "x": [\n      1\n    ]\n  }\n}'
    )


def test_the_cdktn_flavour() -> None:
    assert stable_stringify({"b": {"deps": [], "x": [1]}, "a": {}}, flavour="cdktn") == (
        '{\n  "a": {},\n  "b": {\n    "deps": [],\n    "x": [\n      1\n    ]\n  }\n}'
    )


def test_the_default_is_the_framework_in_use() -> None:
    assert stable_stringify(VALUE) == stable_stringify(VALUE, flavour=compat.NAME)
    with pytest.raises(ValueError, match="flavour: got 'cdk', allowed cdktf or cdktn"):
        stable_stringify(VALUE, flavour="cdk")


def test_the_manifest_the_framework_wrote_is_reproduced(synth_outdir: Path) -> None:
    text = (synth_outdir / "manifest.json").read_text()
    assert stable_stringify(json.loads(text)) == text
    other = "cdktn" if compat.NAME == "cdktf" else "cdktf"
    assert stable_stringify(json.loads(text), flavour=other) != text


# The framework's own stringifier, as its manifest.js calls it.
STRINGIFIERS = {
    "cdktf": ("json-stable-stringify", "(v) => s(v, { space: 2 })"),
    "cdktn": ("safe-stable-stringify", "(v) => s(v, null, 2)"),
}


@needs_node
def test_the_flavour_in_use_is_the_frameworks_own_stringifier(tmp_path: Path) -> None:
    assembly = importlib.import_module(f"{compat.NAME}._jsii")
    [tarball] = [
        p for p in importlib.resources.files(assembly).iterdir() if p.name.endswith(".tgz")
    ]
    with tarfile.open(fileobj=tarball.open("rb")) as archive:
        archive.extractall(tmp_path, filter="data")
    package, call = STRINGIFIERS[compat.NAME]
    module = tmp_path / "package" / "node_modules" / package
    probe = (
        f"const s = require({json.dumps(str(module))}); "
        "const v = JSON.parse(require('fs').readFileSync(0, 'utf8')); "
        f"process.stdout.write(({call})(v));"
    )
    result = subprocess.run(
        [str(NODE), "-e", probe],
        input=json.dumps(VALUE),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert stable_stringify(VALUE) == result.stdout

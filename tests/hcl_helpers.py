"""Reading the HCL that `cdktf synth --hcl` writes, with HashiCorp's own HCL parser.

@cdktf/hcl2json (pinned in package-lock.json, a dependency of cdktf-cli) is HashiCorp's
`hcl` Go library compiled to WebAssembly: it turns a `.tf` file into Terraform's JSON form,
where every block is a list. `as_stack_shape` undoes that for comparisons with cdk.tf.json.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from node_helpers import NODE, ROOT

_HCL2JSON = ROOT / "node_modules" / "@cdktf" / "hcl2json"
_PARSE = (
    "const { parse } = require(process.argv[1]);"
    "const fs = require('fs');"
    "parse('cdk.tf', fs.readFileSync(process.argv[2], 'utf8'))"
    ".then((j) => process.stdout.write(JSON.stringify(j)))"
    ".catch((e) => { console.error(String(e)); process.exit(1); });"
)


def parse_hcl(path: Path) -> dict[str, Any]:
    """`path` (a .tf file) as Terraform's JSON form."""
    out = subprocess.run(
        [str(NODE), "-e", _PARSE, str(_HCL2JSON), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return dict(json.loads(out))


def as_stack_shape(value: Any) -> Any:
    """hcl2json's one-element block lists as the objects cdk.tf.json writes."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        return as_stack_shape(value[0])
    if isinstance(value, dict):
        return {k: as_stack_shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_stack_shape(v) for v in value]
    return value


def addresses(stack: dict[str, Any]) -> set[str]:
    """Every resource, data source, output and provider a stack (JSON or parsed HCL) names."""
    found = {
        f"{kind}.{name}" for kind, items in stack.get("resource", {}).items() for name in items
    }
    found |= {
        f"data.{kind}.{name}" for kind, items in stack.get("data", {}).items() for name in items
    }
    found |= {f"output.{name}" for name in stack.get("output", {})}
    found |= {f"provider.{name}" for name in stack.get("provider", {})}
    return found

"""The HCL output of `cdktf synth --hcl` (CDKTF's way out), made what Terraform expects.

cdktf (and cdktn) write HCL instead of JSON when the CLI sets SYNTH_HCL_OUTPUT=true: the
stack file is `cdk.tf`, not `cdk.tf.json`. Their HCL quotes every `depends_on` entry
(`"google_project_service.api_run"`), which Terraform accepts with one "Quoted references
are deprecated" warning per entry (hundreds per stack) and says will become an error.
`unquote_depends_on` writes those entries as the plain references HCL wants.
"""

from __future__ import annotations

import re

JSON_STACK_FILE = "cdk.tf.json"
HCL_STACK_FILE = "cdk.tf"
STACK_FILES = (JSON_STACK_FILE, HCL_STACK_FILE)

# A `depends_on = [ ... ]` list as cdktf writes it: one entry per line.
_DEPENDS_ON = re.compile(r"^([ \t]*depends_on[ \t]*=[ \t]*\[\n)(.*?)(^[ \t]*\])", re.M | re.S)
# One quoted static reference: `type.name`, `data.type.name` or `module.name`.
_QUOTED_REFERENCE = re.compile(
    r'^([ \t]*)"((?:data\.)?[a-z][a-z0-9_]*\.[A-Za-z_][A-Za-z0-9_-]*)"(,?)[ \t]*$', re.M
)


def stack_file(hcl_output: bool) -> str:
    return HCL_STACK_FILE if hcl_output else JSON_STACK_FILE


def unquote_depends_on(text: str) -> str:
    """`text` with every quoted reference inside a `depends_on` list unquoted; anything
    else, and any entry that is not a plain reference, is left as it is."""

    def unquote(block: re.Match[str]) -> str:
        entries = _QUOTED_REFERENCE.sub(r"\1\2\3", block.group(2))
        return block.group(1) + entries + block.group(3)

    return _DEPENDS_ON.sub(unquote, text)

"""The HCL output of `cdktf synth --hcl` (CDKTF's way out), made what Terraform expects.

cdktf (and cdktn) write HCL instead of JSON when the CLI sets SYNTH_HCL_OUTPUT=true: the
stack file is `cdk.tf`, not `cdk.tf.json`. `as_terraform_hcl` fixes the two places where
their HCL does not say what the JSON says:

- every `depends_on` entry is quoted (`"google_project_service.api_run"`): Terraform
  accepts that with one "Quoted references are deprecated" warning per entry (hundreds per
  stack) and says it will become an error. They are written as plain references.
- a string of several lines is written as a heredoc (`<<EOF ... EOF`), whose value ends
  with a newline the JSON value does not have: `terraform plan` would change every such
  attribute (the log sinks' filters). They are written as quoted strings, `\n` and all.
"""

from __future__ import annotations

import json
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


# `name = <<EOF` ... `EOF`, as cdktf's HCL renderer writes a string of several lines.
_HEREDOC = re.compile(r"= <<EOF\n(.*?)\nEOF$", re.M | re.S)


def as_terraform_hcl(text: str) -> str:
    """cdktf's HCL `text` with the same meaning as its JSON (see the module docstring)."""
    return heredocs_as_strings(unquote_depends_on(text))


def heredocs_as_strings(text: str) -> str:
    """Every `<<EOF` heredoc in `text` as the quoted string of its lines, without the
    newline a heredoc adds. Both are templates, so `${...}` keeps its meaning; a backslash
    and a quote, literal in a heredoc, are escaped (JSON's string escapes are HCL's)."""
    return _HEREDOC.sub(lambda m: "= " + json.dumps(m.group(1), ensure_ascii=False), text)


def stack_file(hcl_output: bool) -> str:
    return HCL_STACK_FILE if hcl_output else JSON_STACK_FILE


def unquote_depends_on(text: str) -> str:
    """`text` with every quoted reference inside a `depends_on` list unquoted; anything
    else, and any entry that is not a plain reference, is left as it is."""

    def unquote(block: re.Match[str]) -> str:
        entries = _QUOTED_REFERENCE.sub(r"\1\2\3", block.group(2))
        return block.group(1) + entries + block.group(3)

    return _DEPENDS_ON.sub(unquote, text)

"""ai_workflow_app.hcl: cdktf's HCL made to mean what its JSON means, on small inputs.

tests/test_terraform.py checks whole stacks (Terraform parses them without a warning, and
HashiCorp's parser reads back the JSON's values); these pin each rewrite.
"""

from __future__ import annotations

from ai_workflow_app.hcl import as_terraform_hcl, heredocs_as_strings, unquote_depends_on

RESOURCE = """resource "google_pubsub_topic" "t" {
depends_on = [
"google_project_service.api_pubsub",
"data.google_project.project",
"${var.not_a_plain_reference}"
]
name = "google_project_service.api_pubsub"
}
"""


def test_depends_on_entries_become_plain_references() -> None:
    assert unquote_depends_on(RESOURCE) == RESOURCE.replace(
        '"google_project_service.api_pubsub",', "google_project_service.api_pubsub,"
    ).replace('"data.google_project.project",', "data.google_project.project,")


def test_a_formatted_depends_on_list_too() -> None:
    text = '  depends_on = [\n    "google_project_service.api_run",\n  ]\n'
    assert (
        unquote_depends_on(text) == "  depends_on = [\n    google_project_service.api_run,\n  ]\n"
    )


def test_a_heredoc_becomes_the_quoted_string_of_its_lines() -> None:
    text = 'filter = <<EOF\nlogName="a\\b"\nAND ${var.x} = 1\nEOF\nname = "n"\n'
    assert heredocs_as_strings(text) == (
        'filter = "logName=\\"a\\\\b\\"\\nAND ${var.x} = 1"\nname = "n"\n'
    )


def test_text_without_either_is_unchanged() -> None:
    text = 'resource "x" "y" {\nname = "a"\nlabels = {\nk = "v"\n}\n}\n'
    assert as_terraform_hcl(text) == text

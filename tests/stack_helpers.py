"""Helpers for reading synthesized Terraform JSON in tests."""

from __future__ import annotations

from typing import Any


def resources(stack: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """All resources of one Terraform type, by logical name."""
    return stack.get("resource", {}).get(kind, {})


def ref(kind: str, name: str, attribute: str) -> str:
    """The interpolation cdktf writes for a reference to another resource."""
    return "${" + f"{kind}.{name}.{attribute}" + "}"


def iam_members(stack: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every *_iam_member resource as (type, name, body)."""
    return [
        (kind, name, body)
        for kind, items in stack.get("resource", {}).items()
        if kind.endswith("_iam_member")
        for name, body in items.items()
    ]

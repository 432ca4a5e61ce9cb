"""The one exception type for bad configuration or props."""

from __future__ import annotations


class ConfigError(ValueError):
    """Carries every problem found, one self-contained line each.

    Each line names where the value came from (file and key path), the value it got and
    what is allowed, e.g. ``config/dev.toml: workflows[0].ack_deadline_seconds: got 5,
    allowed 10..600``.
    """

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

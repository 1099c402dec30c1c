"""What to do with what screening finds: one action per category, per install (settings) and per manifest.

    {"screening": {"secrets": "reject", "personal_data": "redact"}}

`parse_screening` is the one schema for the `screening` key wherever it is written (a manifest today; a
project file reuses it), and `parse_action` reads one action from a setting; both name what is wrong.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

Action = Literal["reject", "redact", "report"]
ACTIONS: tuple[Action, ...] = ("reject", "redact", "report")
SECRETS, PERSONAL_DATA = "secrets", "personal_data"
CATEGORIES = (SECRETS, PERSONAL_DATA)
# What each action means, for messages and the README.
MEANING = {"reject": "the upload is quarantined with its report and one alert",
           "redact": "the staged files carry a typed placeholder such as <EMAIL> instead of the value",
           "report": "trained as is; the findings are in the report and on the page"}


class ScreeningError(ValueError):
    """A screening policy that cannot be read; the message names the key and the allowed values."""


@dataclass(frozen=True)
class Screening:
    """The policy in force: an action for secrets and one for personal data (defaults: reject, redact)."""

    secrets: Action = "reject"
    personal_data: Action = "redact"

    def action(self, category: str) -> Action:
        """The action for a category (`secrets` or `personal_data`)."""
        return cast(Action, getattr(self, category))

    def with_choices(self, choices: Mapping[str, Action]) -> Screening:
        """This policy with the categories `choices` names (a manifest's) replaced."""
        return dataclasses.replace(self, **dict(choices))

    def to_dict(self) -> dict[str, str]:
        """{"secrets": ..., "personal_data": ...}: the run record and the report carry it."""
        return {category: self.action(category) for category in CATEGORIES}


def parse_action(value: Any, where: str) -> Action:
    """One action; ScreeningError naming `where` (a setting or a key) when it is not one."""
    text = value.strip().lower() if isinstance(value, str) else value
    if text not in ACTIONS:
        raise ScreeningError(f"{where}={value!r}: use one of {', '.join(ACTIONS)}")
    return cast(Action, text)


def parse_screening(value: Any, where: str) -> dict[str, Action]:
    """The `screening` key: an object with `secrets` and/or `personal_data`, each an action."""
    if not isinstance(value, dict):
        raise ScreeningError(f"{where}: \"screening\" must be an object like "
                             '{"secrets": "reject", "personal_data": "redact"}')
    unknown = sorted(str(k) for k in value if k not in CATEGORIES)
    if unknown:
        raise ScreeningError(f"{where}: \"screening\" has unknown key(s) {', '.join(unknown)}; "
                             f"known: {', '.join(CATEGORIES)}")
    return {key: parse_action(action, f"{where}: screening.{key}") for key, action in value.items()}

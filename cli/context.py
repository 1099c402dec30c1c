"""What every command builds from the environment: the settings and the lifecycle, and the user's error.

Settings come from the environment, then local.settings.json's "Values" (the devhost reads them the same way,
through shared.settings). The one home of these, so the command modules import it and not each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.local_settings import load_local_settings
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.lifecycle import Lifecycle


class CliError(Exception):
    """Something the user can fix (a bad argument, an unreachable app or storage): one line, exit 2."""


def settings() -> Settings:
    """The app's settings as this machine sees them (environment, then local.settings.json)."""
    load_local_settings()
    return Settings.from_env()


def lifecycle() -> Lifecycle:
    """The lifecycle over the configured platform and stores, built by the composition root as the app does
    (tests put one over the in-memory world in its place)."""
    from shared.wiring import build_lifecycle

    return build_lifecycle(settings())

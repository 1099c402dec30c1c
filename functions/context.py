"""The one lifecycle instance per worker process, built from app settings on first use."""

from __future__ import annotations

from functools import cache

from shared.lifecycle import Lifecycle
from shared.settings import Settings
from shared.wiring import build_lifecycle


@cache
def lifecycle() -> Lifecycle:
    """Build (once) the lifecycle over the configured platform, ledger and alert sinks."""
    return build_lifecycle(Settings.from_env())

"""The one lifecycle instance per worker process, built from app settings on first use."""

from __future__ import annotations

from functools import cache

from shared.front import FrontDoor, front_key
from shared.lifecycle import Lifecycle
from shared.observability import configure_logging
from shared.settings import Settings
from shared.wiring import build_lifecycle


@cache
def lifecycle() -> Lifecycle:
    """Build (once) the lifecycle over the configured platform, ledger and alert sinks."""
    configure_logging()  # run/job ids on every line, secrets redacted, App Insights when configured
    return build_lifecycle(Settings.from_env())


@cache
def front() -> FrontDoor:
    """The front door over the one lifecycle, with the key clients must send."""
    life = lifecycle()
    return FrontDoor(life, front_key(life.ctx.settings))

"""The embedded engine: the platform port on one machine.

Jobs are child processes that really fine-tune with LoRA and log to MLflow (`jobs.py`); endpoints are
uvicorn processes serving registered models with key auth (`endpoints.py`). Both keep their state under the
data directory, so any process of the app (a handler, the sweep, the CLI) sees the same platform.
"""

from __future__ import annotations

from shared.platforms.local.endpoints import LocalEndpoints
from shared.platforms.local.jobs import LocalJobs
from shared.settings import Settings

__all__ = ["LocalPlatform"]


class LocalPlatform(LocalJobs, LocalEndpoints):
    """Jobs and endpoints together: the whole `Platform` port."""

    def __init__(self, settings: Settings) -> None:
        LocalJobs.__init__(self, settings)
        LocalEndpoints.__init__(self, settings)

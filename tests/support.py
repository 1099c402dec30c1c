"""Helpers more than one tier uses."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from shared.settings import Settings, StorageSettings


def offline_settings(data_dir: Path) -> Settings:
    """The app's defaults with `data_dir` and no storage account: for the local engine's parts alone."""
    defaults = Settings.from_env({"AUTOPILOT_STORAGE": "UseDevelopmentStorage=true",
                                  "AUTOPILOT_DATA_DIR": str(data_dir)})
    return replace(defaults, storage=StorageSettings(connection_string=None))

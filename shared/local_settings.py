"""Core Tools' local.settings.json: its "Values" fill the environment where the host is not Azure's
(the devhost, the CLI), as `func start` does."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from shared.azurite import DEVELOPMENT_STORAGE
from shared.settings import SettingsError

LOCAL_SETTINGS = Path("local.settings.json")


def load_local_settings(path: Path = LOCAL_SETTINGS,
                        env: MutableMapping[str, str] | None = None) -> list[str]:
    """Fill unset variables of `env` (default: os.environ) from a local.settings.json's "Values".

    The environment wins, as with Core Tools. Returns the names the file set; a malformed file raises
    SettingsError naming it. When neither sets any storage and the platform is the local one (a fresh
    clone), AUTOPILOT_STORAGE becomes the local emulator (UseDevelopmentStorage=true: Azurite's defaults).
    """
    target = os.environ if env is None else env
    added = _from_file(path, target)
    platform = target.get("AUTOPILOT_PLATFORM", "local").strip().lower() or "local"
    storage = target.get("AUTOPILOT_STORAGE", "").strip() or target.get("AUTOPILOT_STORAGE__blobServiceUri")
    if not storage and platform == "local":
        target["AUTOPILOT_STORAGE"] = DEVELOPMENT_STORAGE
    return added


def _from_file(path: Path, target: MutableMapping[str, str]) -> list[str]:
    if not path.is_file():
        return []
    try:
        values = json.loads(path.read_text(encoding="utf-8")).get("Values", {})
    except (ValueError, AttributeError) as exc:
        raise SettingsError(f"{path} is not a local.settings.json with a \"Values\" object: {exc}") from None
    if not isinstance(values, Mapping):
        raise SettingsError(f"{path}: \"Values\" must be an object of setting names and values")
    added = [str(key) for key in values if str(key) not in target]
    for key in added:
        target[key] = str(values[key])
    return added

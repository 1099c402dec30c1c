"""The front door's key: what clients send as `Authorization: Bearer KEY` (the openai client's `api_key`).

On Azure it is the FRONT_DOOR_KEY app setting (or a Key Vault reference); locally, unless that is set, a
random key is made once under the data dir (0600), so `autopilot key` and the devhost agree. The key is never
logged; `autopilot key` is the one thing that prints it.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
from collections.abc import Mapping

from shared.settings import Settings

KEY_FILE = "front-door.key"


def front_key(settings: Settings) -> str:
    """The key clients must send: FRONT_DOOR_KEY, else (local platform) the data dir's, made on first use.

    On Azure without FRONT_DOOR_KEY: '' (which no request matches: the front door refuses everyone)."""
    if settings.front_door_key:
        return settings.front_door_key
    if settings.platform != "local":
        return ""
    path = settings.data_dir / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # two processes starting at once: one key wins
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def presented(headers: Mapping[str, str]) -> str:
    """The key a request carries: `Authorization: Bearer KEY` (OpenAI's clients) or `api-key: KEY` (Azure's).

    `headers` keys are lower-case."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return headers.get("api-key", "").strip()


def matches(given: str, key: str) -> bool:
    """Constant-time comparison, so the time taken says nothing about how much of the key was right."""
    return bool(given) and bool(key) and hmac.compare_digest(given.encode(), key.encode())

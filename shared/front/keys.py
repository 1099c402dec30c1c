"""The front door's key: what clients send as `Authorization: Bearer KEY` (the openai client's `api_key`).

On Azure it is the FRONT_DOOR_KEY app setting (or a Key Vault reference); locally, unless that is set, a
random key is made once under the data dir (0600), so `autopilot key` and the devhost agree. The key is never
logged; `autopilot key` is the one thing that prints it.

That install key opens every project. Each project also has a key of its own, derived from the install key
(`PROJECT.` + HMAC-SHA256(install key, project)), so nothing more is stored: `autopilot key PROJECT` prints
it, and it opens that project only. Rotating the install key rotates every project's key with it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping

from shared.settings import Settings

KEY_FILE = "front-door.key"
EVERY_PROJECT = "*"  # what the install key grants (no project is named "*")


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


def project_key(key: str, project: str) -> str:
    """The key that opens `project` only: its name, a dot, and an HMAC of the name under the install key."""
    mac = hmac.new(key.encode(), f"autopilot-project:{project}".encode(), hashlib.sha256).digest()
    return f"{project}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def grant(given: str, key: str) -> str | None:
    """What a presented key opens: EVERY_PROJECT (the install key), one project's name, or None.

    Both comparisons take constant time in the key's content: the project's name, which a key carries in the
    clear, says nothing about the secret part."""
    if matches(given, key):
        return EVERY_PROJECT
    project, dot, _ = given.partition(".")
    if dot and project and key and matches(given, project_key(key, project)):
        return project
    return None

"""Azure ML's online-endpoint name rule, and the per-install name an install's endpoints get on Azure.

Online endpoint names are unique per region, so on Azure ENDPOINT_NAME (and each project's name) is followed
by a stable per-install suffix. Every adapter keeps Azure's rule (`shared.platforms.port.check_name`), so a
name that works locally works on Azure.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.settings import Settings

# 3-32 letters, digits or '-', a letter first, not ending with '-'.
ENDPOINT_NAME_RULE = re.compile(r"[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]")
SUFFIX_LENGTH = 8


class EndpointNameError(ValueError):
    """A name Azure refuses for an online endpoint; the message says the rule."""


def endpoint_name(prefix: str, install: str | None) -> str:
    """`prefix`, and with `install` (on Azure: AUTOPILOT_INSTALL_ID, else the workspace's id) a hyphen and a
    stable suffix hashed from it. EndpointNameError if the name breaks Azure's rule."""
    name = prefix if install is None else \
        f"{prefix}-{hashlib.sha256(install.encode()).hexdigest()[:SUFFIX_LENGTH]}"
    if not ENDPOINT_NAME_RULE.fullmatch(name):
        limit = 32 - (SUFFIX_LENGTH + 1 if install is not None else 0)
        raise EndpointNameError("use letters, digits or hyphens, starting with a letter and not ending "
                                f"with a hyphen, at most {limit} characters"
                                + (" (a hyphen and an 8-character per-install suffix follow it on Azure)"
                                   if install is not None else ""))
    return name


def project_name(settings: Settings) -> str:
    """The project's name, which clients pass as `model`: ENDPOINT_NAME without Azure's install suffix."""
    if settings.platform == "azureml":
        return settings.endpoint_name[: -(SUFFIX_LENGTH + 1)]
    return settings.endpoint_name

"""What every ARM resource of the fake shares: the envelope, the clock, the errors Azure ML sends."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from typing import Any

from tests.fakes.wire.http import Reply, arm_error
from tests.fakes.wire.ids import stamp

Clock = Callable[[], datetime]


def envelope(resource_id: str, resource_type: str, properties: dict[str, Any], created: datetime,
             modified: datetime | None = None, **extra: Any) -> dict[str, Any]:
    """An ARM resource as Azure ML answers it: id, name, type, properties, systemData (and extras)."""
    return {
        "id": resource_id,
        "name": resource_id.rsplit("/", 1)[-1],
        "type": resource_type,
        "properties": copy.deepcopy(properties),
        "systemData": {"createdAt": stamp(created), "createdBy": "autopilot", "createdByType": "Application",
                       "lastModifiedAt": stamp(modified or created), "lastModifiedBy": "autopilot",
                       "lastModifiedByType": "Application"},
        **copy.deepcopy(extra),
    }


def not_found(kind: str, name: str) -> Reply:
    return arm_error(404, "UserError", f"{kind} {name} not found")


def user_error(message: str, status: int = 400) -> Reply:
    """A request the service refuses (Azure ML's code for bad requests is UserError)."""
    return arm_error(status, "UserError", message)

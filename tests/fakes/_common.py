"""What the Azure fakes share: the workspace's ids, a finished poller, the service's user error."""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import HttpResponseError

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
WORKSPACE_ID = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/"
                "Microsoft.MachineLearningServices/workspaces/ws")
LOCATION = "eastus"


class Poller:
    """What begin_* returns: here the operation is already done."""

    def __init__(self, value: Any = None) -> None:
        self._value = value

    def result(self, timeout: float | None = None) -> Any:
        return self._value

    def wait(self, timeout: float | None = None) -> None:
        return None

    def done(self) -> bool:
        return True


def user_error(message: str, status: int = 400, code: str = "UserError") -> HttpResponseError:
    """An HttpResponseError as the service raises it for a request it refuses."""
    error = HttpResponseError(message=f"({code}) {message}")
    error.status_code = status
    return error

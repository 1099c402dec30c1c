"""Why Azure ML failed a deployment: the error of the operation that provisioned it.

A deployment that fails while provisioning (its container never answers the liveness probe, the region runs
out of capacity, the image does not build) reads `provisioningState: Failed` and nothing more: the reason is
on the long-running operation its PUT started, which the steps never poll (started.py). The service keeps
that operation's status URL in the deployment's property bag (`AzureAsyncOperationUri`), so reading it once,
when the deployment has failed, gives the run and its alert Azure's own code and message.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from azure.core.rest import HttpRequest

log = logging.getLogger(__name__)

OPERATION_URI_PROPERTY = "AzureAsyncOperationUri"
ARM_HOST = "management.azure.com"  # the only host the app's ARM token goes to
MESSAGE_MAX = 500


def operation_uri(deployment: Any) -> str | None:
    """The status URL of the operation that last provisioned `deployment` (an SDK entity), if it is ARM's."""
    uri = str((getattr(deployment, "properties", None) or {}).get(OPERATION_URI_PROPERTY) or "")
    parts = urlsplit(uri)
    return uri if parts.scheme == "https" and parts.hostname == ARM_HOST else None


def failure_reason(arm: Any, deployment: Any) -> str | None:
    """`code: message` of the failed operation behind `deployment`, or None where there is none to read.

    `arm` is an azure-core client signed in for Azure Resource Manager (clients.arm_client). A reason is worth
    having, not worth failing the poll for: any error reading it is logged and gives None.
    """
    uri = operation_uri(deployment)
    if uri is None:
        return None
    try:
        response = arm.send_request(HttpRequest("GET", uri))
        body = response.json() if response.status_code == 200 else None
    except Exception as exc:
        log.warning("could not read why deployment %s failed: %s", getattr(deployment, "name", "?"),
                    type(exc).__name__)
        return None
    reported = body.get("error") if isinstance(body, dict) else None
    if not isinstance(reported, dict) or not reported.get("message"):
        return None
    return f"{reported.get('code') or 'Failed'}: {reported['message']}"[:MESSAGE_MAX]

"""The errors users meet on Azure ML, as our own types with messages that say what to do.

Azure reports most of them as an HttpResponseError whose code or message names the cause (OutOfQuota,
ResourceNotReady, ...); `translate` reads those and picks the type, so the lifecycle can tell a retry from a
setting to fix. Messages never carry keys or tokens: only the cause, the resource and the fix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from shared.deadline import OutOfTime
from shared.platforms.port import BaseModelRefused, NotFoundError, PlatformError, TransientPlatformError

ROLES_HINT = ("the Function App's identity needs 'AzureML Data Scientist' and 'Monitoring Reader' on the "
              "workspace (and 'Storage Blob Data Reader' on the staged container for the job); "
              "see docs/azure.md")


class ModelRetired(BaseModelRefused):
    """The base model is archived or past its fine-tune retirement date."""


class ModelNotFound(BaseModelRefused):
    """The registry has no such base model, or no active version of it."""


class EndpointNameTaken(PlatformError):
    """Another endpoint in the region already has that name (names are unique per Azure region)."""


class ComputeNotAllowed(PlatformError):
    """The cluster or instance type cannot fine-tune (or serve) this model."""


class InvalidParameters(PlatformError):
    """A fine-tune parameter is unknown or out of the component's range."""


class OutOfQuota(PlatformError):
    """The subscription has no VM-core quota left for the instance type."""


class EndpointQuotaReached(PlatformError):
    """The subscription's limit on online endpoints is reached."""


class DeploymentNotReady(PlatformError):
    """The deployment's container did not pass its liveness probe (ResourceNotReady)."""


class AuthFailed(PlatformError):
    """The identity could not authenticate, or lacks a role."""


class CapacityUnavailable(TransientPlatformError):
    """Azure has no capacity for the instance type right now; a later retry may succeed."""


class ServiceUnavailable(TransientPlatformError):
    """Throttling, a server error or a broken connection; retrying the same call may succeed."""


class TrafficNotSettled(TransientPlatformError):
    """A traffic update was accepted but the endpoint does not serve the new split yet; ask again later."""


def _code(error: HttpResponseError) -> str:
    inner = getattr(error, "error", None)
    return str(getattr(inner, "code", "") or "")


def translate(error: Exception, action: str) -> PlatformError:
    """Our error type for an exception raised while doing `action` (e.g. "deploy blue to endpoint ep-1").

    The step's deadline passing (deadline.OutOfTime) is no platform error: it is raised again as it is.
    """
    if isinstance(error, OutOfTime):
        raise error
    if isinstance(error, PlatformError):
        return error
    if isinstance(error, ClientAuthenticationError):
        return AuthFailed(f"{action}: Azure refused the credentials ({type(error).__name__}); {ROLES_HINT}")
    if isinstance(error, ResourceNotFoundError):
        return NotFoundError(f"{action}: not found")
    if isinstance(error, ServiceRequestError | ServiceResponseError):
        return ServiceUnavailable(f"{action}: could not reach Azure ML ({type(error).__name__}); will retry")
    if isinstance(error, HttpResponseError):
        return _translate_http(error, action)
    return PlatformError(f"{action}: {type(error).__name__}: {_first_line(error)}")


def _translate_http(error: HttpResponseError, action: str) -> PlatformError:
    text = f"{_code(error)} {error.message or ''}"
    lowered = text.lower()
    status = error.status_code or 0
    if status in (401, 403) or "authorizationfailed" in lowered:
        return AuthFailed(f"{action}: permission denied (HTTP {status}): {_first_line(error)}; {ROLES_HINT}")
    if status == 409 and "endpoint" in lowered and ("unique" in lowered or "already exists" in lowered):
        return EndpointNameTaken(
            f"{action}: another online endpoint in this Azure region already has that name (endpoint names "
            "are "
            "unique per region); set ENDPOINT_NAME to another name, or leave it unset so the per-install "
            "suffix makes it unique (docs/azure.md)")
    endpoint_limit = "endpoint" in lowered and ("quota" in lowered or "limit" in lowered)
    if endpoint_limit and "outofquota" not in lowered and "core" not in lowered:
        return EndpointQuotaReached(
            f"{action}: the subscription's online-endpoint limit is reached; delete unused endpoints "
            "(or lower IDLE_TTL so the sweep removes idle ones sooner), or request a higher limit")
    if "outofquota" in lowered or "quota" in lowered:
        return OutOfQuota(
            f"{action}: not enough VM-core quota for this instance type; request quota for its VM family "
            "in the workspace's region, or set AZUREML_INSTANCE_TYPE_INFERENCE / "
            "AZUREML_INSTANCE_TYPE_FINETUNE to a size you have quota for")
    if "resourcenotready" in lowered or "liveness" in lowered or "readiness" in lowered:
        return DeploymentNotReady(
            f"{action}: the model container did not become ready (ResourceNotReady / liveness probe failed); "
            "check the deployment logs (az ml online-deployment get-logs); large models may need a bigger "
            "instance type (AZUREML_INSTANCE_TYPE_INFERENCE)")
    if "outofcapacity" in lowered or "capacity" in lowered:
        return CapacityUnavailable(f"{action}: Azure has no capacity for this instance type now; will retry")
    if status == 429 or status >= 500:
        return ServiceUnavailable(f"{action}: Azure ML answered HTTP {status}; will retry")
    return PlatformError(f"{action}: Azure ML answered HTTP {status}: {_first_line(error)}")


def _first_line(error: Exception) -> str:
    # Azure messages can be long and multi-line; one line, with anything key-like masked, is enough to act on.
    text = str(getattr(error, "message", None) or error).strip()
    try:  # azure-ai-ml's client-side validation reports {"result": "Failed", "errors": [{"message": ...}]}
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("errors"), list):
        text = "; ".join(str(e.get("message", e)) for e in parsed["errors"] if isinstance(e, dict))
    line = text.splitlines()[0] if text else ""
    return re.sub(r"(?i)(key|token|sig|secret)=[^&\s]+", r"\1=***", line)[:300]


@contextmanager
def azure_call(action: str) -> Iterator[None]:
    """Run an Azure ML call, re-raising whatever it raises as our error type (see `translate`)."""
    try:
        yield
    except PlatformError:
        raise
    except Exception as error:
        raise translate(error, action) from error

"""Long-running operations started without a poller: the initial PUT or DELETE, nothing after it.

azure-ai-ml's `begin_*` always hands the request to an azure-core `LROPoller` with its own `AzureMLPolling`,
whose daemon thread polls ARM every 5 s (the SDK fixes the interval) and prints a `.` to stdout per poll,
whether or not anyone waits for the result. A Functions worker must hold no such thread: the steps read the
resource's provisioning state themselves, in later invocations. So these call the operation group's generated
client (the same one `begin_*` calls, with the SDK's own entity-to-REST serialization) with `polling=False`:
azure-core's `NoPolling` is finished at once and starts no thread.
"""

from __future__ import annotations

from typing import Any

from azure.ai.ml.entities import ManagedOnlineDeployment, OnlineEndpoint


def _scope(ops: Any) -> dict[str, Any]:
    """The generated client's keywords every call of this operation group carries."""
    return {"resource_group_name": ops._resource_group_name, "workspace_name": ops._workspace_name,
            **ops._init_kwargs, "polling": False}


def start_endpoint(ml: Any, endpoint: OnlineEndpoint) -> None:
    """PUT the endpoint (create, or update: tags, traffic); returns once ARM accepted it."""
    ops = ml.online_endpoints
    body = endpoint._to_rest_online_endpoint(location=ops._get_workspace_location())
    ops._online_operation.begin_create_or_update(endpoint_name=endpoint.name, body=body, **_scope(ops))


def start_endpoint_update(ml: Any, endpoint: OnlineEndpoint) -> None:
    """PUT an endpoint read back from the service (a traffic change): its own location, no workspace read."""
    ops = ml.online_endpoints
    body = endpoint._to_rest_online_endpoint(location=endpoint.location or ops._get_workspace_location())
    ops._online_operation.begin_create_or_update(endpoint_name=endpoint.name, body=body, **_scope(ops))


def start_deployment(ml: Any, deployment: ManagedOnlineDeployment) -> None:
    """PUT the deployment on its endpoint; returns once ARM accepted it (it then provisions for minutes)."""
    ops = ml.online_deployments
    body = deployment._to_rest_object(location=ops._get_workspace_location())
    ops._online_deployment.begin_create_or_update(endpoint_name=deployment.endpoint_name,
                                                  deployment_name=deployment.name, body=body, **_scope(ops))


def start_deployment_delete(ml: Any, endpoint: str, deployment: str) -> None:
    """DELETE one deployment (ResourceNotFoundError if there is none)."""
    ops = ml.online_deployments
    ops._online_deployment.begin_delete(endpoint_name=endpoint, deployment_name=deployment, **_scope(ops))


def start_endpoint_delete(ml: Any, endpoint: str) -> None:
    """DELETE the endpoint with its deployments (ResourceNotFoundError if there is none)."""
    ops = ml.online_endpoints
    ops._online_operation.begin_delete(endpoint_name=endpoint, **_scope(ops))

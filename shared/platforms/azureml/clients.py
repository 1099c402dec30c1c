"""The Azure clients the adapter talks through: workspace, `azureml` registry, Azure Monitor metrics, scoring.

All use DefaultAzureCredential: the Function App's managed identity in Azure, a developer's `az login` here.
`options` are azure-core client options passed to every client alike (tests pass `transport=`, so the real
SDKs serialize, poll and parse against a fake service). No progress dots on stdout: that is the app's log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy

from shared import deadline
from shared.settings import AzureMLSettings

# Every request's limits (azure-core's defaults are 300 s each): Azure ML's control plane answers in seconds;
# a scoring request waits for the deployment's own request timeout (endpoints.REQUEST_TIMEOUT_MS, 90 s).
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0


class DeadlinePolicy(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """Each attempt (it sits after the retry policy) within the step's deadline: none starts once it has
    passed (deadline.OutOfTime), and each one's timeouts are cut to what is left, so an invocation's Azure
    calls end by STEP_DEADLINE (plus one connect) whatever the SDKs retry or poll. Sans-I/O: one instance
    serves every pipeline MLClient builds from the same options (an HTTPPolicy's `next` would be shared)."""

    def on_request(self, request: PipelineRequest) -> None:  # type: ignore[type-arg]
        http = request.http_request
        deadline.check(f"{http.method} {http.url.split('?')[0]}")
        options = request.context.options
        options["connection_timeout"] = deadline.clamp(options.get("connection_timeout", CONNECT_TIMEOUT_S))
        options["read_timeout"] = deadline.clamp(options.get("read_timeout", READ_TIMEOUT_S))


def bounded(options: Mapping[str, Any]) -> dict[str, Any]:
    """The client options with the deadline policy after each client's retry policy."""
    return {"per_retry_policies": [DeadlinePolicy()], **options}


def credential() -> Any:
    """DefaultAzureCredential (managed identity in Functions; environment, CLI or VS Code sign-in locally)."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def workspace_client(settings: AzureMLSettings, cred: Any, options: Mapping[str, Any]) -> Any:
    """MLClient for the workspace that runs jobs, holds registered models and serves endpoints."""
    from azure.ai.ml import MLClient

    return MLClient(cred, subscription_id=settings.subscription_id,
                    resource_group_name=settings.resource_group,
                    workspace_name=settings.workspace, show_progress=False, **bounded(options))


def registry_client(settings: AzureMLSettings, cred: Any, options: Mapping[str, Any]) -> Any:
    """MLClient for the registry that holds the base models and the fine-tune pipeline (`azureml`)."""
    from azure.ai.ml import MLClient

    return MLClient(cred, registry_name=settings.registry, show_progress=False, **bounded(options))


def metrics_client(region: str, cred: Any, options: Mapping[str, Any]) -> Any:
    """Azure Monitor MetricsClient for one region (the batch metrics API is regional)."""
    from azure.monitor.querymetrics import MetricsClient

    host = f"https://{region.lower().replace(' ', '')}.metrics.monitor.azure.com"
    return MetricsClient(host, cred, **bounded(options))


def scoring_client(options: Mapping[str, Any]) -> Any:
    """An azure-core client (retries, user agent, the same transport) for the endpoints' scoring URIs."""
    from azure.core import PipelineClient
    from azure.core.pipeline.policies import HeadersPolicy, RetryPolicy, UserAgentPolicy

    policies = [HeadersPolicy(), UserAgentPolicy("finetune-autopilot"), RetryPolicy(retry_total=2),
                DeadlinePolicy()]
    return PipelineClient("https://inference.ml.azure.com", policies=policies, **options)


def arm_client(cred: Any, options: Mapping[str, Any]) -> Any:
    """An azure-core client whose requests carry the app's Azure Resource Manager token, for the absolute
    URLs that take one: the workspace's MLflow tracking server (the job's logged metrics, signed in as
    azureml-mlflow does) and the status of an operation a step began without a poller (failure.py)."""
    from azure.core import PipelineClient
    from azure.core.pipeline.policies import BearerTokenCredentialPolicy, RetryPolicy, UserAgentPolicy

    policies = [UserAgentPolicy("finetune-autopilot"), RetryPolicy(retry_total=2),
                BearerTokenCredentialPolicy(cred, "https://management.azure.com/.default"), DeadlinePolicy()]
    return PipelineClient("https://management.azure.com", policies=policies,
                          **{k: v for k, v in options.items() if k != "polling_interval"})

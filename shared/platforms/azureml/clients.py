"""The Azure clients the adapter talks through: workspace, `azureml` registry, Azure Monitor metrics, scoring.

All use DefaultAzureCredential: the Function App's managed identity in Azure, a developer's `az login` here.
`options` are azure-core client options passed to every client alike (tests pass `transport=`, so the real
SDKs serialize, poll and parse against a fake service). No progress dots on stdout: that is the app's log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.settings import AzureMLSettings


def credential() -> Any:
    """DefaultAzureCredential (managed identity in Functions; environment, CLI or VS Code sign-in locally)."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def workspace_client(settings: AzureMLSettings, cred: Any, options: Mapping[str, Any]) -> Any:
    """MLClient for the workspace that runs jobs, holds registered models and serves endpoints."""
    from azure.ai.ml import MLClient

    return MLClient(cred, subscription_id=settings.subscription_id,
                    resource_group_name=settings.resource_group,
                    workspace_name=settings.workspace, show_progress=False, **options)


def registry_client(settings: AzureMLSettings, cred: Any, options: Mapping[str, Any]) -> Any:
    """MLClient for the registry that holds the base models and the fine-tune pipeline (`azureml`)."""
    from azure.ai.ml import MLClient

    return MLClient(cred, registry_name=settings.registry, show_progress=False, **options)


def metrics_client(region: str, cred: Any, options: Mapping[str, Any]) -> Any:
    """Azure Monitor MetricsClient for one region (the batch metrics API is regional)."""
    from azure.monitor.querymetrics import MetricsClient

    host = f"https://{region.lower().replace(' ', '')}.metrics.monitor.azure.com"
    return MetricsClient(host, cred, **options)


def scoring_client(options: Mapping[str, Any]) -> Any:
    """An azure-core client (retries, user agent, the same transport) for the endpoints' scoring URIs."""
    from azure.core import PipelineClient
    from azure.core.pipeline.policies import HeadersPolicy, RetryPolicy, UserAgentPolicy

    policies = [HeadersPolicy(), UserAgentPolicy("finetune-autopilot"), RetryPolicy(retry_total=2)]
    return PipelineClient("https://inference.ml.azure.com", policies=policies, **options)

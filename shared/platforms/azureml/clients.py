"""The Azure clients the adapter talks through: workspace, `azureml` registry, Azure Monitor metrics.

All use DefaultAzureCredential: the Function App's managed identity in Azure, a developer's `az login` here.
Tests pass in-memory fakes of the same operation groups instead (see AzureMLPlatform's arguments).
"""

from __future__ import annotations

from typing import Any

from shared.settings import AzureMLSettings


def credential() -> Any:
    """DefaultAzureCredential (managed identity in Functions; environment, CLI or VS Code sign-in locally)."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def workspace_client(settings: AzureMLSettings, cred: Any) -> Any:
    """MLClient for the workspace that runs jobs, holds registered models and serves endpoints."""
    from azure.ai.ml import MLClient

    return MLClient(cred, subscription_id=settings.subscription_id,
                    resource_group_name=settings.resource_group, workspace_name=settings.workspace)


def registry_client(settings: AzureMLSettings, cred: Any) -> Any:
    """MLClient for the registry that holds the base models and the fine-tune pipeline (`azureml`)."""
    from azure.ai.ml import MLClient

    return MLClient(cred, registry_name=settings.registry)


def metrics_client(region: str, cred: Any) -> Any:
    """Azure Monitor MetricsClient for one region (the batch metrics API is regional)."""
    from azure.monitor.querymetrics import MetricsClient

    return MetricsClient(f"https://{region.lower().replace(' ', '')}.metrics.monitor.azure.com", cred)

"""The fake Azure's names: one subscription, the workspace's resource group and region, the registry."""

from __future__ import annotations

from datetime import UTC, datetime

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
TENANT = "11111111-1111-1111-1111-111111111111"
RESOURCE_GROUP = "rg-autopilot"
WORKSPACE = "mlw-autopilot"
LOCATION = "eastus2"
WORKSPACE_GUID = "ee8c8c7b-8359-4874-b140-2a13f80fdccd"
PROVIDER = "Microsoft.MachineLearningServices"
WORKSPACE_ID = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/{PROVIDER}"
                f"/workspaces/{WORKSPACE}")
ARM = "management.azure.com"
# Where the azureml system registry lives (the discovery service names it; these are from a recording).
REGISTRY = "azureml"
REGISTRY_SUBSCRIPTION = "6c6683e9-e5fe-4038-8519-ce6ebec2ba15"
REGISTRY_RESOURCE_GROUP = "registry-builtin-prod-eastus-01"
REGISTRY_HOST = f"cert-{LOCATION}.experiments.azureml.net"
# The identity the function app runs as (its principal id in role assignments).
APP_PRINCIPAL = "22222222-2222-2222-2222-222222222222"


def stamp(moment: datetime) -> str:
    """A time as ARM writes it in systemData: 2022-10-28T19:14:54.2541612+00:00 (UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0+00:00")

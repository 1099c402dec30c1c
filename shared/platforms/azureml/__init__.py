"""The Azure ML adapter of the platform port (azure-ai-ml 1.35, registry `azureml`)."""

from shared.platforms.azureml.platform import AzureMLPlatform

__all__ = ["AzureMLPlatform"]

"""A ready Azure ML world for adapter tests: today's registry, a workspace, metrics, the platform."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from shared.platforms.azureml import AzureMLPlatform
from shared.settings import Settings
from tests.fakes.azureml import FakeMLClient, FakeRegistryClient, clock_at, registry_model
from tests.fakes.monitor import FakeMetricsClient

NOW = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
A100_SKUS = ["Standard_NC24ads_A100_v4", "Standard_NC48ads_A100_v4", "Standard_NC96ads_A100_v4"]
# Phi-4 as the registry has it in 2026: allow-lists under system_metadata.SKU, defaults as a dict-literal tag.
PHI4_DEFAULTS = ("{'apply_lora': 'true', 'apply_deepspeed': 'true', 'deepspeed_stage': 3, 'precision': 16, "
                 "'learning_rate': 5e-6, 'lr_scheduler_type': 'cosine', 'num_train_epochs': 1, "
                 "'learning_rate_min': 5e-7}")


@dataclass
class World:
    settings: Settings
    platform: AzureMLPlatform
    ml: FakeMLClient
    registry: FakeRegistryClient
    metrics: FakeMetricsClient


def azureml_env(**extra: str) -> dict[str, str]:
    """Settings for the Azure ML platform (storage is not touched by the adapter)."""
    return {"AUTOPILOT_STORAGE": "UseDevelopmentStorage=true", "AUTOPILOT_PLATFORM": "azureml",
            "AZUREML_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
            "AZUREML_RESOURCE_GROUP": "rg", "AZUREML_WORKSPACE": "ws", **extra}


def build_world(**env: str) -> World:
    """The registry holds Phi-4 (fine-tunable) and the seed's Phi-3-mini-4k-instruct (archived, retired)."""
    registry = FakeRegistryClient()
    registry.models.create_or_update(registry_model(
        "Phi-4", "7", tags={"model_specific_defaults": PHI4_DEFAULTS},
        system_metadata={"SKU": {"finetuneRecommendedSkus": A100_SKUS,
                                 "inferenceRecommendedSkus": A100_SKUS}}))
    registry.models.create_or_update(registry_model(
        "Phi-3-mini-4k-instruct", "15",
        tags={"FinetuneRetirementDate": "2025-08-30", "finetune_compute_allow_list": str(A100_SKUS)}))
    ml = FakeMLClient(registry, clock=clock_at(NOW))
    metrics = FakeMetricsClient()
    settings = Settings.from_env(azureml_env(**env))
    platform = AzureMLPlatform(settings, ml_client=ml, registry_client=registry, metrics_client=metrics,
                               clock=clock_at(NOW))
    return World(settings, platform, ml, registry, metrics)

"""One set of fine-tune parameters means the same thing on both platforms.

For each set of run overrides, the value the Azure ML adapter sends for a training parameter (what
shared.finetune.resolve_parameters yields, or the component's own default when it sends nothing) is the
value the local engine trains with.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from engine.models.tiny import TINY_FINETUNE_DEFAULTS
from engine.train.training import TrainingPlan, plan_from_parameters, resolve_plan
from shared.finetune import COMPONENT_INPUTS, resolve_parameters

SHARED = tuple(f.name for f in dataclasses.fields(TrainingPlan) if f.name != "ignored")

OVERRIDES: list[dict[str, Any]] = [
    {},
    {"num_train_epochs": 2, "learning_rate": "1e-4", "lr_scheduler_type": "linear"},
    {"per_device_train_batch_size": "8", "gradient_accumulation_steps": 4, "max_steps": "50", "seed": "7"},
    {"lora_r": 16, "lora_alpha": "32", "lora_dropout": "0.05", "max_seq_length": 256},
    {"apply_lora": "false", "merge_lora_weights": False, "logging_steps": "5"},
    {"apply_lora": True, "learning_rate": 5e-6, "num_train_epochs": 3.0},  # equal to DEFAULTS, still chosen
    {"apply_deepspeed": "true", "precision": 16, "deepspeed_stage": "3"},  # Azure-only, ignored locally
]


def typed(name: str, value: Any) -> Any:
    """A component value in the local plan's type (flags are strings on the component)."""
    kind = type(getattr(TrainingPlan(), name))
    if kind is bool:
        return str(value).lower() == "true"
    return kind(value)


def test_every_local_parameter_is_a_component_input():
    assert set(SHARED) <= set(COMPONENT_INPUTS)


def test_local_defaults_are_the_component_defaults():
    plan = plan_from_parameters({})
    for name in SHARED:
        assert getattr(plan, name) == typed(name, COMPONENT_INPUTS[name].default), name


@pytest.mark.parametrize("model_defaults", [{}, TINY_FINETUNE_DEFAULTS, {"learning_rate": 5e-6,
                                                                         "lr_scheduler_type": "cosine",
                                                                         "deepspeed_stage": "3"}],
                         ids=["no model defaults", "tiny model", "phi-4-like"])
@pytest.mark.parametrize("overrides", OVERRIDES, ids=lambda o: ",".join(o) or "none")
def test_both_adapters_resolve_the_same_values(model_defaults, overrides):
    sent = resolve_parameters(model_defaults, overrides)  # as AzureMLPlatform.submit does
    plan = resolve_plan(model_defaults, overrides)
    for name in SHARED:
        azure = sent.get(name, COMPONENT_INPUTS[name].default)
        local = getattr(plan, name)
        assert local == typed(name, azure), f"{name}: local {local!r}, azure {azure!r}"
    assert isinstance(plan.num_train_epochs, float) and isinstance(plan.lora_r, int)


def test_an_override_wins_over_the_model_defaults_on_both():
    overrides = {"learning_rate": "3e-4"}
    assert resolve_parameters(TINY_FINETUNE_DEFAULTS, overrides)["learning_rate"] == 3e-4
    assert resolve_plan(TINY_FINETUNE_DEFAULTS, overrides).learning_rate == 3e-4
    tiny_rate = float(TINY_FINETUNE_DEFAULTS["learning_rate"])
    assert resolve_plan(TINY_FINETUNE_DEFAULTS, {}).learning_rate == tiny_rate

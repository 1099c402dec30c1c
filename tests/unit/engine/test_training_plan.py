"""The Azure ML component's parameters, as the local engine reads them."""

from __future__ import annotations

import pytest

from engine.train.training import ParameterError, TrainingPlan, conversations, plan_from_parameters


def test_string_values_are_converted_to_their_types():
    plan = plan_from_parameters({
        "num_train_epochs": "2", "max_steps": "-1", "per_device_train_batch_size": "16",
        "learning_rate": "2e-5", "lr_scheduler_type": "cosine", "gradient_accumulation_steps": "4",
        "lora_r": "16", "lora_alpha": "32", "lora_dropout": "0.05", "max_seq_length": "256", "seed": "7",
        "apply_lora": "true", "merge_lora_weights": "False", "logging_steps": "5"})
    assert plan == TrainingPlan(num_train_epochs=2.0, max_steps=-1, per_device_train_batch_size=16,
                                learning_rate=2e-5, lr_scheduler_type="cosine", gradient_accumulation_steps=4,
                                lora_r=16, lora_alpha=32, lora_dropout=0.05, max_seq_length=256, seed=7,
                                apply_lora=True, merge_lora_weights=False, logging_steps=5)
    assert isinstance(plan.per_device_train_batch_size, int) and isinstance(plan.learning_rate, float)


def test_azure_only_and_unknown_keys_are_ignored_and_listed():
    plan = plan_from_parameters({"apply_deepspeed": "true", "deepspeed_stage": "3", "precision": "16",
                                 "compute_finetune": "gpu-cluster", "instance_type_finetune": "Standard_NC",
                                 "something_new": "x", "lora_r": 4})
    assert plan.lora_r == 4
    assert plan.ignored == ("apply_deepspeed", "compute_finetune", "deepspeed_stage",
                            "instance_type_finetune", "precision", "something_new")
    assert "ignored" not in plan.as_params()


def test_defaults_are_the_components():
    plan = plan_from_parameters({})
    assert (plan.learning_rate, plan.lora_alpha) == (2e-5, 128)
    assert not plan.apply_lora and plan.merge_lora_weights  # the component applies LoRA only when asked


@pytest.mark.parametrize(("parameters", "message"), [
    ({"learning_rate": "fast"}, "learning_rate='fast' is not a number"),
    ({"apply_lora": "maybe"}, "apply_lora='maybe' is not a flag"),
    ({"lora_r": "2.5"}, "lora_r='2.5' must be a whole number"),
    ({"per_device_train_batch_size": "0"}, "per_device_train_batch_size=0 must be at least 1"),
    ({"num_train_epochs": "0"}, "train nothing"),
])
def test_bad_values_name_the_parameter(parameters, message):
    with pytest.raises(ParameterError, match=message):
        plan_from_parameters(parameters)


def test_conversations_keep_only_messages_and_tools():
    rows = [{"prompt": "hi", "prompt_id": "1", "messages": [{"role": "user", "content": "hi", "name": "x"}]},
            {"messages": [{"role": "assistant", "content": "a", "weight": 0}],
             "tools": [{"type": "function"}]}]
    assert conversations(rows) == [  # a message's chat-format keys (weight, name...) are the renderer's
        {"messages": [{"role": "user", "content": "hi", "name": "x"}]},
        {"messages": [{"role": "assistant", "content": "a", "weight": 0}], "tools": [{"type": "function"}]}]

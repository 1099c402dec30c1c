"""Fine-tune parameters: precedence, the component's types, unknown names, the seed's display name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from shared import finetune
from shared.finetune import (
    COMPONENT_INPUTS,
    DEFAULTS,
    TUNABLE,
    ParameterError,
    display_name,
    parse_model_specific_defaults,
    resolve_parameters,
)

PHI4 = {"apply_lora": "true", "apply_deepspeed": "true", "deepspeed_stage": 3, "precision": 16,
        "learning_rate": 5e-6, "lr_scheduler_type": "cosine", "num_train_epochs": 1,
        "learning_rate_min": 5e-7}


def test_defaults_are_the_seeds_in_the_components_types() -> None:
    params = resolve_parameters({}, {})
    assert params["apply_lora"] == "true" and params["apply_deepspeed"] == "true"
    assert params["deepspeed_stage"] == "2"  # a string, as the component declares it
    assert params["lr_scheduler_type"] == "cosine"
    assert params["num_train_epochs"] == 3 and isinstance(params["num_train_epochs"], int)
    assert params["learning_rate"] == pytest.approx(5e-6)
    assert set(DEFAULTS) <= TUNABLE <= set(COMPONENT_INPUTS)


def test_model_defaults_override_seed_defaults_and_run_overrides_win() -> None:
    params = resolve_parameters(PHI4, {"learning_rate": "1e-5", "apply_lora": False})
    assert params["deepspeed_stage"] == "3"  # from the model
    assert params["precision"] == "16"  # int 16 in the registry tag becomes the component's "16"
    assert params["num_train_epochs"] == 1  # the model's 1 beats the seed's 3
    assert params["learning_rate"] == pytest.approx(1e-5)  # the run's override beats the model
    assert params["apply_lora"] == "false"


def test_model_defaults_the_component_does_not_take_are_dropped() -> None:
    assert "learning_rate_min" not in resolve_parameters(PHI4, {})


def test_unknown_override_is_refused_with_the_valid_names() -> None:
    with pytest.raises(ParameterError) as caught:
        resolve_parameters({}, {"learning_rat": "1e-5"})
    message = str(caught.value)
    assert "learning_rat" in message and "learning_rate" in message and "lora_r" in message


def test_platform_owned_inputs_cannot_be_overridden() -> None:
    with pytest.raises(ParameterError, match="compute_finetune"):
        resolve_parameters({}, {"compute_finetune": "my-cluster"})


@pytest.mark.parametrize(("name", "raw", "expected"), [
    ("num_train_epochs", "2", 2), ("num_train_epochs", 2.0, 2), ("lora_dropout", "0.05", 0.05),
    ("apply_deepspeed", "TRUE", "true"), ("apply_deepspeed", True, "true"), ("deepspeed_stage", 3, "3"),
    ("precision", 16.0, "16"), ("max_seq_length", "-1", -1),
])
def test_values_are_converted_to_the_components_types(name: str, raw: object, expected: object) -> None:
    assert resolve_parameters({}, {name: raw})[name] == expected


@pytest.mark.parametrize(("name", "raw"), [
    ("num_train_epochs", "two"), ("num_train_epochs", 1.5), ("num_train_epochs", True),
    ("deepspeed_stage", "1"), ("apply_lora", "yes"), ("lr_scheduler_type", "cosine_annealing"),
    ("learning_rate", "fast"),
])
def test_values_the_component_would_reject_are_refused(name: str, raw: object) -> None:
    with pytest.raises(ParameterError, match=name):
        resolve_parameters({}, {name: raw})


def test_model_specific_defaults_tag_parses_as_the_registry_writes_it() -> None:
    assert parse_model_specific_defaults("{'deepspeed_stage': 3, 'apply_lora': 'true'}") == {
        "deepspeed_stage": 3, "apply_lora": "true"}
    assert parse_model_specific_defaults('{"precision": 16}') == {"precision": 16}
    assert parse_model_specific_defaults(None) == {}
    with pytest.raises(ParameterError):
        parse_model_specific_defaults("[1, 2]")


def test_display_name_is_the_seeds() -> None:
    params = {**resolve_parameters(PHI4, {"gradient_accumulation_steps": 2, "save_total_limit": 1}),
              "number_of_gpu_to_use_finetuning": 4}
    assert display_name(params) == "bs8-cosine-ds3-lora-save_limit1-seqlen-1"
    off = resolve_parameters({}, {"apply_deepspeed": "false", "apply_lora": "false", "max_seq_length": 512})
    expected = "Phi-4-chat-bs1-cosine-nods-nolora-save_limit-1-seqlen512"
    assert display_name(off, prefix="Phi-4-chat") == expected


def test_module_does_not_import_azure() -> None:
    tree = ast.parse(Path(finetune.__file__).read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m.startswith("azure")]

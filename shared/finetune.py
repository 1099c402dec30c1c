"""Fine-tune parameters: seed defaults, the model's own defaults, per-run overrides, in the component's types.

The vocabulary is the input names of Azure ML's `chat_completion_pipeline` (registry `azureml`); both platform
adapters read the same names from `JobSpec.parameters`, so a manifest means the same locally and on Azure.
No azure-ai-ml import here: the local engine imports this module.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

InputType = Literal["string", "integer", "number", "uri_file", "mltable", "mlflow_model", "custom_model"]
ParameterValue = str | int | float

_FLAG = ("true", "false")


@dataclass(frozen=True)
class ComponentInput:
    """One input of the pipeline component: its type, default and (for strings) allowed values."""

    type: InputType
    default: ParameterValue | None = None
    enum: tuple[str, ...] = ()
    optional: bool = True


def _flag(default: str) -> ComponentInput:
    return ComponentInput("string", default, _FLAG)


def _int(default: int) -> ComponentInput:
    return ComponentInput("integer", default)


def _num(default: float) -> ComponentInput:
    return ComponentInput("number", default)


# chat_completion_pipeline's inputs (azureml-assets, pipeline_components/chat_completion/spec.yaml, 0.0.82).
# The contract: tests hold these names against the component spec; nothing else may be passed to it.
COMPONENT_INPUTS: Mapping[str, ComponentInput] = {
    "instance_type_model_import": ComponentInput("string", "Standard_d12_v2"),
    "instance_type_preprocess": ComponentInput("string", "Standard_d12_v2"),
    "instance_type_finetune": ComponentInput("string", "Standard_nc24rs_v3"),
    "instance_type_model_evaluation": ComponentInput("string", "Standard_nc24rs_v3"),
    "shm_size_finetune": ComponentInput("string", "5g"),
    "num_nodes_finetune": _int(1),
    "number_of_gpu_to_use_finetuning": _int(1),
    "huggingface_id": ComponentInput("string"),
    "finetune_config_path": ComponentInput("uri_file"),
    "trust_remote_code": _flag("false"),
    "pytorch_model_path": ComponentInput("custom_model"),
    "mlflow_model_path": ComponentInput("mlflow_model"),
    "task_name": ComponentInput("string", "ChatCompletion", ("ChatCompletion",), optional=False),
    "batch_size": _int(1000),
    "pad_to_max_length": _flag("false"),
    "max_seq_length": _int(-1),
    "train_file_path": ComponentInput("uri_file"),
    "validation_file_path": ComponentInput("uri_file"),
    "test_file_path": ComponentInput("uri_file"),
    "train_mltable_path": ComponentInput("mltable"),
    "validation_mltable_path": ComponentInput("mltable"),
    "test_mltable_path": ComponentInput("mltable"),
    "apply_lora": _flag("false"),
    "merge_lora_weights": _flag("true"),
    "lora_alpha": _int(128),
    "lora_r": _int(8),
    "lora_dropout": _num(0.0),
    "num_train_epochs": _int(1),
    "max_steps": _int(-1),
    "per_device_train_batch_size": _int(1),
    "per_device_eval_batch_size": _int(1),
    "auto_find_batch_size": _flag("false"),
    "optim": ComponentInput("string", "adamw_torch", ("adamw_torch", "adafactor")),
    "learning_rate": _num(2e-5),
    "warmup_steps": _int(0),
    "weight_decay": _num(0.0),
    "adam_beta1": _num(0.9),
    "adam_beta2": _num(0.999),
    "adam_epsilon": _num(1e-8),
    "gradient_accumulation_steps": _int(1),
    "eval_accumulation_steps": _int(-1),
    "lr_scheduler_type": ComponentInput("string", "linear", (
        "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup")),
    "precision": ComponentInput("string", "32", ("32", "16")),
    "seed": _int(42),
    "enable_full_determinism": _flag("false"),
    "dataloader_num_workers": _int(0),
    "ignore_mismatched_sizes": _flag("false"),
    "max_grad_norm": _num(1.0),
    "evaluation_strategy": ComponentInput("string", "epoch", ("epoch", "steps", "disable")),
    "evaluation_steps_interval": _num(0.0),
    "eval_steps": _int(500),
    "logging_strategy": ComponentInput("string", "steps", ("epoch", "steps")),
    "logging_steps": _int(10),
    "metric_for_best_model": ComponentInput("string", "loss", ("loss", "f1", "exact")),
    "resume_from_checkpoint": _flag("false"),
    "save_total_limit": _int(-1),
    "apply_early_stopping": _flag("false"),
    "early_stopping_patience": _int(1),
    "early_stopping_threshold": _num(0.0),
    "apply_deepspeed": _flag("false"),
    "deepspeed": ComponentInput("uri_file"),
    "deepspeed_stage": ComponentInput("string", "2", ("2", "3")),
    "apply_ort": _flag("false"),
    "evaluation_config": ComponentInput("uri_file"),
    "evaluation_config_params": ComponentInput("string"),
    "compute_model_import": ComponentInput("string", "serverless"),
    "compute_preprocess": ComponentInput("string", "serverless"),
    "compute_finetune": ComponentInput("string", "serverless"),
    "compute_model_evaluation": ComponentInput("string", "serverless"),
}

# Inputs the platform fills from settings and the staged data; a run cannot override them.
# trust_remote_code would run code from the model's repository on our compute: never a run's choice.
PLATFORM_INPUTS = frozenset({
    "instance_type_model_import", "instance_type_preprocess", "instance_type_finetune",
    "instance_type_model_evaluation", "number_of_gpu_to_use_finetuning", "task_name", "huggingface_id",
    "compute_model_import", "compute_preprocess", "compute_finetune", "compute_model_evaluation",
    "trust_remote_code",
})

# The literal inputs a run may set: everything that is neither data/model nor the platform's.
TUNABLE = frozenset(
    name for name, spec in COMPONENT_INPUTS.items()
    if spec.type in ("string", "integer", "number") and name not in PLATFORM_INPUTS
)

# The seed's defaults (azureml-examples chat-completion notebook), plus LoRA and length settings the local
# engine needs explicitly; flags and deepspeed_stage are strings, as the component declares them.
DEFAULTS: Mapping[str, ParameterValue] = {
    "num_train_epochs": 3,
    "per_device_train_batch_size": 1,
    "per_device_eval_batch_size": 1,
    "learning_rate": 5e-6,
    "lr_scheduler_type": "cosine",
    "apply_lora": "true",
    "apply_deepspeed": "true",
    "deepspeed_stage": "2",
    "lora_r": 8,
    "lora_alpha": 128,
    "lora_dropout": 0.0,
    "max_seq_length": -1,
    "save_total_limit": -1,
}


@dataclass(frozen=True)
class Range:
    """The values a numeric parameter may take for a job to train: `low` to `high` (`low` itself excluded
    when `above`), or `off` (the component's "not set", e.g. max_seq_length -1 = the model's own)."""

    low: float
    high: float
    above: bool = False
    off: int | None = None

    def admits(self, value: float) -> bool:
        """Whether `value` is in the range (or is the "not set" value)."""
        if self.off is not None and value == self.off:
            return True
        return (value > self.low if self.above else value >= self.low) and value <= self.high

    def describe(self) -> str:
        """The range in words, for an error message."""
        def number(x: float) -> str:
            return f"{int(x):,}" if float(x).is_integer() and abs(x) >= 1 else f"{x:g}"
        span = (f"more than {number(self.low)} and at most {number(self.high)}" if self.above
                else f"{number(self.low)} to {number(self.high)}")
        return f"{self.off} (not set) or {span}" if self.off is not None else span


# The one rule set for what can train, whether a value comes from a manifest key (epochs), its
# `hyperparameters`, FINETUNE_* or a model's defaults: checked when the upload arrives, not in the job.
# max_seq_length 1 leaves no token of an assistant turn (the trainer then fails on an empty batch); below
# 64 a chat template's own markers fill the window.
RANGES: Mapping[str, Range] = {
    "num_train_epochs": Range(1, 100),
    "max_steps": Range(1, 10**7, off=-1),
    "max_seq_length": Range(64, 131072, off=-1),
    "per_device_train_batch_size": Range(1, 1024),
    "per_device_eval_batch_size": Range(1, 1024),
    "gradient_accumulation_steps": Range(1, 1024),
    "eval_accumulation_steps": Range(1, 1024, off=-1),
    "learning_rate": Range(0, 1, above=True),
    "lora_r": Range(1, 1024),
    "lora_alpha": Range(1, 4096),
    "lora_dropout": Range(0, 0.99),
    "warmup_steps": Range(0, 10**7),
    "weight_decay": Range(0, 1),
    "adam_beta1": Range(0, 0.9999),
    "adam_beta2": Range(0, 0.9999),
    "adam_epsilon": Range(0, 1, above=True),
    "max_grad_norm": Range(0, 10**6),
    "logging_steps": Range(1, 10**7),
    "eval_steps": Range(1, 10**7),
    "evaluation_steps_interval": Range(0, 1),
    "save_total_limit": Range(1, 10**4, off=-1),
    "seed": Range(0, 2**32 - 1),
    "num_nodes_finetune": Range(1, 64),
    "batch_size": Range(1, 10**6),
    "dataloader_num_workers": Range(0, 64),
    "early_stopping_patience": Range(1, 10**4),
    "early_stopping_threshold": Range(0, 10**6),
}


class ParameterError(ValueError):
    """A fine-tune parameter is unknown or has a value the component would reject."""


def parse_model_specific_defaults(raw: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """A registry model's `model_specific_defaults` tag (a Python/JSON dict literal, or a dict) as a dict."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        value = json.loads(raw)
    except ValueError:
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            raise ParameterError(f"model_specific_defaults is not a dict literal: {raw[:80]!r}") from None
    if not isinstance(value, dict):
        raise ParameterError("model_specific_defaults is not a dict")
    return value


def convert(name: str, value: Any) -> ParameterValue:
    """`value` in the type the component declares for input `name`; ParameterError if it cannot be."""
    spec = COMPONENT_INPUTS[name]
    try:
        if spec.type == "integer":
            converted: ParameterValue = _to_int(value)
        elif spec.type == "number":
            if isinstance(value, bool):
                raise ValueError
            converted = float(value)
        elif isinstance(value, bool):
            converted = "true" if value else "false"
        elif isinstance(value, float) and value.is_integer():
            converted = str(int(value))  # precision 16.0 -> "16"
        else:
            converted = str(value).strip()
            if spec.enum == _FLAG:
                converted = converted.lower()
    except (TypeError, ValueError):
        raise ParameterError(f"fine-tune parameter {name}={value!r} is not a valid {spec.type}") from None
    if spec.enum and converted not in spec.enum:
        raise ParameterError(f"fine-tune parameter {name}={value!r} must be one of {', '.join(spec.enum)}")
    limits = RANGES.get(name)
    if limits is not None and isinstance(converted, int | float) and not limits.admits(converted):
        raise ParameterError(f"fine-tune parameter {name}={value!r} is out of range: it must be "
                             f"{limits.describe()}")
    return converted


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value
    number = float(value)
    if not number.is_integer():
        raise ValueError
    return int(number)


def resolve_parameters(model_specific_defaults: Mapping[str, Any],
                       overrides: Mapping[str, Any]) -> dict[str, ParameterValue]:
    """DEFAULTS ← the model's own defaults ← the run's overrides, each converted to the component's type.

    The model's defaults may carry names the component does not take (the registry adds e.g.
    `learning_rate_min`); those are dropped. An override with an unknown or platform-owned name is refused
    with the list of names a run may set.
    """
    unknown = sorted(set(overrides) - TUNABLE)
    if unknown:
        raise ParameterError(
            f"unknown fine-tune parameter(s) {', '.join(unknown)}; valid names: {', '.join(sorted(TUNABLE))}")
    merged: dict[str, ParameterValue] = {name: convert(name, v) for name, v in DEFAULTS.items()}
    for name, value in model_specific_defaults.items():
        if name in TUNABLE:
            merged[name] = convert(name, value)
    for name, value in overrides.items():
        merged[name] = convert(name, value)
    return merged


def display_name(params: Mapping[str, Any], prefix: str = "") -> str:
    """The seed's run name: effective batch size, scheduler, ds<stage>/nods, lora/nolora, save limit, seq len.

    The batch size counts every GPU (number_of_gpu_to_use_finetuning × num_nodes_finetune), as the seed did.
    """
    batch = 1
    for factor in ("per_device_train_batch_size", "gradient_accumulation_steps",
                   "number_of_gpu_to_use_finetuning", "num_nodes_finetune"):
        batch *= int(params.get(factor, 1))
    deepspeed = (f"ds{params.get('deepspeed_stage', '2')}"
                 if str(params.get("apply_deepspeed", "false")).lower() == "true" else "nods")
    lora = "lora" if str(params.get("apply_lora", "false")).lower() == "true" else "nolora"
    name = (f"bs{batch}-{params.get('lr_scheduler_type', 'linear')}-{deepspeed}-{lora}"
            f"-save_limit{params.get('save_total_limit', -1)}-seqlen{params.get('max_seq_length', -1)}")
    return f"{prefix}-{name}" if prefix else name

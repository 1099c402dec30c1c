"""The embedded engine's fine-tune: TRL SFT with LoRA, driven by the Azure ML component's parameters.

`plan_from_parameters` reads the same vocabulary the `chat_completion_pipeline` component takes (string flags
included), so one set of fine-tune parameters drives both platforms. `fine_tune` does the work on whatever
device is present and returns the trained (merged) model with its losses.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.train.train_data import TrainFile, conversation, examples, steps_for, train_dataset
from shared.evaluation import perplexity

log = logging.getLogger(__name__)

# Component parameters that only mean something on Azure ML compute; the local engine ignores them quietly.
AZURE_ONLY = frozenset({
    "apply_deepspeed", "deepspeed_stage", "precision", "compute_model_import", "compute_preprocess",
    "compute_finetune", "compute_model_evaluation", "instance_type_finetune", "num_nodes_finetune",
    "number_of_gpu_to_use_finetuning", "optim", "evaluation_strategy", "save_total_limit", "task_name",
    "mlflow_model_path", "huggingface_id", "pytorch_model_path", "train_file_path", "validation_file_path",
    "test_file_path", "apply_ort", "auto_find_batch_size",
})


# Settings chosen by measurement (bench/engine/train.py --explore), applied on top of the plan: they change
# how fast a step runs, not what the plan trains. Batches of similar-length conversations waste little on
# padding, which on CPU beat padding-free batches (SDPA has no varlen kernel, so a flattened batch pays for
# attention across its whole length) and packing.
SPEED_SETTINGS: dict[str, Any] = {"train_sampling_strategy": "group_by_length"}

# Below this size a CPU fine-tune runs single-threaded (measured: steadier and no slower on 2 shared cores).
SMALL_MODEL_PARAMETERS = 50_000_000


class ParameterError(ValueError):
    """A fine-tune parameter has a value the engine cannot use; the message names it."""


@dataclass(frozen=True)
class TrainingPlan:
    """The fine-tune settings the local engine uses, with the component's defaults."""

    num_train_epochs: float = 1.0
    max_steps: int = -1
    per_device_train_batch_size: int = 1
    per_device_eval_batch_size: int = 1
    learning_rate: float = 2e-5
    lr_scheduler_type: str = "linear"
    gradient_accumulation_steps: int = 1
    lora_r: int = 8
    lora_alpha: int = 128
    lora_dropout: float = 0.0
    max_seq_length: int = -1
    seed: int = 42
    apply_lora: bool = False
    merge_lora_weights: bool = True
    logging_steps: int = 10
    # The held-out split is evaluated after every epoch and the best epoch is kept; early stopping (the
    # component's names) ends training after `early_stopping_patience` evaluations without an improvement
    # of more than `early_stopping_threshold`.
    apply_early_stopping: bool = False
    early_stopping_patience: int = 1
    early_stopping_threshold: float = 0.0
    metric_for_best_model: str = "loss"
    # Keys given but not used here (Azure-only or unknown), kept so the run can record them.
    ignored: tuple[str, ...] = field(default=(), compare=False)

    def as_params(self) -> dict[str, Any]:
        """The plan as flat MLflow params (without the ignored-key list)."""
        params = asdict(self)
        params.pop("ignored")
        return params


def _as_bool(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ParameterError(f"fine-tune parameter {name}={raw!r} is not a flag; use 'true' or 'false'")


def _as_number(name: str, raw: Any, kind: type) -> Any:
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise ParameterError(f"fine-tune parameter {name}={raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ParameterError(f"fine-tune parameter {name}={raw!r} must be finite")
    if kind is int:
        if not value.is_integer():
            raise ParameterError(f"fine-tune parameter {name}={raw!r} must be a whole number")
        return int(value)
    return value


# The component's parameter names the local engine understands, and the type each converts to.
_KINDS: dict[str, type] = {
    "num_train_epochs": float, "max_steps": int, "per_device_train_batch_size": int,
    "per_device_eval_batch_size": int,
    "learning_rate": float, "lr_scheduler_type": str, "gradient_accumulation_steps": int,
    "lora_r": int, "lora_alpha": int, "lora_dropout": float, "max_seq_length": int, "seed": int,
    "apply_lora": bool, "merge_lora_weights": bool, "logging_steps": int,
    "apply_early_stopping": bool, "early_stopping_patience": int, "early_stopping_threshold": float,
    "metric_for_best_model": str,
}
# The held-out metric the local engine computes; the component's f1 and exact need its evaluation step.
LOCAL_BEST_METRICS = ("loss",)


def _convert(name: str, raw: Any, kind: type) -> Any:
    if kind is bool:
        return _as_bool(name, raw)
    if kind is str:
        return str(raw).strip()
    return _as_number(name, raw, kind)


def plan_from_parameters(parameters: Mapping[str, Any]) -> TrainingPlan:
    """Map component parameters (strings like "true", "16", "2e-5" allowed) onto a TrainingPlan.

    Azure-only and unknown keys are ignored (listed in `ignored`); a bad value raises ParameterError.
    """
    values: dict[str, Any] = {}
    ignored: list[str] = []
    for name, raw in parameters.items():
        kind = _KINDS.get(name)
        if kind is None:
            ignored.append(name)
            if name not in AZURE_ONLY:
                log.warning("fine-tune parameter %s is not known to the local engine; ignored", name)
        elif raw is not None and str(raw).strip() != "":
            values[name] = _convert(name, raw, kind)
    plan = TrainingPlan(**values, ignored=tuple(sorted(ignored)))
    for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
                 "logging_steps", "lora_r"):
        if getattr(plan, name) < 1:
            raise ParameterError(f"fine-tune parameter {name}={getattr(plan, name)} must be at least 1")
    if plan.max_steps < 1 and plan.num_train_epochs <= 0:
        raise ParameterError("fine-tune parameters train nothing: set num_train_epochs > 0 or max_steps > 0")
    if plan.metric_for_best_model not in LOCAL_BEST_METRICS:
        raise ParameterError(f"fine-tune parameter metric_for_best_model={plan.metric_for_best_model!r} is "
                             f"not computed by the local engine; use {', '.join(LOCAL_BEST_METRICS)}")
    if plan.early_stopping_threshold < 0:
        raise ParameterError("fine-tune parameter early_stopping_threshold must not be negative")
    return plan


def resolve_plan(model_defaults: Mapping[str, Any], parameters: Mapping[str, Any]) -> TrainingPlan:
    """The plan for a job, resolved exactly as the Azure ML adapter resolves its component inputs.

    shared.finetune.DEFAULTS ← the base model's own defaults ← the run's choices (JobSpec.parameters).
    """
    from shared import finetune

    try:
        resolved = finetune.resolve_parameters(model_defaults, parameters)
    except finetune.ParameterError as exc:
        raise ParameterError(str(exc)) from None
    return plan_from_parameters(resolved)


@dataclass
class TrainingResult:
    """The trained model (adapter merged when the plan says so) and what training measured."""

    model: Any
    tokenizer: Any
    metrics: dict[str, float]
    history: list[dict[str, float]]
    # The held-out loss after each epoch ({"epoch", "eval_loss"}), and the epoch whose model was kept.
    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: float | None = None
    # The unmerged LoRA adapter and its tokenizer, saved whenever LoRA is applied.
    adapter_dir: Path | None = None


def conversations(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Only each row's messages: a `prompt` column would make TRL read the rows as prompt-completion."""
    return [conversation(row) for row in rows]


def sft_config(plan: TrainingPlan, tokenizer: Any, work_dir: Path,
               overrides: Mapping[str, Any] | None = None, *, per_epoch_eval: bool = False) -> Any:
    """The SFTConfig for `plan` on this machine: the plan's values plus the engine's speed settings.

    `per_epoch_eval`: evaluate the held-out split after each epoch and load the best epoch's weights at the
    end (checkpoints hold the model only: the optimizer state is not needed to keep an epoch).
    `overrides` replace any field (the training benchmark uses them to try other settings).
    """
    import torch
    from trl import SFTConfig  # type: ignore[attr-defined]

    cuda = torch.cuda.is_available()
    settings: dict[str, Any] = {
        "output_dir": str(work_dir),
        "num_train_epochs": plan.num_train_epochs,
        "max_steps": plan.max_steps,
        "per_device_train_batch_size": plan.per_device_train_batch_size,
        "per_device_eval_batch_size": plan.per_device_eval_batch_size,
        "learning_rate": plan.learning_rate,
        "lr_scheduler_type": plan.lr_scheduler_type,
        "gradient_accumulation_steps": plan.gradient_accumulation_steps,
        "logging_steps": plan.logging_steps,
        "seed": plan.seed,
        "max_length": _max_length(plan, tokenizer),
        # The rows come tokenized with labels (chat_format.training_example): only learned assistant turns
        # count, whatever markers the template has.
        "assistant_only_loss": False,
        "bf16": cuda and torch.cuda.is_bf16_supported(),
        "fp16": False,
        # Recomputing activations trades time for memory a LoRA fine-tune on CPU does not need to save.
        "gradient_checkpointing": False,
        "use_cpu": not cuda,
        "report_to": "none",
        "save_strategy": "epoch" if per_epoch_eval else "no",
        "eval_strategy": "epoch" if per_epoch_eval else "no",
        "load_best_model_at_end": per_epoch_eval,
        "metric_for_best_model": "eval_loss" if per_epoch_eval else None,
        "greater_is_better": False if per_epoch_eval else None,
        "save_only_model": True,
        "save_total_limit": 1 if per_epoch_eval else None,
        # The bar goes to the job's log; the child sets TQDM_MININTERVAL so a file gets a few updates, not one
        # per step.
        "disable_tqdm": False,
        "dataloader_num_workers": 0,
        # Real (non-padding) tokens, counted per step: the job's tokens/s metrics come from it.
        "include_num_input_tokens_seen": "non_padding",
        **SPEED_SETTINGS,
    }
    settings.update(overrides or {})
    return SFTConfig(**settings)


def fine_tune(model: Any, tokenizer: Any, train: TrainFile | Sequence[Mapping[str, Any]],
              test_rows: Sequence[Mapping[str, Any]], plan: TrainingPlan, work_dir: Path, *,
              callbacks: Sequence[Any] = (), model_name: str = "the base model",
              config_overrides: Mapping[str, Any] | None = None) -> TrainingResult:
    """Fine-tune `model` on the chat rows, evaluate on the test rows before, after each epoch and after;
    keep the best epoch; merge LoRA if asked.

    `train` is the job's staged train file (read row by row when large, see train_data) or rows in memory.
    Rows are rendered by chat_format (tools included; `weight: 0` turns and prompts take no part in the loss).

    The test split is scored once before training (the LoRA adapter starts as a no-op, so that is the model
    training started from), after every epoch (the best epoch's weights are the result; with
    `apply_early_stopping`, training stops after `early_stopping_patience` epochs without improvement) and
    once after, with the same evaluation code: `base_eval_loss` and `eval_loss`, and perplexities.
    """
    import torch
    from peft import LoraConfig
    from transformers import EarlyStoppingCallback
    from trl import SFTTrainer  # type: ignore[attr-defined]

    if not torch.cuda.is_available() and sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMETERS:
        # On tiny matrices thread hand-offs cost more than they save, and on a busy CPU they stall.
        torch.set_num_threads(1)
    peft_config = LoraConfig(r=plan.lora_r, lora_alpha=plan.lora_alpha, lora_dropout=plan.lora_dropout,
                             target_modules="all-linear", task_type="CAUSAL_LM") if plan.apply_lora else None
    overrides = dict(config_overrides or {})
    if isinstance(train, TrainFile):
        train_set = train_dataset(train, plan.seed, tokenizer, model_name)
        if train.streamed:
            # A stream has no length: the trainer is told the steps, and cannot group rows by length.
            overrides["train_sampling_strategy"] = "sequential"
            if plan.max_steps <= 0:
                overrides.setdefault("max_steps", steps_for(
                    train.rows, plan.num_train_epochs, plan.per_device_train_batch_size,
                    plan.gradient_accumulation_steps))
    else:
        train_set = examples(train, tokenizer, model_name)
    per_epoch_eval = bool(test_rows)
    stopping = ([EarlyStoppingCallback(plan.early_stopping_patience, plan.early_stopping_threshold)]
                if per_epoch_eval and plan.apply_early_stopping else [])
    trainer = SFTTrainer(
        model=model,
        args=sft_config(plan, tokenizer, work_dir, overrides, per_epoch_eval=per_epoch_eval),
        train_dataset=train_set,
        eval_dataset=examples(test_rows, tokenizer, model_name) if test_rows else None,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[*callbacks, *stopping],
    )
    metrics: dict[str, float] = {}
    if test_rows:
        metrics["base_eval_loss"] = float(trainer.evaluate()["eval_loss"])
        metrics["base_perplexity"] = perplexity(metrics["base_eval_loss"])
    outcome = trainer.train()
    for checkpoint in work_dir.glob("checkpoint-*"):  # the best epoch is loaded; its files are spent
        shutil.rmtree(checkpoint, ignore_errors=True)
    metrics.update({"train_loss": float(outcome.training_loss),
                    "train_runtime": float(outcome.metrics.get("train_runtime", 0.0)),
                    "train_steps": float(outcome.global_step)})
    if trainer.state.num_input_tokens_seen and metrics["train_runtime"] > 0:
        metrics["train_tokens_per_second"] = trainer.state.num_input_tokens_seen / metrics["train_runtime"]
    epochs = [{"epoch": float(entry["epoch"]), "eval_loss": float(entry["eval_loss"])}
              for entry in trainer.state.log_history if "eval_loss" in entry and entry.get("epoch")]
    best_epoch = _best_epoch(epochs, trainer.state.best_metric)
    if best_epoch is not None:
        metrics["best_epoch"] = best_epoch
        metrics["epochs_trained"] = epochs[-1]["epoch"]
    if test_rows:
        metrics["eval_loss"] = float(trainer.evaluate()["eval_loss"])
        metrics["perplexity"] = perplexity(metrics["eval_loss"])
    history = [{k: float(v) for k, v in entry.items() if isinstance(v, int | float)}
               for entry in trainer.state.log_history if "loss" in entry]
    trained: Any = trainer.model
    adapter_dir = None
    if plan.apply_lora:
        # The adapter, with the tokenizer (and chat template) it was trained with, is what local endpoints
        # serve: every fine-tune of one base shares one process holding that base (shared_server).
        adapter_dir = work_dir / "adapter"
        trained.save_pretrained(adapter_dir)
        tokenizer.save_pretrained(adapter_dir)
        # The registered model is still merged: MLflow's transformers flavour cannot rebuild an adapter's
        # base model from a local directory, so an unmerged model would load with untrained weights.
        trained = trained.merge_and_unload()
    return TrainingResult(model=trained, tokenizer=tokenizer, metrics=metrics, history=history,
                          epochs=epochs, best_epoch=best_epoch, adapter_dir=adapter_dir)


def _best_epoch(epochs: Sequence[Mapping[str, float]], best: float | None) -> float | None:
    """The first epoch whose held-out loss is the best one the trainer kept (None without evaluations)."""
    if best is None or not epochs:
        return None
    return next((e["epoch"] for e in epochs if e["eval_loss"] == best), None)


def held_out_loss(model: Any, tokenizer: Any, rows: Sequence[Mapping[str, Any]], plan: TrainingPlan,
                  work_dir: Path) -> float:
    """The mean token loss of `model` on the assistant turns of `rows`, computed as fine_tune computes the
    test loss (same trainer, tokenization and truncation), so figures of different models compare."""
    from trl import SFTTrainer  # type: ignore[attr-defined]

    dataset = examples(rows, tokenizer, "the model")
    # SFTTrainer insists on a train dataset; nothing is trained, so the test rows serve.
    trainer = SFTTrainer(model=model, args=sft_config(plan, tokenizer, work_dir), processing_class=tokenizer,
                         train_dataset=dataset, eval_dataset=dataset)
    return float(trainer.evaluate()["eval_loss"])


def _max_length(plan: TrainingPlan, tokenizer: Any) -> int:
    if plan.max_seq_length > 0:
        return plan.max_seq_length
    # Tokenizers without a real limit report a huge sentinel; TRL's own default is 1024.
    limit = getattr(tokenizer, "model_max_length", 1024) or 1024
    return int(min(limit, 1024))

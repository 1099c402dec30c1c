"""The best epoch is the one deployed: a run whose last epoch got worse keeps the better one, and early
stopping ends it (one real fine-tune of the tiny model proves both)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.models.tiny import ensure_tiny_base_model
from engine.train.run import epochs_remark
from engine.train.training import fine_tune, held_out_loss, resolve_plan

pytestmark = pytest.mark.integration


class WorseSecondEpoch:
    """Spoils the adapter at the end of epoch 2, before its evaluation: the overfit last epoch, made sure."""

    def __getattr__(self, name: str) -> Any:  # every other TrainerCallback event: nothing to do
        return lambda *args, **kwargs: None

    def on_epoch_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        import torch

        if round(state.epoch) == 2:
            generator = torch.Generator().manual_seed(0)
            with torch.no_grad():
                for parameter in model.parameters():
                    if parameter.requires_grad:
                        parameter.add_(torch.randn(parameter.shape, generator=generator) * 2.0)


def test_a_run_whose_last_epoch_was_worse_deploys_the_better_one(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where = ensure_tiny_base_model(tmp_path / "models")
    model, tokenizer = AutoModelForCausalLM.from_pretrained(where), AutoTokenizer.from_pretrained(where)
    rows = [{"messages": [{"role": "user", "content": f"What is the capital of France? ({i})"},
                          {"role": "assistant", "content": "The capital of France is Paris."}]}
            for i in range(8)]
    plan = resolve_plan({}, {"apply_lora": "true", "num_train_epochs": "4", "learning_rate": "1e-2",
                             "per_device_train_batch_size": "4", "apply_early_stopping": "true",
                             "early_stopping_patience": "1"})
    result = fine_tune(model, tokenizer, rows, rows[:2], plan, tmp_path / "trainer",
                       callbacks=[WorseSecondEpoch()])
    first, second = result.epochs
    assert second["eval_loss"] > first["eval_loss"], "the spoiled epoch evaluates worse"
    assert result.best_epoch == 1 and result.metrics["epochs_trained"] == 2, "stopped early, after epoch 2"
    assert result.metrics["eval_loss"] == pytest.approx(first["eval_loss"], rel=1e-4)
    # The model handed on (merged; what the job logs, registers and deploys) is epoch 1's.
    deployed = held_out_loss(result.model, tokenizer, rows[:2], plan, tmp_path / "check")
    assert deployed == pytest.approx(first["eval_loss"], rel=1e-3) and deployed < second["eval_loss"]
    assert not list((tmp_path / "trainer").glob("checkpoint-*")), "the epochs' checkpoints are removed"
    remark = epochs_remark(result.epochs, result.best_epoch)
    assert "epoch 1: " in remark and "epoch 2: " in remark and "kept epoch 1" in remark

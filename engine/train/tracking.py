"""What a local fine-tune records while it trains: per-step metrics in MLflow and the loss curve.

The training child opens its MLflow run before training starts, so the run shows loss, learning rate and
throughput as they happen (as an Azure ML job's metrics do in the studio), not only once the job is over.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

# Names the trainer logs under, as the run records them (the trainer's "learning_rate" is kept as is).
STEP_METRICS = ("loss", "learning_rate", "grad_norm", "mean_token_accuracy")


class StepMetrics(TrainerCallback):
    """Logs loss, learning rate, grad norm and tokens/s to an MLflow run at every logging step.

    Tokens/s is measured between two logging steps from the trainer's running count of real (non-padding)
    input tokens, so it is the throughput of the steps just taken (not diluted by start-up time).
    """

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self._tokens = 0.0
        self._since = time.monotonic()

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._tokens = 0.0
        self._since = time.monotonic()

    def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None,
               **kwargs: Any) -> None:
        import mlflow

        logs = logs or {}
        if "loss" not in logs:
            return  # an evaluation or the end-of-training summary, recorded by the job itself
        metrics = {name: float(logs[name]) for name in STEP_METRICS
                   if isinstance(logs.get(name), int | float) and math.isfinite(float(logs[name]))}
        tokens = logs.get("num_input_tokens_seen", logs.get("num_tokens"))
        now = time.monotonic()
        if isinstance(tokens, int | float) and now > self._since:
            metrics["tokens_per_second"] = (float(tokens) - self._tokens) / (now - self._since)
            self._tokens, self._since = float(tokens), now
        mlflow.log_metrics(metrics, step=int(state.global_step), run_id=self.run_id)


def loss_curve(history: Sequence[Mapping[str, float]], eval_losses: Mapping[str, float],
               path: Path) -> Path:
    """Draw the training loss per step, with the test-split losses as horizontal lines, to a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")  # no display here; must come before pyplot is imported
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(6.4, 4.0), dpi=100)
    try:
        steps = [entry.get("step", i + 1) for i, entry in enumerate(history)]
        axes.plot(steps, [entry["loss"] for entry in history], marker=".", label="training loss")
        for (label, value), style in zip(sorted(eval_losses.items()), ("--", ":", "-."), strict=False):
            axes.axhline(value, linestyle=style, color="grey", label=f"{label} {value:.3f}")
        axes.set_xlabel("step")
        axes.set_ylabel("loss")
        axes.set_title("fine-tune loss")
        axes.grid(alpha=0.3)
        axes.legend()
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path)
    finally:
        pyplot.close(figure)
    return path

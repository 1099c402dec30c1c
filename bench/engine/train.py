"""Training throughput: the local engine's fine-tune setup against plain TRL SFTTrainer defaults.

Both train the same LoRA adapter (same rank, alpha, learning rate, batch size, epochs, seed: the base model's
own fine-tune defaults) on the same generated ultrachat-shaped conversations and the same base model (the
default, SmolLM2-135M-Instruct, prepared once under .autopilot/models, unless --base-model names another
directory or `tiny-random`), each in its own subprocess so peak RSS is its own. The baseline is `SFTConfig()`
with only the hyperparameters set; nothing else is adjusted unless it would crash on this machine.
`--explore` adds the candidate settings one at a time, which is how SPEED_SETTINGS was chosen.

Two more comparisons, each side by side in the same run:
- per-turn masking: a quarter of the answers carry `"weight": 0`; "ours" labels only learned turns itself
  (chat_format.training_example), "ours, no per-turn masking" lets TRL tokenize and mask assistant turns from
  the template's {% generation %} markers (the engine before weights were honoured); same work, same tokens.
- per-epoch evaluation, on the demo data (demo/make_sample: 48 conversations, held-out split): "demo, eval
  each epoch" (the engine: the best epoch kept) against "demo, eval at the end only"; the difference in
  wall time is what keeping the best epoch costs.

Tokens/s counts the conversations' real tokens (chat template applied, no padding) times the epochs, over
the trainer's own train_runtime, so every setting is measured on the same work. Prints a table, then one
JSON line last.

    python bench/engine/train.py [--conversations 64] [--epochs 1] [--base-model DIR|tiny-random] [--repeat 3]
                          [--pairs-only] [--explore [SETTING ...]]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

_VOCABULARY = """\
the quick brown fox jumps over lazy dog river bank hello how are you today fine thank asking help
write short email manager project deadline capital france paris plants sunlight water air food
oxygen summarize article three sentences cities traffic public transport poem ocean night stars
recipe tomato soup garlic basil onions olive oil sort list numbers python sorted function weather
sunny breeze story robot paint workshop exercise sleep heart mood climate years trip mountains
family meeting thursday afternoon patience question students chapter company growth book history
science travel music art literature ideas feelings water breaks desk
"""
WORDS = tuple(_VOCABULARY.split())

# Candidate settings tried with --explore, each on top of our setup.
EXPLORE: dict[str, dict[str, Any]] = {
    "ours, random batches": {"config": {"train_sampling_strategy": "random"}},
    "ours + 1 thread": {"threads": 1},
    "ours + 2 threads": {"threads": 2},
    # OpenMP's default wait policy (spin, then sleep), which the engine's children replace with PASSIVE
    # (engine/cpu.py).
    "ours + 2 threads, default wait": {"threads": 2, "env": {"OMP_WAIT_POLICY": None}},
    "ours + padding_free": {"config": {"padding_free": True, "max_length": None}},
    "ours + packing (bfd)": {"config": {"packing": True}},
    "ours + bf16 autocast": {"config": {"bf16": True}},
    "ours + gradient checkpointing": {"config": {"gradient_checkpointing": True}},
}


def conversations(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Ultrachat-shaped rows of varied length: 1-3 exchanges, user turns 4-20 words, answers 6-50 words (all
    within the tiny model's 512 positions, and SmolLM2's 512-token default max_seq_length)."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        messages = []
        for _ in range(rng.choice((1, 1, 2, 3))):
            messages.append({"role": "user", "content": " ".join(rng.choices(WORDS, k=rng.randint(4, 20)))})
            messages.append({"role": "assistant",
                             "content": " ".join(rng.choices(WORDS, k=rng.randint(6, 45))) + "."})
        if len(messages) > 2 and i % 2:  # a quarter of the answers are context only (per-turn masking)
            messages[1]["weight"] = 0
        rows.append({"prompt": messages[0]["content"], "prompt_id": f"{i:06d}", "messages": messages})
    return rows


def _hyperparameters(model_dir: str, args: argparse.Namespace) -> dict[str, str]:
    from engine.models.loading import model_specific_defaults

    # The model's own fine-tune defaults (learning rate, batch size, LoRA size, max length), with the run
    # length set here; both setups get exactly these values.
    return {**model_specific_defaults(model_dir, Path(model_dir)), "num_train_epochs": str(args.epochs),
            "logging_steps": "10", "seed": "42"}


# Per-epoch evaluation switched off (the end-of-training evaluation stays): the baseline of its cost.
END_ONLY_EVAL = {"eval_strategy": "no", "save_strategy": "no", "load_best_model_at_end": False,
                 "metric_for_best_model": None, "greater_is_better": None, "save_total_limit": None}
DEMO_SETTINGS = ("demo, eval each epoch", "demo, eval at the end only")


def demo_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The demo's training conversations and its held-out split (demo/make_sample)."""
    from demo.make_sample import conversations as demo_conversations
    from demo.make_sample import held_out

    return demo_conversations(48), held_out()


def child(args: argparse.Namespace) -> dict[str, Any]:
    """Train once with setting `args.child` and return what was measured."""
    import torch

    from engine import cpu
    from engine.models.loading import load_base_model
    from engine.train import training

    rows = [json.loads(line) for line in Path(args.data).read_text().splitlines()]
    test_rows: list[dict[str, Any]] = []
    if args.child in DEMO_SETTINGS:
        rows, test_rows = demo_rows()
    model, tokenizer = load_base_model(args.model, Path(args.model))
    plan = training.plan_from_parameters(_hyperparameters(args.model, args))
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    started = time.monotonic()
    cpu_before = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    if args.child == "trl defaults":
        runtime, loss = _plain_trl(model, tokenizer, rows, plan, work)
    elif args.child == "ours, no per-turn masking":
        cpu.use_free_cores()
        runtime, loss = _trl_masks(model, tokenizer, rows, plan, work)
    elif args.child in DEMO_SETTINGS:
        cpu.use_free_cores()
        overrides = END_ONLY_EVAL if args.child == DEMO_SETTINGS[1] else None
        result = training.fine_tune(model, tokenizer, rows, test_rows, plan, work, config_overrides=overrides)
        runtime, loss = result.metrics["train_runtime"], result.metrics["train_loss"]
    else:
        setting = EXPLORE.get(args.child, {})
        if "threads" in setting:
            training.SMALL_MODEL_PARAMETERS = 0  # skip the engine's single-thread rule for this run
            torch.set_num_threads(int(setting["threads"]))
        else:  # as the job does
            cpu.use_free_cores()
        result = training.fine_tune(model, tokenizer, rows, [], plan, work,
                                    config_overrides=setting.get("config"))
        runtime, loss = result.metrics["train_runtime"], result.metrics["train_loss"]
    total_s = time.monotonic() - started
    # CPU seconds of the training call (data preparation included): steadier than wall time on a busy machine.
    train_cpu_s = sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - cpu_before
    limit = training.sft_config(plan, tokenizer, work).max_length
    tokens = sum(min(len(_ids(tokenizer, row["messages"])), limit) for row in rows) * plan.num_train_epochs
    return {"setting": args.child, "tokens": int(tokens), "train_s": round(runtime, 2),
            "tokens_per_s": round(tokens / runtime, 1), "total_s": round(total_s, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "train_loss": round(loss, 4), "threads": torch.get_num_threads(),
            "cpu_s": round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 1),
            "train_cpu_s": round(train_cpu_s, 2),
            "load_avg": round(os.getloadavg()[0], 1)}


def _plain_trl(model: Any, tokenizer: Any, rows: list[dict[str, Any]], plan: Any,
               work: Path) -> tuple[float, float]:
    """SFTTrainer with SFTConfig's defaults; only the hyperparameters both setups share are set."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer  # type: ignore[attr-defined]

    from engine.train.training import conversations as messages_only

    config = SFTConfig(output_dir=str(work), num_train_epochs=plan.num_train_epochs,
                       per_device_train_batch_size=plan.per_device_train_batch_size,
                       learning_rate=plan.learning_rate, logging_steps=plan.logging_steps, seed=plan.seed,
                       max_length=plan.max_seq_length if plan.max_seq_length > 0 else 1024,
                       report_to="none", save_strategy="no",
                       use_cpu=not torch.cuda.is_available())  # the one change: bf16 on "gpu" crashes here
    peft_config = LoraConfig(r=plan.lora_r, lora_alpha=plan.lora_alpha, lora_dropout=plan.lora_dropout,
                             target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(messages_only(rows)),
                         processing_class=tokenizer, peft_config=peft_config)
    outcome = trainer.train()
    return float(outcome.metrics["train_runtime"]), float(outcome.training_loss)


def _trl_masks(model: Any, tokenizer: Any, rows: list[dict[str, Any]], plan: Any,
               work: Path) -> tuple[float, float]:
    """Our setup, but TRL tokenizes the messages and masks every assistant turn from the template's
    {% generation %} markers (weights unread): the engine before per-turn weights were honoured."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTTrainer  # type: ignore[attr-defined]

    from engine.train import training

    plain = [{"messages": [{"role": m["role"], "content": m["content"]} for m in row["messages"]]}
             for row in rows]
    config = training.sft_config(plan, tokenizer, work, {"assistant_only_loss": True})
    peft_config = LoraConfig(r=plan.lora_r, lora_alpha=plan.lora_alpha, lora_dropout=plan.lora_dropout,
                             target_modules="all-linear", task_type="CAUSAL_LM") if plan.apply_lora else None
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(plain),
                         processing_class=tokenizer, peft_config=peft_config)
    outcome = trainer.train()
    return float(outcome.metrics["train_runtime"]), float(outcome.training_loss)


def _ids(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    encoded = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)
    return list(encoded["input_ids"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--base-model", default="",
                        help="a local model directory or tiny-random; empty: SmolLM2-135M-Instruct")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each side-by-side pair (masking, per-epoch evaluation); best counts")
    parser.add_argument("--pairs-only", action="store_true",
                        help="skip the plain-TRL baseline: only the masking and evaluation pairs")
    parser.add_argument("--explore", nargs="*", metavar="SETTING",
                        help="also try these candidate settings (all of them when none is named)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if args.child:
        print(json.dumps(child(args)))
        return 0

    from engine.models.loading import source
    from shared.platforms.local.base_model_names import label

    # Built-in models are prepared where `make up` and the jobs keep them, so a second run reuses them.
    model = source(args.base_model, ROOT / ".autopilot" / "models")
    with tempfile.TemporaryDirectory(prefix="bench-train-") as scratch:
        data = Path(scratch) / "train.jsonl"
        data.write_text("\n".join(json.dumps(row) for row in conversations(args.conversations)))
        explore = [] if args.explore is None else args.explore or list(EXPLORE)
        unknown = set(explore) - set(EXPLORE)
        if unknown:
            raise SystemExit(f"unknown settings {sorted(unknown)}; known: {sorted(EXPLORE)}")
        first = ["ours", *explore] if args.pairs_only else ["trl defaults", "ours", *explore]
        results = [_run(setting, data, model, args) for setting in first]
        # The side-by-side pairs run alternately, `--repeat` times each; the best run of each setting counts
        # (a shared machine only ever slows a run down).
        for pair in (("ours", "ours, no per-turn masking"), DEMO_SETTINGS):
            tries = [_run(setting, data, model, args) for _ in range(args.repeat) for setting in pair]
            for setting in pair:
                if setting in [r["setting"] for r in results]:
                    results = [r for r in results if r["setting"] != setting]
                results.append(min((t for t in tries if t["setting"] == setting), key=lambda t: t["train_s"]))
    _table(results)
    by_name = {r["setting"]: r for r in results}
    speedup = 0.0
    if "trl defaults" in by_name:
        speedup = by_name["ours"]["tokens_per_s"] / by_name["trl defaults"]["tokens_per_s"]
        print(f"\nours vs plain TRL defaults: {speedup:.2f}x tokens/s, "
              f"{by_name['ours']['peak_rss_mb'] / by_name['trl defaults']['peak_rss_mb']:.2f}x peak RSS")
    ours, unmasked = by_name["ours"], by_name["ours, no per-turn masking"]
    masking = ours["tokens_per_s"] / unmasked["tokens_per_s"]
    masking_cpu = unmasked["train_cpu_s"] / ours["train_cpu_s"]
    print(f"per-turn masking: {masking:.2f}x the tokens/s without it (wall clock), {masking_cpu:.2f}x per "
          "CPU second of the whole training call (target: at least 0.95x)")
    each, end = (by_name[name] for name in DEMO_SETTINGS)
    eval_cost, eval_cpu = each["total_s"] - end["total_s"], each["train_cpu_s"] - end["train_cpu_s"]
    print(f"per-epoch evaluation on the demo data: {eval_cost:+.1f} s wall, {eval_cpu:+.2f} CPU s over "
          f"{args.epochs} epoch(s) ({each['train_cpu_s']:.2f} against {end['train_cpu_s']:.2f} CPU s with "
          "one evaluation at the end)")
    print(json.dumps({"benchmark": "train", "base_model": label(args.base_model),
                      "conversations": args.conversations, "epochs": args.epochs,
                      "speedup_tokens_per_s": round(speedup, 2), "masking_ratio": round(masking, 3),
                      "masking_ratio_cpu": round(masking_cpu, 3),
                      "per_epoch_eval_extra_s": round(eval_cost, 2),
                      "per_epoch_eval_extra_cpu_s": round(eval_cpu, 2), "results": results}))
    return 0


def _run(setting: str, data: Path, model: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", setting, "--data", str(data), "--model", model,
               "--epochs", str(args.epochs)]
    from shared.platforms.local.engine_env import CPU_ENV

    # Our setup runs with the engine's child environment; plain TRL with the process defaults.
    ours = {} if setting == "trl defaults" else {**CPU_ENV, **EXPLORE.get(setting, {}).get("env", {})}
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "TQDM_DISABLE": "1", **ours}
    env = {name: value for name, value in env.items() if value is not None}  # None: unset
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"setting {setting!r} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  {setting}: {result['tokens_per_s']:.0f} tokens/s", file=sys.stderr)
    return result


def _table(results: list[dict[str, Any]]) -> None:
    header = (f"{'setting':<28} {'tokens/s':>9} {'train s':>8} {'total s':>8} {'CPU s':>6} {'load':>5} "
              f"{'threads':>7} {'peak RSS MB':>12} {'loss':>7}")
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['setting']:<28} {r['tokens_per_s']:>9.0f} {r['train_s']:>8.2f} {r['total_s']:>8.2f} "
              f"{r['cpu_s']:>6.1f} {r['load_avg']:>5.1f} {r['threads']:>7} {r['peak_rss_mb']:>12.0f} "
              f"{r['train_loss']:>7.3f}")


if __name__ == "__main__":
    sys.exit(main())

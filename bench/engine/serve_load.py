"""Where a local deployment's start-up goes: the model server's load path, phase by phase, in fresh processes.

Each round starts a new Python process that does what a deployment's server does before it answers its health
check (engine/serve/model_server.py): import the server module (FastAPI, uvicorn's app), import torch and
transformers, load the model and its tokenizer (`ChatModel`'s own calls: safetensors, the saved dtype), and
answer one warm-up token. Then, in the same process, the same model is loaded again: what a load costs in a
process that has already imported everything (a server kept running, as one process per base model would be).
The model is the default base model (SmolLM2-135M-Instruct) unless --model names a directory; a fine-tune has
its base model's size and layout (the local trainer merges its LoRA before saving), so it loads the same.

    python bench/engine/serve_load.py [--rounds 5] [--model DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

# Run in the child: seconds per phase, as JSON on its last line.
PHASES = r'''
import json, sys, time
from pathlib import Path
marks = [("start", time.perf_counter())]
def mark(name): marks.append((name, time.perf_counter()))
import engine.serve.model_server  # noqa: F401  FastAPI, pydantic, the scoring shapes
mark("server module")
from engine import cpu
cpu.use_free_cores()
mark("torch")
import transformers  # noqa: F401
mark("transformers")
from transformers import AutoModelForCausalLM, AutoTokenizer
from engine.chat_model import ChatModel, placement
device, dtype = placement()
model_dir = Path(sys.argv[1])
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device)
mark("model (first: with the modeling imports)")
tokenizer = AutoTokenizer.from_pretrained(model_dir)
mark("tokenizer")
chat = ChatModel(model, tokenizer, "bench")
chat.complete([{"role": "user", "content": "ready?"}], max_new_tokens=1)
mark("warm-up token")
again = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device)
AutoTokenizer.from_pretrained(model_dir)
mark("load again, imports done")
phases = {name: round(at - marks[i][1], 3) for i, (name, at) in enumerate(marks[1:])}
print(json.dumps(phases))
'''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model", default="", help="a model directory; empty: SmolLM2-135M-Instruct")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as scratch:
        return measure(args, args.model or _base_model(Path(scratch)))


def measure(args: argparse.Namespace, model: str) -> int:
    """Run the rounds; print the medians per phase (a table, then one JSON line)."""
    from shared.platforms.local.engine_env import child_env

    env = child_env()  # what the adapter gives a model server
    rounds = []
    for _ in range(args.rounds):
        done = subprocess.run([sys.executable, "-c", PHASES, model], capture_output=True, text=True, env=env,
                              check=True)
        rounds.append(json.loads(done.stdout.strip().splitlines()[-1]))
    medians = {name: round(statistics.median(r[name] for r in rounds), 2) for name in rounds[0]}
    cold = sum(v for k, v in medians.items() if k != "load again, imports done")
    print(f"\n{'phase (median of ' + str(args.rounds) + ' fresh processes)':<48} {'s':>6}")
    for name, seconds in medians.items():
        print(f"{name:<48} {seconds:>6.2f}")
    print(f"{'until ready (all but the last line)':<48} {cold:>6.2f}")
    print(json.dumps({"benchmark": "serve_load", "model": model, "rounds": args.rounds, "median_s": medians,
                      "until_ready_s": round(cold, 2), "load_avg": round(os.getloadavg()[0], 2)}))
    return 0


def _base_model(scratch: Path) -> str:
    from engine.models.loading import prepare_default

    models = ROOT / ".autopilot" / "models"  # prepared once for every benchmark, as bench/engine/serve.py's
    models.mkdir(parents=True, exist_ok=True)
    (scratch / "models").symlink_to(models, target_is_directory=True)
    return prepare_default(scratch)[1]


if __name__ == "__main__":
    sys.exit(main())

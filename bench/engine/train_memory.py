"""The local training job's peak memory against its upload's size: the job's way (chunked download to disk,
then rows streamed) side by side with reading the whole upload into a list, as the job used to.

For each size a chat JSONL of about that many MB is generated once; each contender then runs in a fresh
subprocess, so its peak RSS (ru_maxrss) is its own: it copies the file in 4 MiB chunks (a blob download's
pieces), builds the trainer's dataset, and trains a few steps (max_steps) of a LoRA on the built-in tiny
model, so only the data path differs. Prints a table, then one JSON line last.

    python bench/engine/train_memory.py [--sizes 10,200] [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.engine.train import WORDS as TRAIN_WORDS  # noqa: E402

CHUNK = 4 * 1024 * 1024
WORDS = list(TRAIN_WORDS[:44])  # the training bench's first 44 words (the generated data stays the same)


def make_upload(path: Path, megabytes: int, seed: int = 7) -> int:
    """About `megabytes` MB of two-turn conversations (~1 KB each); returns the row count."""
    rng = random.Random(seed)
    rows, size, target = 0, 0, megabytes * 1_000_000
    with path.open("wb") as out:
        while size < target:
            question = " ".join(rng.choices(WORDS, k=rng.randint(8, 30)))
            answer = " ".join(rng.choices(WORDS, k=rng.randint(60, 200)))
            line = json.dumps({"messages": [{"role": "user", "content": question},
                                            {"role": "assistant", "content": answer}]}).encode() + b"\n"
            out.write(line)
            size, rows = size + len(line), rows + 1
    return rows


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            yield chunk


def child(mode: str, upload: Path, steps: int, work: Path) -> dict[str, Any]:
    """One contender in this process: returns its peak RSS and seconds."""
    from engine.models.loading import load_base_model, model_specific_defaults
    from engine.train.train_data import save_chunks
    from engine.train.training import fine_tune, resolve_plan
    from shared.platforms.local.base_model_names import TINY_RANDOM

    started = time.monotonic()
    plan = resolve_plan(model_specific_defaults(TINY_RANDOM, work / "models"), {"apply_lora": "true"})
    model, tokenizer = load_base_model(TINY_RANDOM, work / "models")
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if mode == "job":  # the job's way: chunks to disk, then the rows from the file
        train: Any = save_chunks(_chunks(upload), work / "job" / "train.jsonl")
    else:  # the old way: the whole download in memory, parsed into a list of rows
        data = b"".join(_chunks(upload))
        train = [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
    fine_tune(model, tokenizer, train, [], plan, work / "trainer", config_overrides={"max_steps": steps})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"mode": mode, "peak_rss_mb": round(peak / 1024, 1), "model_rss_mb": round(baseline / 1024, 1),
            "seconds": round(time.monotonic() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,200", help="upload sizes in MB, comma-separated")
    parser.add_argument("--steps", type=int, default=3, help="training steps per contender")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory() as work:
            print(json.dumps(child(args.child[0], Path(args.child[1]), args.steps, Path(work))))
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for megabytes in (int(s) for s in args.sizes.split(",")):
            upload = Path(tmp) / f"chat-{megabytes}mb.jsonl"
            rows = make_upload(upload, megabytes)
            for mode in ("job", "read-whole"):
                done = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--child", mode,
                                       str(upload)], capture_output=True, text=True, check=True)
                result = json.loads(done.stdout.strip().splitlines()[-1])
                results.append({"upload_mb": megabytes, "rows": rows, **result})
            upload.unlink()
    print(f"{'upload':>8} {'rows':>8} {'contender':<11} {'peak RSS':>10} {'after model load':>17} "
          f"{'time':>7}")
    for r in results:
        print(f"{r['upload_mb']:>6}MB {r['rows']:>8,} {r['mode']:<11} {r['peak_rss_mb']:>8.0f}MB "
              f"{r['model_rss_mb']:>15.0f}MB {r['seconds']:>6.1f}s")
    print(json.dumps({"benchmark": "train_memory", "steps": args.steps, "results": results}))


if __name__ == "__main__":
    main()

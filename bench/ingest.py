"""Ingest benchmark: our one-pass scan against the obvious alternatives, side by side, on one generated file.

    python bench/ingest.py --size-mb 100

Generates an ultrachat_200k-shaped JSONL of the given size in a temp dir, then runs each contender in its
own subprocess (so peak RSS is its own): our `scan`; pandas.read_json(lines=True) + the same checks; HF
datasets' JSON loader (offline, temp cache); a bare `for line in f: orjson.loads(line)` loop. Prints a
table and, as its last line, one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTENDERS = ("scan", "pandas", "hf_datasets", "orjson_loop")
LIBRARIES = {"scan": "shared.dataset", "pandas": "pandas", "hf_datasets": "datasets", "orjson_loop": "orjson"}


def generate(path: Path, size_mb: int, seed: int = 0) -> int:
    """Write ultrachat-shaped rows (prompt, prompt_id, 2-8 alternating turns) until `size_mb` MB."""
    import orjson

    rng = random.Random(seed)
    words = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(1, 10))) for _ in range(4000)]
    words += ["naïve", "café", "“quoted”", "it’s", "Zürich", "\"q\"", "\\path", "日本語"]
    sentences = [" ".join(rng.choices(words, k=rng.randint(6, 24))).capitalize() + "." for _ in range(3000)]

    def text(n_sentences: int) -> str:
        paragraphs = [" ".join(rng.choices(sentences, k=rng.randint(1, 4)))
                      for _ in range(max(1, n_sentences // 3))]
        return "\n\n".join(paragraphs)

    target = size_mb * 1_000_000
    written = rows = 0
    with open(path, "wb") as out:
        batch: list[bytes] = []
        while written < target:
            turns = rng.randint(1, 4)
            messages = []
            for _ in range(turns):
                messages.append({"content": text(rng.randint(1, 6)), "role": "user"})
                messages.append({"content": text(rng.randint(4, 24)), "role": "assistant"})
            prompt = messages[0]["content"]
            line = orjson.dumps({"prompt": prompt, "prompt_id": hashlib.sha256(prompt.encode()).hexdigest(),
                                 "messages": messages}) + b"\n"
            batch.append(line)
            written += len(line)
            rows += 1
            if len(batch) >= 1000:
                out.write(b"".join(batch))
                batch.clear()
        out.write(b"".join(batch))
    return rows


# -- contenders (each runs in a child process: `python bench/ingest.py --run NAME FILE`) ---------------------
def run_scan(path: Path) -> dict[str, object]:
    from shared.dataset import Limits, scan_path

    report = scan_path(path, Limits())
    return {"rows": report.rows, "valid": report.valid}


def run_orjson_loop(path: Path) -> dict[str, object]:
    import orjson

    rows = 0
    with open(path, "rb") as f:
        for line in f:
            orjson.loads(line)
            rows += 1
    return {"rows": rows}


def _same_checks(frame_rows: object) -> tuple[int, int]:
    """The checks our scan applies, over rows that another loader produced."""
    from shared.dataset.rules import check_row

    valid = errors = 0
    for messages in frame_rows:  # type: ignore[attr-defined]
        if check_row({"messages": messages if isinstance(messages, list) else list(messages)}) is None:
            valid += 1
        else:
            errors += 1
    return valid, errors


def run_pandas(path: Path) -> dict[str, object]:
    import pandas as pd

    frame = pd.read_json(path, lines=True)
    _, errors = _same_checks(frame["messages"])
    hashlib.file_digest(open(path, "rb"), "sha256")  # noqa: SIM115 - the same content hash
    return {"rows": len(frame), "valid": errors == 0}


def run_hf_datasets(path: Path) -> dict[str, object]:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    import datasets

    with tempfile.TemporaryDirectory() as cache:
        data = datasets.load_dataset("json", data_files=str(path), cache_dir=cache, split="train")
        return {"rows": data.num_rows}


def child(name: str, path: Path) -> None:
    """Run one contender here and print its rows, seconds and peak RSS (this process and any it started).

    Its libraries are imported before the clock starts: we time reading the file, not interpreter start-up.
    """
    importlib.import_module(LIBRARIES[name])
    start = time.perf_counter()
    result = {"scan": run_scan, "pandas": run_pandas, "hf_datasets": run_hf_datasets,
              "orjson_loop": run_orjson_loop}[name](path)
    result["seconds"] = time.perf_counter() - start
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    result["peak_kb"] = max(me.ru_maxrss, kids.ru_maxrss)
    # CPU seconds (all threads): on a shared machine wall time drifts with the neighbours' load, this less so.
    result["cpu_s"] = round(me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime, 3)
    print(json.dumps(result))


def measure(name: str, path: Path, timeout: float) -> dict[str, object]:
    """Run one contender in a fresh interpreter and collect what it reports."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        proc = subprocess.run([sys.executable, __file__, "--run", name, str(path)], capture_output=True,
                              text=True, env=env, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"name": name, "error": f"timed out after {timeout:.0f}s"}
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["failed"]
        return {"name": name, "error": tail[0]}
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["name"] = name
    result["peak_rss_mb"] = round(int(result.pop("peak_kb")) / 1024, 1)  # type: ignore[call-overload]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--only", nargs="*", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--run", nargs=2, metavar=("NAME", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        child(args.run[0], Path(args.run[1]))
        return
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
        path = Path(tmp) / "ultrachat.jsonl"
        started = time.perf_counter()
        rows = generate(path, args.size_mb)
        size = path.stat().st_size
        took = time.perf_counter() - started
        print(f"generated {size / 1e6:,.0f} MB, {rows:,} rows in {took:.0f}s: {path}")
        results = [measure(name, path, args.timeout) for name in args.only]
    for r in results:
        if "seconds" in r:
            r["mb_per_s"] = round(size / 1e6 / float(r["seconds"]), 1)  # type: ignore[arg-type]
    print_table(results)
    speeds = {r["name"]: r.get("mb_per_s") for r in results}
    ratios = {}
    if speeds.get("scan") and speeds.get("pandas"):
        ratios["scan_vs_pandas"] = round(speeds["scan"] / speeds["pandas"], 2)  # type: ignore[operator]
    if speeds.get("scan") and speeds.get("orjson_loop"):
        ratios["scan_vs_orjson_loop"] = round(speeds["scan"] / speeds["orjson_loop"], 2)  # type: ignore[operator]
    print(json.dumps({"size_mb": round(size / 1e6), "rows": rows, "results": results, **ratios}))


def print_table(results: list[dict[str, object]]) -> None:
    print(f"{'contender':<14}{'seconds':>10}{'MB/s':>10}{'CPU s':>8}{'peak RSS MB':>14}  rows")
    for r in results:
        if "error" in r:
            print(f"{r['name']:<14}  error: {r['error']}")
            continue
        print(f"{r['name']:<14}{float(r['seconds']):>10.2f}{r['mb_per_s']:>10}{r['cpu_s']:>8}"  # type: ignore[arg-type]
              f"{r['peak_rss_mb']:>14}  {r['rows']}")


if __name__ == "__main__":
    main()

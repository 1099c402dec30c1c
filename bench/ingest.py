"""Ingest benchmark: our scan (on every core, and in one pass) against the obvious alternatives, side by side.

    python bench/ingest.py                      # 100 MB and 1 GB, each contender 3 times
    python bench/ingest.py --sizes 100 --only parallel orjson_loop --repeat 5
    python bench/ingest.py --crossover          # where parallel starts to beat one pass (PARALLEL_MIN_BYTES)

For each size it generates an ultrachat_200k-shaped JSONL in a temp dir, then runs each contender in its own
fresh interpreter: `parallel` (our scan_path, one worker per core), `single` (our scan_path with one worker:
the scan in one process, the sha256 on a thread beside it), both screening for secrets and personal data as
an upload is screened, `parallel_off` and `single_off` (the same without screening), `orjson_loop` (a bare
single-threaded `for line in f: orjson.loads(line)`, no checks), `pandas` (read_json(lines=True) + the same
checks + the same sha256) and, on request, `hf_datasets`. The contenders take turns, `--repeat` rounds of
them, so a noisy moment hits them alike; the table shows each one's median round (ratios are of medians)
and its fastest. Each run starts with the file in the page cache (read through just before), so none of
them times the disk.

Wall time, CPU time and memory cover the contender's whole process tree (our workers may fork from a fork
server, so they need not be its own children). Peak RSS is the largest sum of resident memory over the tree
(shared pages counted once per process: an upper bound), peak PSS the same with shared pages split fairly;
both are sampled from /proc every 25 ms by this process (so the contender runs no extra thread), in a round
of their own before the timed ones: sampling costs CPU, which a contender on every core would pay for and one
on a single core would not. `parallel` and `single` must produce the same report (checked). Prints a table
per size and, as its last line, one JSON object with every figure. Other processes on the machine shift wall
times; the JSON records the load.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTENDERS = ("parallel", "single", "parallel_off", "single_off", "orjson_loop", "pandas", "hf_datasets",
              "parallel_always")
DEFAULT = ("parallel", "single", "parallel_off", "single_off", "orjson_loop", "pandas")
LIBRARIES = {"parallel": "shared.dataset", "single": "shared.dataset", "parallel_always": "shared.dataset",
             "parallel_off": "shared.dataset", "single_off": "shared.dataset",
             "pandas": "pandas",
             "hf_datasets": "datasets", "orjson_loop": "orjson"}
_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICK = os.sysconf("SC_CLK_TCK")


def generate(path: Path, size_mb: float, seed: int = 0) -> int:
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
def _ours(path: Path, workers: int | None, screened: bool = True) -> dict[str, object]:
    from shared.dataset import Limits, Parallelism, scan_path

    limits = Limits() if screened else Limits(screening=None)
    report = scan_path(path, limits, parallel=Parallelism(workers=workers))
    digest = hashlib.sha256(report.to_json().encode()).hexdigest()
    return {"rows": report.rows, "valid": report.valid, "report_sha256": digest}


def run_parallel(path: Path) -> dict[str, object]:
    return _ours(path, None)


def run_single(path: Path) -> dict[str, object]:
    return _ours(path, 1)


def run_parallel_off(path: Path) -> dict[str, object]:
    return _ours(path, None, screened=False)


def run_single_off(path: Path) -> dict[str, object]:
    return _ours(path, 1, screened=False)


def run_parallel_always(path: Path) -> dict[str, object]:
    """Parallel whatever the size (for --crossover: where it starts to pay)."""
    from shared.dataset import Limits, Parallelism, scan_path

    report = scan_path(path, Limits(), parallel=Parallelism(min_bytes=0))
    return {"rows": report.rows}


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
    with open(path, "rb") as f:
        hashlib.file_digest(f, "sha256")  # the same content hash
    return {"rows": len(frame), "valid": errors == 0}


def run_hf_datasets(path: Path) -> dict[str, object]:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    import datasets

    with tempfile.TemporaryDirectory() as cache:
        data = datasets.load_dataset("json", data_files=str(path), cache_dir=cache, split="train")
        return {"rows": data.num_rows}


class Tree:
    """A process and its descendants, read from /proc: CPU seconds so far, and memory now."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak_rss = self.peak_pss = 0

    def pids(self) -> list[int]:
        tree, frontier = [self.root], [self.root]
        while frontier:
            found: list[int] = []
            for pid in frontier:
                try:
                    for tid in os.listdir(f"/proc/{pid}/task"):
                        found += map(int, Path(f"/proc/{pid}/task/{tid}/children").read_text().split())
                except OSError:
                    continue  # it ended meanwhile
            tree += found
            frontier = found
        return tree

    def cpu_seconds(self) -> float:
        """utime + stime of every live process in the tree, with the children each has reaped."""
        total = 0
        for pid in self.pids():
            stat = _stat(pid)
            if stat:
                total += sum(int(x) for x in stat[11:15])
        return total / _TICK

    def sample(self) -> None:
        """Add up the tree's memory now; keep the peaks."""
        rss = pss = 0
        for pid in self.pids():
            rss += _read_kb(f"/proc/{pid}/status", "VmRSS:")
            pss += _read_kb(f"/proc/{pid}/smaps_rollup", "Pss:")
        self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat fields after the command name: state, ppid, ... (utime is [11])."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()


def _read_kb(path: str, key: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def child(name: str, path: Path) -> None:
    """Run one contender here and print its figures as JSON; the parent samples our memory meanwhile.

    Its libraries are imported before the clock starts: we time reading the file, not interpreter start-up.
    No thread of ours runs beside it (a sampler thread would change how our scan starts its workers).
    """
    importlib.import_module(LIBRARIES[name])
    if LIBRARIES[name] == "shared.dataset":  # a warm app compiled the screening patterns once already
        from shared.dataset.screening.prefilter import prefilter

        prefilter()
    runs = {"parallel": run_parallel, "single": run_single, "pandas": run_pandas,
            "parallel_off": run_parallel_off, "single_off": run_single_off,
            "hf_datasets": run_hf_datasets, "orjson_loop": run_orjson_loop,
            "parallel_always": run_parallel_always}
    tree = Tree(os.getpid())
    cpu = tree.cpu_seconds()
    sys.stdout.write("start\n")
    sys.stdout.flush()
    start = time.perf_counter()
    result = runs[name](path)
    result["seconds"] = time.perf_counter() - start
    result["cpu_s"] = round(tree.cpu_seconds() - cpu, 2)
    print(json.dumps(result))


def warm(path: Path) -> None:
    """Read the file through so it is in the page cache: pandas' 8 GB at 1 GB can push it out, and the next
    contender would time the disk instead of itself."""
    with open(path, "rb", buffering=0) as f:
        buffer = bytearray(8 << 20)
        while f.readinto(buffer):
            pass


def measure(name: str, path: Path, timeout: float, *, memory: bool = False) -> dict[str, object]:
    """Run one contender in a fresh interpreter on a file in the page cache: its time, or (`memory`) its
    process tree's memory, sampled every 25 ms. Never both: reading /proc (smaps_rollup walks page tables)
    takes CPU, which would slow a contender that uses every core more than one that leaves a core idle."""
    warm(path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen([sys.executable, __file__, "--run", name, str(path)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=env) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.readline()  # "start": imports done, the clock runs
        tree, deadline = Tree(proc.pid), time.monotonic() + timeout
        try:
            while memory and proc.poll() is None and time.monotonic() < deadline:
                tree.sample()
                time.sleep(0.025)
            proc.wait(timeout=max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            proc.kill()
            return {"name": name, "error": f"timed out after {timeout:.0f}s"}
        out, err = proc.stdout.read(), proc.stderr.read()
    if proc.returncode != 0:
        return {"name": name, "error": (err.strip().splitlines()[-1:] or ["failed"])[0]}
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    result["name"] = name
    if memory:
        return {"peak_rss_mb": round(tree.peak_rss / 1024, 1), "peak_pss_mb": round(tree.peak_pss / 1024, 1)}
    return result


def bench_size(size_mb: float, names: list[str], timeout: float, tmp: Path, repeat: int) -> dict[str, object]:
    """Generate one file and run every contender on it `repeat` times, taking turns; the figures (each
    contender's median round), ratios and checks."""
    path = tmp / f"ultrachat-{size_mb:g}mb.jsonl"
    started = time.perf_counter()
    rows = generate(path, size_mb)
    size = path.stat().st_size
    print(f"\ngenerated {size / 1e6:,.0f} MB, {rows:,} rows in {time.perf_counter() - started:.0f}s: {path}",
          flush=True)
    peaks = [measure(name, path, timeout, memory=True) for name in names]
    rounds = [[measure(name, path, timeout) for name in names] for _ in range(repeat)]
    path.unlink()
    results = [{**_median_round([turns[i] for turns in rounds]), **peaks[i]} for i in range(len(names))]
    for r in results:
        if "seconds" in r:
            r["mb_per_s"] = round(size / 1e6 / float(r["seconds"]), 1)  # type: ignore[arg-type]
    print_table(results)
    speed = {str(r["name"]): float(r["mb_per_s"]) for r in results if "mb_per_s" in r}  # type: ignore[arg-type]
    ratios = {f"{a}_vs_{b}": round(speed[a] / speed[b], 2) for a in ("parallel", "single", "parallel_off",
                                                                     "single_off")
              for b in ("orjson_loop", "pandas") if a in speed and b in speed}
    checks: dict[str, object] = {}
    ours = {str(r["name"]): r.get("report_sha256") for r in results}
    for a, b in (("parallel", "single"), ("parallel_off", "single_off")):
        if ours.get(a) and ours.get(b):
            checks[f"{a}_report_equals_{b}"] = ours[a] == ours[b]
    counted = {str(r["name"]): r.get("rows") for r in results if "rows" in r}
    checks["rows_agree"] = len(set(counted.values())) <= 1
    print("ratios:", ", ".join(f"{k} {v}x" for k, v in ratios.items()) or "-", "| checks:", checks)
    return {"size_mb": round(size / 1e6), "rows": rows, "results": results, **ratios, "checks": checks}


def _median_round(runs: list[dict[str, object]]) -> dict[str, object]:
    """One contender's figures over its timed rounds: its median round (by wall time), with the fastest and
    every time. A failed round fails the contender."""
    failed = [r for r in runs if "error" in r]
    if failed:
        return failed[0]
    ordered = sorted(runs, key=lambda r: float(r["seconds"]))  # type: ignore[arg-type]
    median = dict(ordered[(len(ordered) - 1) // 2])
    median["fastest_s"] = round(float(ordered[0]["seconds"]), 4)  # type: ignore[arg-type]
    median["all_s"] = [round(float(r["seconds"]), 4) for r in runs]  # type: ignore[arg-type]
    return median


def crossover(timeout: float, tmp: Path) -> list[dict[str, object]]:
    """Single pass vs parallel at small sizes: where starting workers begins to pay."""
    figures = []
    for size_mb in (2, 4, 8, 16, 32, 64):
        path = tmp / "small.jsonl"
        generate(path, size_mb)
        row: dict[str, object] = {"size_mb": size_mb}
        for name in ("single", "parallel_always"):
            best = min(float(measure(name, path, timeout).get("seconds", float("inf")))  # type: ignore[arg-type]
                       for _ in range(5))
            row[name] = round(best, 4)
        print(f"{size_mb:>4} MB  single {row['single']:.4f}s  parallel {row['parallel_always']:.4f}s",
              flush=True)
        figures.append(row)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[100, 1024], metavar="MB")
    parser.add_argument("--only", nargs="*", choices=CONTENDERS, default=list(DEFAULT))
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the contenders (median reported)")
    parser.add_argument("--crossover", action="store_true", help="measure the single-pass threshold instead")
    parser.add_argument("--run", nargs=2, metavar=("NAME", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        child(args.run[0], Path(args.run[1]))
        return
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
        if args.crossover:
            print(json.dumps({"crossover": crossover(args.timeout, Path(tmp)), "load": load}))
            return
        runs = [bench_size(size, args.only, args.timeout, Path(tmp), args.repeat) for size in args.sizes]
    print(json.dumps({"cores": os.cpu_count(), "load_before": load, "load_after": os.getloadavg()[0],
                      "runs": runs}))


def print_table(results: list[dict[str, object]]) -> None:
    print(f"{'contender':<13}{'median s':>9}{'fastest':>9}{'MB/s':>9}{'CPU s':>8}{'peak RSS MB':>13}"
          f"{'peak PSS MB':>13}  rows")
    for r in results:
        if "error" in r:
            print(f"{r['name']:<13}  error: {r['error']}")
            continue
        print(f"{r['name']:<13}{float(r['seconds']):>9.3f}{float(r['fastest_s']):>9.3f}"  # type: ignore[arg-type]
              f"{r['mb_per_s']:>9}{r['cpu_s']:>8}{r['peak_rss_mb']:>13}{r['peak_pss_mb']:>13}  {r['rows']}")


if __name__ == "__main__":
    main()

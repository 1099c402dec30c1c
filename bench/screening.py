"""Screening's recall and false positives per kind, on a generated corpus (bench/screening_corpus.py).

    python bench/screening.py                  # 200 planted values per kind, 5,000 clean rows
    python bench/screening.py --per-kind 50 --clean 1000 --json

The planted rows and the clean rows (ordinary chat full of harmless numbers, plus the demo data) are shuffled
into one upload and scanned the way an upload is (`report` for both categories, so every finding is listed).
A planted value counts as found when a finding of its kind is on its line and message; any other finding is a
false positive, charged to the kind it claimed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.screening_corpus import MAKERS, ordinary, planted  # noqa: E402
from shared.dataset import Limits, scan_path  # noqa: E402
from shared.dataset.screening import Screening  # noqa: E402

DEMO = [ROOT / "demo" / "sample_chat.jsonl", ROOT / "demo" / "sample_chat.test.jsonl"]


def measure(per_kind: int, clean_rows: int, seed: int = 1) -> dict[str, Any]:
    """Scan one shuffled upload of planted and clean rows; the table's figures per kind."""
    rows: list[tuple[bytes, str | None, int, str]] = [*planted(seed, per_kind)]
    clean = ordinary(seed, clean_rows) + [
        line for path in DEMO for line in path.read_bytes().splitlines() if line
    ]
    rows += [(row, None, 0, "") for row in clean]
    random.Random(seed).shuffle(rows)
    limits = dataclasses.replace(
        Limits(),
        screening=Screening("report", "report"),
        max_findings_listed=10 * len(rows),
        min_training_rows=1,
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.jsonl"
        path.write_bytes(b"\n".join(row for row, *_ in rows) + b"\n")
        report = scan_path(path, limits)
    expected = {(line, message): kind for line, (_, kind, message, _) in enumerate(rows, 1) if kind}
    found, false = Counter[str](), Counter[str]()
    matched: set[tuple[int, int]] = set()
    for f in report.sensitive["findings"]:
        where = (f["line"], f["message"])
        if expected.get(where) == f["kind"] and where not in matched:
            found[f["kind"]] += 1
            matched.add(where)
        else:
            false[f["kind"]] += 1
    planted_count = Counter(kind for _, kind, _, _ in rows if kind)
    table = {
        kind: {
            "planted": planted_count[kind],
            "found": found[kind],
            "recall": round(found[kind] / planted_count[kind], 4) if planted_count[kind] else None,
            "false_positives": false[kind],
        }
        for kind in MAKERS
    }
    return {
        "rows": len(rows),
        "clean_rows": len(clean),
        "kinds": table,
        "findings": report.sensitive["count"],
        "listed": len(report.sensitive["findings"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=200)
    parser.add_argument("--clean", type=int, default=5000)
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args()
    result = measure(args.per_kind, args.clean)
    if not args.json:
        print(f"{result['rows']:,} rows ({result['clean_rows']:,} clean: ordinary chat + demo data)")
        print(f"{'kind':<20}{'planted':>9}{'found':>8}{'recall':>9}{'false pos.':>12}")
        for kind, r in result["kinds"].items():
            print(f"{kind:<20}{r['planted']:>9}{r['found']:>8}{r['recall']:>9.1%}{r['false_positives']:>12}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()

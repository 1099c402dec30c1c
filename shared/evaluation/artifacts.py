"""Saving the evaluation report: eval_report.json (the data) and eval_report.html (to read).

Written to a directory (the local engine keeps them in the job's folder, where the status page reads them
without an MLflow call, and logs them to the job's MLflow run under ARTIFACT_DIR: engine/train/run.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from shared.evaluation import render
from shared.evaluation.report import EvalReport

ARTIFACT_DIR = "evaluation"
REPORT_JSON = "eval_report.json"
REPORT_HTML = "eval_report.html"


def write(report: EvalReport, directory: Path, title: str) -> list[Path]:
    """Write the JSON and HTML report into `directory`; returns both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    data, html = directory / REPORT_JSON, directory / REPORT_HTML
    data.write_text(json.dumps(report.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    html.write_text(render.page(report, title), encoding="utf-8")
    return [data, html]


def read(directory: Path) -> EvalReport | None:
    """The report written into `directory`, or None if there is none (or it cannot be read)."""
    try:
        return EvalReport.from_dict(json.loads((directory / REPORT_JSON).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None

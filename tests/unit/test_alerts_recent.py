"""The page reads kept alerts through `Alerts.recent`, not by picking a sink out by its type."""

from __future__ import annotations

import ast
from pathlib import Path

from shared.alerts import Alert, Alerts, JsonlAlertSink

ROOT = Path(__file__).resolve().parents[2]


def test_recent_gives_the_kept_alerts_newest_first_or_none(tmp_path: Path) -> None:
    kept = JsonlAlertSink(tmp_path / "alerts.jsonl")
    alerts = Alerts([kept], kept=kept)
    for n, at in enumerate(["2026-12-01T00:00:00+00:00", "2026-12-03T00:00:00+00:00",
                            "2026-12-02T00:00:00+00:00"]):
        alerts.send(Alert(f"run-{n}", "run.failed", "error", "it failed", at=at))
    assert [a["run_id"] for a in alerts.recent(2) or []] == ["run-1", "run-2"]
    assert Alerts([kept]).recent(5) is None  # a sink nobody named as the history is not read


def test_the_page_names_no_sink_type() -> None:
    tree = ast.parse((ROOT / "shared" / "ops" / "views.py").read_text(encoding="utf-8"))
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert not {"JsonlAlertSink", "EventGridSink", "WebhookSink"} & names

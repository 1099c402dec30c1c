"""Health checks live in shared/lifecycle/health.py; the sweep calls them and reads no deployment itself."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "shared" / "lifecycle"


def _attributes(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}


def test_the_sweep_leaves_health_to_its_module() -> None:
    assert "deployment_status" in _attributes(ROOT / "health.py")
    assert "deployment_status" not in _attributes(ROOT / "sweep.py")
    sweep = (ROOT / "sweep.py").read_text(encoding="utf-8")
    assert "from shared.lifecycle.health import" in sweep and "check_health(" in sweep

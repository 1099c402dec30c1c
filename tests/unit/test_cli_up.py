"""`autopilot` starts light: `up` becomes the devhost program without importing it, and nothing loads the
handlers until a command needs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shared import cli_ops
from shared.cli import main


def test_up_replaces_itself_with_python_m_devhost(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str]]] = []

    def execv(path: str, argv: list[str]) -> None:
        calls.append((path, argv))
        raise SystemExit(0)  # execv does not return; neither does this

    monkeypatch.setattr(cli_ops.os, "execv", execv)
    with pytest.raises(SystemExit):
        main(["up", "--port", "7099", "--no-azurite"])
    assert calls == [(sys.executable, [sys.executable, "-m", "devhost", "--port", "7099", "--no-azurite"])]


def test_the_command_line_starts_without_the_devhost_or_the_handlers() -> None:
    probe = ("import sys, shared.cli; print(sorted({m.split('.')[0] if not m.startswith('shared.') else m "
             "for m in sys.modules}))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[2]).stdout
    assert "devhost" not in loaded and "shared.lifecycle" not in loaded and "rouge_score" not in loaded

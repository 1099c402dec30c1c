"""`autopilot up` becomes the devhost program without importing it (that nothing else loads the devhost or
the handlers at start-up is checked in a fresh interpreter: tests/integration/test_cli_startup.py)."""

from __future__ import annotations

import sys

import pytest

from cli import ops
from cli.main import main


def test_up_replaces_itself_with_python_m_devhost(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str]]] = []

    def execv(path: str, argv: list[str]) -> None:
        calls.append((path, argv))
        raise SystemExit(0)  # execv does not return; neither does this

    monkeypatch.setattr(ops.os, "execv", execv)
    with pytest.raises(SystemExit):
        main(["up", "--port", "7099", "--no-azurite"])
    assert calls == [(sys.executable, [sys.executable, "-m", "devhost", "--port", "7099", "--no-azurite"])]

"""`autopilot` starts light: nothing loads the devhost or the handlers until a command needs them.

A fresh interpreter, since this test process has imported everything already.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_command_line_starts_without_the_devhost_or_the_handlers() -> None:
    probe = ("import sys, cli.main; print(sorted({m.split('.')[0] if not m.startswith('shared.') else m "
             "for m in sys.modules}))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[2]).stdout
    assert "devhost" not in loaded and "shared.lifecycle" not in loaded and "rouge_score" not in loaded
    assert "'engine'" not in loaded and "'torch'" not in loaded  # the engine runs in processes of its own

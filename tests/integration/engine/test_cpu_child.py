"""The local engine's thread choice in a fresh process (the rule: tests/unit/engine/test_cpu.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shared.platforms.local.engine_env import CPU_ENV

ROOT = Path(__file__).resolve().parents[3]


def test_use_free_cores_sets_torchs_thread_count_in_a_fresh_process():
    # A child, so the test process's own thread count is left alone; a load of 1000 leaves one core.
    script = ("import torch; from engine import cpu; "
              "print(cpu.use_free_cores(1000.0), torch.get_num_threads())")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                          check=True, env={"PYTHONPATH": str(ROOT), **CPU_ENV})
    assert done.stdout.split() == ["1", "1"]

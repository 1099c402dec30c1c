"""The local engine's thread choice: a torch thread per core other work leaves free; passive OpenMP waits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shared.platforms.local import cpu
from shared.platforms.local.jobs import LocalJobs
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("cores", "load", "free"), [
    (2, 0.0, 2), (2, 0.4, 2), (2, 0.6, 1), (2, 1.4, 1), (2, 4.5, 1), (16, 3.2, 13), (1, 0.0, 1)])
def test_free_cores_are_the_cores_minus_the_load_never_fewer_than_one(monkeypatch, cores, load, free):
    monkeypatch.setattr(cpu, "cores", lambda: cores)
    assert cpu.free_cores(load) == free


def test_use_free_cores_sets_torchs_thread_count_in_a_fresh_process():
    # A child, so the test process's own thread count is left alone; a load of 1000 leaves one core.
    script = ("import torch; from shared.platforms.local import cpu; "
              "print(cpu.use_free_cores(1000.0), torch.get_num_threads())")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                          check=True, env={"PYTHONPATH": str(ROOT), **cpu.CHILD_ENV})
    assert done.stdout.split() == ["1", "1"]


def test_job_children_start_with_a_passive_openmp_wait_policy(tmp_path: Path):
    settings = Settings.from_env({"AUTOPILOT_DATA_DIR": str(tmp_path),
                                  "AUTOPILOT_STORAGE": "UseDevelopmentStorage=true"})
    assert LocalJobs(settings)._child_env()["OMP_WAIT_POLICY"] == "PASSIVE"

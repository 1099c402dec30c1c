"""The local engine's thread choice: a torch thread per core other work leaves free; passive OpenMP waits."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import cpu
from shared.platforms.local.jobs import LocalJobs
from shared.settings import Settings


@pytest.mark.parametrize(("cores", "load", "free"), [
    (2, 0.0, 2), (2, 0.4, 2), (2, 0.6, 1), (2, 1.4, 1), (2, 4.5, 1), (16, 3.2, 13), (1, 0.0, 1)])
def test_free_cores_are_the_cores_minus_the_load_never_fewer_than_one(monkeypatch, cores, load, free):
    monkeypatch.setattr(cpu, "cores", lambda: cores)
    assert cpu.free_cores(load) == free


def test_job_children_start_with_a_passive_openmp_wait_policy(tmp_path: Path):
    settings = Settings.from_env({"AUTOPILOT_DATA_DIR": str(tmp_path),
                                  "AUTOPILOT_STORAGE": "UseDevelopmentStorage=true"})
    assert LocalJobs(settings)._child_env()["OMP_WAIT_POLICY"] == "PASSIVE"

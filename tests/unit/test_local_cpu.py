"""Every engine process the local adapter starts waits passively on OpenMP (engine/cpu.py says why): it must
be in the environment the child starts with, before torch loads OpenMP."""

from __future__ import annotations

from pathlib import Path

from shared.platforms.local import engine_env
from shared.platforms.local.jobs import LocalJobs
from shared.settings import Settings


def test_job_children_start_with_a_passive_openmp_wait_policy(tmp_path: Path):
    settings = Settings.from_env({"AUTOPILOT_DATA_DIR": str(tmp_path),
                                  "AUTOPILOT_STORAGE": "UseDevelopmentStorage=true"})
    assert LocalJobs(settings)._child_env()["OMP_WAIT_POLICY"] == "PASSIVE"


def test_servers_start_with_the_same_environment_and_find_the_engine(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    env = engine_env.child_env()
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and env["HF_HUB_OFFLINE"] == "1"
    # `python -m engine.…` works from any working directory: the repository is on the path, first.
    assert env["PYTHONPATH"].split(":") == [str(engine_env.REPO_ROOT), "/elsewhere"]
    assert (engine_env.REPO_ROOT / "engine" / "__init__.py").is_file()

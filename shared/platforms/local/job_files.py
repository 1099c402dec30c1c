"""A local job's folder, `<data dir>/jobs/<name>`: the contract between the adapter and the training child.

The adapter (jobs.py) writes spec.json and starts `python -m engine.train <job dir>`; the child writes
status.json (atomically) and the evaluation report; the adapter reads them. Nothing else passes between them.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared.platforms.port import JobSpec

SPEC_FILE = "spec.json"
STATUS_FILE = "status.json"
PID_FILE = "pid.json"
LOG_FILE = "job.log"
# The model version tag naming the job a model was registered from (also on the job's MLflow run).
JOB_TAG = "autopilot-job"
# The evaluation report beside the job's status (what the status page reads), also logged to MLflow.
EVALUATION_DIR = "evaluation"
# The module the adapter runs as the job's process.
TRAINER_MODULE = "engine.train"


def write_json_atomic(path: Path, payload: Mapping[str, Any]) -> None:
    """Write JSON so a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def read_status(job_dir: Path) -> dict[str, Any] | None:
    """The job's status.json, or None if it has not been written yet."""
    try:
        return dict(json.loads((job_dir / STATUS_FILE).read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None


def write_spec(job_dir: Path, spec: JobSpec) -> None:
    """Persist the spec for the child (and for anyone asking what the job was)."""
    write_json_atomic(job_dir / SPEC_FILE, dataclasses.asdict(spec))


def read_spec(job_dir: Path) -> JobSpec:
    """The JobSpec the job was submitted with."""
    return JobSpec.from_dict(json.loads((job_dir / SPEC_FILE).read_text(encoding="utf-8")))

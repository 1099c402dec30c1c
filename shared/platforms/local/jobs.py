"""The local engine's jobs side of the platform port: submit a fine-tune, report it, register its model.

A job is a directory `data_dir/jobs/<name>` (job_files.py) and a child process, `python -m engine.train`,
which the adapter starts by module name and never imports. The directory is created with one atomic mkdir,
so a submit fired twice finds the first job instead of starting a second.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared.evaluation import EvalReport, artifacts
from shared.platforms.local import base_model_names, job_files
from shared.platforms.local.base_model_names import label
from shared.platforms.local.engine_env import child_env
from shared.platforms.port import (
    TERMINAL_STATUSES,
    BaseModelRefused,
    JobSpec,
    JobState,
    ModelRef,
    NotFoundError,
    PlatformError,
    TrainingRecord,
    TrainingSupport,
)
from shared.settings import Settings

# The model version tag holding the job's fine-tune parameters (JSON, the component's names and values).
PARAMETERS_TAG = "autopilot-parameters"
# A job dir without a started child after this long was abandoned by a submitter that died mid-submit.
START_GRACE_S = 60.0


class LocalJobs:
    """Fine-tune jobs run as child processes on this machine; models land in the local MLflow registry."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.jobs_dir = settings.data_dir.resolve() / "jobs"

    def check_base_model(self, reference: str) -> None:
        if (why := base_model_names.problem(reference or self.settings.base_model)) is not None:
            raise BaseModelRefused(why)

    def training_support(self) -> TrainingSupport:
        """The engine renders every row with the base model's template and labels only learned turns
        (chat_format); a template that cannot render tools fails the job by name."""
        return TrainingSupport(per_turn_weights=True, tool_calling=True)

    def submit(self, spec: JobSpec) -> JobState:
        """Start the job in a child process, or return the state of the job already submitted by that name."""
        job_dir = self.jobs_dir / spec.name
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(job_dir)
        except FileExistsError:
            return self.job_status(spec.name)
        job_files.write_spec(job_dir, spec)
        job_files.write_json_atomic(job_dir / job_files.STATUS_FILE,
                                    {"name": spec.name, "status": "Queued", "submitted_at": time.time()})
        with open(job_dir / job_files.LOG_FILE, "ab") as out:
            child = subprocess.Popen(
                [sys.executable, "-m", job_files.TRAINER_MODULE, str(job_dir)],
                cwd=job_dir, env=self._child_env(), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        job_files.write_json_atomic(job_dir / job_files.PID_FILE,
                                    {"pid": child.pid, "start": _start_time(child.pid)})
        # Reap the child when it exits so it does not linger as a zombie that still looks alive.
        threading.Thread(target=child.wait, name=f"reap-{spec.name}", daemon=True).start()
        return self.job_status(spec.name)

    def job_status(self, job_name: str) -> JobState:
        """The job's state from its status.json; a child that died without a terminal status is Failed."""
        job_dir = self.jobs_dir / job_name
        if not job_dir.is_dir():
            raise NotFoundError(f"no local job named {job_name!r}")
        status = job_files.read_status(job_dir)
        if not _finished(status) and not self._child_alive(job_dir):
            # The child may have written its terminal status between our two reads.
            status = job_files.read_status(job_dir)
            if not _finished(status):
                return JobState(job_name, "Failed", error=(
                    f"the local fine-tune process for job {job_name} exited without reporting a result; "
                    f"see {job_dir / job_files.LOG_FILE}"))
        if status is None:
            return JobState(job_name, "Queued")
        return _state(job_name, status)

    def training_record(self, job_name: str) -> TrainingRecord:
        """The job's MLflow run: training loss per logging step, the test split's loss after training
        (`eval_loss`, one point), and the evaluation report (base model vs fine-tuned) once written."""
        self.job_status(job_name)  # NotFoundError for an unknown job
        return TrainingRecord(loss_curve=self._history(job_name, "loss"),
                              validation_loss=self._history(job_name, "eval_loss"),
                              evaluation=self._eval_report(job_name))

    def _history(self, job_name: str, key: str) -> tuple[tuple[int, float], ...]:
        from shared.platforms.local import mlflow_store

        status = job_files.read_status(self.jobs_dir / job_name) or {}
        run_id = status.get("mlflow_run_id")
        if not run_id:
            return ()
        client = mlflow_store.use(self.settings.data_dir)
        return tuple((int(m.step), float(m.value)) for m in client.get_metric_history(str(run_id), key))

    def _eval_report(self, job_name: str) -> EvalReport | None:
        """The job's evaluation report (base model, candidate, live deployment), once the job wrote it."""
        return artifacts.read(self.jobs_dir / job_name / job_files.EVALUATION_DIR)

    def register(self, job_name: str, model_name: str, tags: Mapping[str, str],
                 description: str = "") -> ModelRef:
        """Register the job's logged model as a version of `model_name`; a repeat returns the same version."""
        from shared.platforms.local import mlflow_store

        state = self.job_status(job_name)
        if state.status != "Completed":
            raise PlatformError(f"job {job_name} is {state.status}, not Completed; only a completed job's "
                                f"model can be registered" + (f" ({state.error})" if state.error else ""))
        status = job_files.read_status(self.jobs_dir / job_name) or {}
        model_uri = status.get("model_uri")
        if not model_uri:
            raise PlatformError(f"job {job_name} completed but recorded no MLflow model; see its job.log")
        client = mlflow_store.use(self.settings.data_dir)
        with mlflow_store.data_dir_lock(self.settings.data_dir, "registry"):
            existing = _version_of_job(client, model_name, job_name)
            if existing is not None:
                return ModelRef(model_name, existing)
            import mlflow

            version = mlflow.register_model(model_uri, model_name,
                                            tags={**_lineage(self.jobs_dir / job_name, status), **tags,
                                                  job_files.JOB_TAG: job_name})
            if description:
                client.update_model_version(model_name, version.version, description=description)
        return ModelRef(model_name, str(version.version))

    def _child_env(self) -> dict[str, str]:
        """The environment the child reads its Settings from (the settings object may not come from env)."""
        s = self.settings
        env = child_env({k: v for k, v in os.environ.items() if not k.startswith(("AUTOPILOT_", "AZUREML_"))})
        env.update({
            "AUTOPILOT_PLATFORM": "local",
            "AUTOPILOT_DATA_DIR": str(s.data_dir.resolve()),
            "JOB_EVENT_QUEUE": s.job_event_queue,
            # The endpoint whose live model the job's evaluation report compares with.
            "ENDPOINT_NAME": s.endpoint_name,
            # The progress bar goes to job.log, a file: a redraw every few seconds keeps it readable.
            "TQDM_MININTERVAL": "3",
            "TQDM_NCOLS": "100",
        })
        if s.storage.connection_string:
            env["AUTOPILOT_STORAGE"] = s.storage.connection_string
        for key, value in (("blobServiceUri", s.storage.blob_url), ("tableServiceUri", s.storage.table_url),
                           ("queueServiceUri", s.storage.queue_url)):
            if value:
                env[f"AUTOPILOT_STORAGE__{key}"] = value
        return env

    def _child_alive(self, job_dir: Path) -> bool:
        try:
            pid_file = dict(json.loads((job_dir / job_files.PID_FILE).read_text(encoding="utf-8")))
        except FileNotFoundError:
            # Submitted a moment ago and not spawned yet, or abandoned by a submitter that died.
            return time.time() - job_dir.stat().st_mtime < START_GRACE_S
        return _running(int(pid_file["pid"]), pid_file.get("start"))


def _finished(status: Mapping[str, Any] | None) -> bool:
    return status is not None and status["status"] in TERMINAL_STATUSES


def _state(job_name: str, status: Mapping[str, Any]) -> JobState:
    metrics = {k: float(v) for k, v in (status.get("metrics") or {}).items() if isinstance(v, int | float)}
    return JobState(job_name, str(status["status"]), error=status.get("error"), metrics=metrics)


def _lineage(job_dir: Path, status: Mapping[str, Any]) -> dict[str, str]:
    """Tags that say how a model version was made: base model, fine-tune parameters, MLflow run, test loss."""
    spec = job_files.read_spec(job_dir)
    lineage = {"autopilot-base-model": label(spec.base_model),
               PARAMETERS_TAG: json.dumps(dict(spec.parameters), sort_keys=True, separators=(",", ":")),
               "autopilot-train-data": spec.train_uri.split("?", 1)[0],
               "autopilot-test-data": spec.test_uri.split("?", 1)[0],
               "mlflow-run-id": str(status.get("mlflow_run_id", ""))}
    metrics = status.get("metrics") or {}
    for key in ("eval_loss", "perplexity", "rouge_l", "base_eval_loss", "base_rouge_l"):
        if isinstance(metrics.get(key), int | float):
            lineage[f"autopilot-{key.replace('_', '-')}"] = f"{metrics[key]:.4f}"
    return lineage


def _version_of_job(client: Any, model_name: str, job_name: str) -> str | None:
    """The version of `model_name` already registered from `job_name`, if any."""
    for version in client.search_model_versions(f"name = '{model_name}'"):
        if version.tags.get(job_files.JOB_TAG) == job_name:
            return str(version.version)
    return None


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), which tells a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _running(pid: int, start: str | None) -> bool:
    if not Path("/proc/self/stat").exists():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    # fields[0] is the state (Z: exited, not yet reaped); fields[19] the start time.
    return fields[0] not in ("Z", "X") and (start is None or fields[19] == start)

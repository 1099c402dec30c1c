"""The workspace's MLflow tracking server: https://{region}.api.azureml.ms/mlflow/v1.0/{workspace id}/api/2.0/
mlflow/, the REST API azureml-mlflow's client calls (answers shaped as examples/mlflow_*.jsonc).

Every job of the workspace is a run (its name is the run id, in the experiment named by the job). While a
chat_completion_pipeline job trains, its pipeline component's run and that run's fine-tune step are child runs
(tag `mlflow.parentRunId`), and the step logs the trainer's `loss` every logging step and `eval_loss` at each
evaluation (`log_training`). Search answers a page at a time, as the service does; histories too.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from tests.fakes.wire.http import Reply, WireRequest, WireTransport, ok
from tests.fakes.wire.ids import LOCATION, WORKSPACE_ID
from tests.fakes.wire.workspace import Workspace

BASE = re.escape(f"{LOCATION}.api.azureml.ms/mlflow/v1.0{WORKSPACE_ID}/api/2.0/mlflow")
PAGE = 2  # small pages, so the adapter's paging is exercised


def not_found(what: str) -> Reply:
    """MLflow's error body: {error_code, message}, RESOURCE_DOES_NOT_EXIST with HTTP 404."""
    return Reply(404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"{what} not found"})


class Tracking:
    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.children: dict[str, dict[str, Any]] = {}  # step runs by run id
        self.histories: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def mount(self, wire: WireTransport) -> None:
        wire.route("GET", rf"{BASE}/runs/get", self.get_run)
        wire.route("POST", rf"{BASE}/runs/search", self.search_runs)
        wire.route("GET", rf"{BASE}/metrics/get-history", self.get_history)

    def log_training(self, job: str, losses: list[float], eval_losses: list[float],
                     logging_steps: int = 10) -> None:
        """The job's pipeline runs its fine-tune step, which logs `loss` each logging step and `eval_loss`
        once per epoch (one epoch per eval loss, spread over the steps)."""
        pipeline = self._run(f"{job}-pipeline", job, "chat_completion_pipeline")
        step = self._run(f"{job}-finetune", pipeline["info"]["run_id"], "finetune")
        self._run(f"{job}-preprocess", pipeline["info"]["run_id"], "preprocess")  # logs no loss
        steps = [logging_steps * (i + 1) for i in range(len(losses))]
        per_epoch = max(1, len(steps) // max(1, len(eval_losses)))
        for key, points in (("loss", list(zip(steps, losses, strict=True))),
                            ("eval_loss", [(steps[min(len(steps), per_epoch * (i + 1)) - 1], v)
                                           for i, v in enumerate(eval_losses)])):
            history = self.histories.setdefault((step["info"]["run_id"], key), [])
            history += [{"key": key, "value": value, "timestamp": 1756728000000 + at * 1000, "step": at}
                        for at, value in points]
            if points:  # a run's data.metrics carries each metric's latest value
                step["data"]["metrics"] = [m for m in step["data"]["metrics"] if m["key"] != key] + \
                    [history[-1]]

    def _run(self, run_id: str, parent: str, name: str) -> dict[str, Any]:
        run = self.children.get(run_id) or self._shape(run_id, name, parent)
        self.children[run_id] = run
        return run

    def _shape(self, run_id: str, name: str, parent: str | None) -> dict[str, Any]:
        tags = [{"key": "mlflow.parentRunId", "value": parent}] if parent else []
        return {"info": {"run_id": run_id, "run_uuid": run_id, "run_name": name,
                         "experiment_id": self._experiment(), "user_id": str(uuid.UUID(int=0xA11C)),
                         "status": "FINISHED", "start_time": 1756728000000, "end_time": None,
                         "artifact_uri": f"azureml://experiments/finetune-autopilot/runs/{run_id}/artifacts",
                         "lifecycle_stage": "active"},
                "data": {"metrics": [], "params": [], "tags": tags}, "inputs": {}}

    @staticmethod
    def _experiment() -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, "finetune-autopilot"))

    def get_run(self, request: WireRequest, match: re.Match[str]) -> Reply:
        run_id = request.query.get("run_id", "")
        if run_id in self.children:
            return ok({"run": self.children[run_id]})
        if run_id in self.workspace.jobs:
            return ok({"run": self._shape(run_id, run_id, None)})
        return not_found(f"Run '{run_id}'")

    def search_runs(self, request: WireRequest, match: re.Match[str]) -> Reply:
        body = request.body or {}
        wanted = re.fullmatch(r"tags\.mlflow\.parentRunId = '([^']*)'", str(body.get("filter", "")))
        if not wanted or body.get("experiment_ids") != [self._experiment()]:
            return Reply(400, {"error_code": "INVALID_PARAMETER_VALUE",
                               "message": f"the fake searches children by parent only, not {body}"})
        found = [r for r in self.children.values()
                 if {"key": "mlflow.parentRunId", "value": wanted[1]} in r["data"]["tags"]]
        start = int(body.get("page_token") or 0)
        page = found[start:start + min(PAGE, int(body.get("max_results", 1000)))]
        more = start + len(page) < len(found)
        return ok({"runs": page, **({"next_page_token": str(start + len(page))} if more else {})})

    def get_history(self, request: WireRequest, match: re.Match[str]) -> Reply:
        run_id, key = request.query.get("run_id", ""), request.query.get("metric_key", "")
        if run_id not in self.children and run_id not in self.workspace.jobs:
            return not_found(f"Run '{run_id}'")
        history = self.histories.get((run_id, key), [])
        start = int(request.query.get("page_token") or 0)
        page = history[start:start + PAGE]
        more = start + len(page) < len(history)
        return ok({"metrics": page, **({"next_page_token": str(start + len(page))} if more else {})})

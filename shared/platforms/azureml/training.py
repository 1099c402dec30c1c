"""What an Azure ML fine-tune job recorded while it trained: the pipeline's logged loss metrics.

chat_completion_pipeline's fine-tune step logs the Hugging Face trainer's metrics to its run (MLflow on the
workspace): `loss` every `logging_steps`, `eval_loss` at each evaluation (`evaluation_strategy`, epoch by
default). The step's run is a descendant of the pipeline job's run (the job's name is its run id), linked by
the `mlflow.parentRunId` tag. They are read from the workspace's MLflow tracking server, at the address the
workspace reports (`mlflow_tracking_uri`), with the MLflow REST API that azureml-mlflow's client calls:
`runs/get`, `runs/search` (children by parent), `metrics/get-history`.

The pipeline writes no evaluation output (base model vs fine-tuned): that figure is named as not recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from azure.core.rest import HttpRequest

from shared.platforms.azureml.errors import azure_call
from shared.platforms.port import NotFoundError, PlatformError, TrainingRecord

LOSS = "loss"
VALIDATION_LOSS = "eval_loss"
NOT_RECORDED = {"evaluation": "Azure ML's chat_completion_pipeline writes no evaluation of base vs "
                              "fine-tuned model; the deploy gate's ROUGE-L against the live model is on the "
                              "run instead"}
_PARENT_TAG = "mlflow.parentRunId"
_MAX_DEPTH = 3  # the job's run → the pipeline component's run → its steps' runs
_PAGES = 20  # a history longer than 20 pages (of the server's page size) is cut, not read for ever


def tracking_base(ml: Any, workspace: str) -> str:
    """The workspace's MLflow tracking server, as an https address (it reports azureml://host/path)."""
    with azure_call(f"read the MLflow tracking address of workspace {workspace}"):
        uri = str(ml.workspaces.get(workspace).mlflow_tracking_uri or "")
    parts = urlsplit(uri)
    if not parts.netloc:
        raise PlatformError(f"workspace {workspace} reports no MLflow tracking address ({uri!r})")
    return f"https://{parts.netloc}{parts.path.rstrip('/')}/api/2.0/mlflow"


def training_record(client: Any, base: str, job_name: str) -> TrainingRecord:
    """The job's training loss per step and validation loss, from the descendant run that logged them."""
    job = _call(client, "GET", f"{base}/runs/get", f"read the run of job {job_name}",
                params={"run_id": job_name})
    experiment = str(job["run"]["info"]["experiment_id"])
    trained = next((run for run in _descendants(client, base, experiment, job_name)
                    if any(m.get("key") == LOSS for m in run.get("data", {}).get("metrics", []))), None)
    if trained is None:  # nothing logged yet (queued, preprocessing) or a step that failed before training
        return TrainingRecord(missing=NOT_RECORDED)
    run_id = str(trained["info"]["run_id"])
    return TrainingRecord(loss_curve=_history(client, base, run_id, LOSS),
                          validation_loss=_history(client, base, run_id, VALIDATION_LOSS),
                          missing=NOT_RECORDED)


def _descendants(client: Any, base: str, experiment: str, run_id: str, depth: int = 0) -> Iterator[Any]:
    if depth >= _MAX_DEPTH:
        return
    children: list[Any] = []
    token = ""
    for _ in range(_PAGES):
        query = {"experiment_ids": [experiment], "filter": f"tags.{_PARENT_TAG} = '{run_id}'",
                 "max_results": 100, **({"page_token": token} if token else {})}
        found = _call(client, "POST", f"{base}/runs/search", f"list the steps of run {run_id}", json=query)
        children += found.get("runs") or []
        token = str(found.get("next_page_token") or "")
        if not token:
            break
    for run in children:
        yield run
        yield from _descendants(client, base, experiment, str(run["info"]["run_id"]), depth + 1)


def _history(client: Any, base: str, run_id: str, key: str) -> tuple[tuple[int, float], ...]:
    points: list[tuple[int, float]] = []
    token = ""
    for _ in range(_PAGES):
        params = {"run_id": run_id, "metric_key": key, **({"page_token": token} if token else {})}
        page = _call(client, "GET", f"{base}/metrics/get-history", f"read {key} of run {run_id}",
                     params=params)
        points += [(int(m.get("step", 0)), float(m["value"])) for m in page.get("metrics") or []]
        token = str(page.get("next_page_token") or "")
        if not token:
            break
    return tuple(sorted(points))


def _call(client: Any, method: str, url: str, action: str, **request: Any) -> Any:
    with azure_call(action):
        response = client.send_request(HttpRequest(method, url, **request))
    if response.status_code == 404:
        raise NotFoundError(f"{action}: not found")
    if response.status_code >= 400:
        with azure_call(action):
            response.raise_for_status()
    return response.json()

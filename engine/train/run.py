"""One local fine-tune job, run as a child process: `python -m engine.train <job_dir>` (see __main__.py).

The job dir holds spec.json (written by the adapter's LocalJobs.submit) and status.json (written here,
atomically), which is all the parent reads: their names and format are the adapter's
(shared/platforms/local/job_files.py). Like an Azure ML job, the child announces Running and its terminal
status as Azure ML–shaped run events, on the Azurite queue the devhost relays to the job-events function.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from engine.train.evaluate import Evidence
from engine.train.train_data import TrainFile
from shared.evaluation import EvalReport
from shared.platforms.local.job_files import (
    EVALUATION_DIR,
    JOB_TAG,
    STATUS_FILE,
    read_spec,
    read_status,
    write_json_atomic,
)
from shared.platforms.port import JobSpec
from shared.settings import Settings

log = logging.getLogger("engine.train")

MODEL_ARTIFACT = "model"


_SECRETS = re.compile(r"(AccountKey=|SharedAccessSignature=|sig=|[?&]se=)[^;&\s'\"]+", re.IGNORECASE)


def redact(text: str) -> str:
    """Remove key and SAS material from a message before it is stored or logged."""
    return _SECRETS.sub(r"\1***", text)


class JobStepFailed(RuntimeError):
    """A step of the job failed; the message says which step and why."""


class Job:
    """The running job: its spec, where it writes, and how it reports."""

    def __init__(self, job_dir: Path, settings: Settings) -> None:
        self.dir = job_dir
        self.settings = settings
        self.spec = read_spec(job_dir)
        self.timings: dict[str, float] = {}

    def report(self, status: str, **fields: Any) -> None:
        """Write status.json, then announce the status as a run event (the order handlers rely on)."""
        previous = read_status(self.dir) or {}
        write_json_atomic(self.dir / STATUS_FILE, {
            **previous, **fields, "name": self.spec.name, "status": status, "pid": os.getpid(),
            "updated_at": time.time(), "timings": self.timings})
        self._emit(status)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time a step; turn its failure into a JobStepFailed naming the step."""
        started = time.monotonic()
        try:
            yield
        except JobStepFailed:
            raise
        except Exception as exc:
            detail = redact(str(exc)).strip()[:500]
            raise JobStepFailed(f"{name} failed: {type(exc).__name__}: {detail}") from exc
        finally:
            self.timings[name] = round(time.monotonic() - started, 2)

    def _emit(self, status: str) -> None:
        from azure.core.exceptions import AzureError, ResourceExistsError

        from shared.events import run_event
        from shared.storage import queue_client

        event = run_event(self.spec.name, status, experiment=self.spec.experiment, tags=self.spec.tags)
        try:
            queue = queue_client(self.settings.storage, self.settings.job_event_queue)
            with suppress(ResourceExistsError):
                queue.create_queue()
            queue.send_message(json.dumps(event))
        except AzureError as exc:
            # The reconciler polls job_status, so a lost event delays the lifecycle but does not stall it.
            log.warning("could not send the %s event for job %s: %s",
                        status, self.spec.name, type(exc).__name__)


def _download_rows(settings: Settings, url: str) -> list[dict[str, Any]]:
    """The test split's rows (at most TEST_ROWS_MAX of them, so they may be held in memory)."""
    from shared.storage import blob_from_url

    data = blob_from_url(settings.storage, url).download_blob().readall()
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


def _download_train(settings: Settings, url: str, path: Path) -> TrainFile:
    """The train split, copied to the job's folder chunk by chunk: never whole in memory (train_data)."""
    from engine.train.train_data import save_chunks
    from shared.storage import blob_from_url

    return save_chunks(blob_from_url(settings.storage, url).download_blob().chunks(), path)


def _pip_requirements() -> list[str]:
    from importlib.metadata import version

    packages = ("mlflow", "torch", "transformers", "tokenizers", "accelerate")
    return [f"{name}=={version(name)}" for name in packages]


def _model_card(spec: JobSpec, base: str, metrics: Mapping[str, float]) -> Any:
    """A card written here, so MLflow does not try to fetch the base model's card from the hub."""
    from huggingface_hub import ModelCard

    scores = ", ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items()))
    return ModelCard(f"---\nlicense: other\nbase_model: {base}\n---\n# {spec.display_name}\n\n"
                     f"LoRA fine-tune of {base} by the local engine (job {spec.name}): {scores}.\n")


def run(job: Job) -> dict[str, Any]:
    """Download the data, fine-tune inside an open MLflow run, evaluate, log model, curve and report.

    The run opens before training so its step metrics appear while the job is Running; if a step fails the
    run ends FAILED, as the job does.
    """
    from engine import cpu
    from engine.models.loading import load_base_model, model_specific_defaults
    from engine.train.training import fine_tune, held_out_loss, resolve_plan
    from shared.platforms.local import mlflow_store
    from shared.platforms.local.base_model_names import label

    spec, settings = job.spec, job.settings
    base = label(spec.base_model)
    # Read before the imports below load the CPU themselves: how busy the machine is with other work.
    others_load = os.getloadavg()[0]
    with job.step("importing libraries"):
        # Up front, so the timings say how much of a job is import cost rather than hiding it in a step.
        import mlflow
        import mlflow.transformers
        import peft  # noqa: F401
        import trl  # noqa: F401

        from engine.train.tracking import StepMetrics, loss_curve

        # Every step below runs torch: one thread per core nobody else is using (see engine/cpu.py).
        log.info("torch uses %d CPU thread(s) (load average %.1f at start)",
                 cpu.use_free_cores(others_load), others_load)
    with job.step("preparing the base model"):
        cache = settings.data_dir / "models"
        plan = resolve_plan(model_specific_defaults(spec.base_model, cache), spec.parameters)
    with job.step("downloading data"):
        train = _download_train(settings, spec.train_uri, job.dir / "data" / "train.jsonl")
        test_rows = _download_rows(settings, spec.test_uri) if spec.test_uri else []
    with job.step("loading base model"):
        model, tokenizer = load_base_model(spec.base_model, cache)
    evidence = Evidence.for_rows(test_rows)
    with job.step("evaluating the base model"):
        evidence.ask("base", base, _chat(model, tokenizer, base))
    base_loss: float | None = None
    if spec.start_from is not None:
        with job.step("loading the live model to start from"):
            if test_rows:  # the base's own loss: the report compares the candidate with the original base
                base_loss = held_out_loss(model, tokenizer, test_rows, plan, job.dir / "base-eval")
            model, tokenizer = _start_model(job, spec.start_from)
            evidence.remarks.append(f"trained on from the live model {_ref(spec.start_from)}; lineage: "
                                    + " → ".join([*spec.lineage, spec.display_name]))
    with job.step("opening the MLflow run"):
        client = mlflow_store.use(settings.data_dir)
        experiment_id = mlflow_store.ensure_experiment(client, settings.data_dir, spec.experiment)
        tags = {**spec.tags, JOB_TAG: spec.name, "autopilot-base-model": base}
    with mlflow.start_run(experiment_id=experiment_id, run_name=spec.name, tags=tags) as mlrun:
        run_id = mlrun.info.run_id
        mlflow.log_params({**plan.as_params(), "base_model": base, "train_rows": train.rows,
                           "test_rows": len(test_rows),
                           "start_from": _ref(spec.start_from) if spec.start_from else "base"})
        with job.step("training"):
            result = fine_tune(model, tokenizer, train, test_rows, plan, job.dir / "trainer",
                               callbacks=[StepMetrics(run_id)], model_name=base)
            train.path.unlink()  # the staged blob keeps the data; the job's copy only fed the trainer
        if result.epochs:
            evidence.remarks.append(epochs_remark(result.epochs, result.best_epoch))
        if spec.start_from is not None:  # before training the model was the live fine-tune, not the base
            for name in ("eval_loss", "perplexity"):
                if f"base_{name}" in result.metrics:
                    result.metrics[f"start_{name}"] = result.metrics.pop(f"base_{name}")
        with job.step("evaluating the fine-tuned model"):
            evidence.ask("candidate", spec.display_name, _chat(result.model, tokenizer, spec.display_name))
            evidence.losses.update(
                base=base_loss if spec.start_from is not None else result.metrics.get("base_eval_loss"),
                candidate=result.metrics.get("eval_loss"))
        with job.step("evaluating the live model"):
            _ask_live(job, evidence, base, test_rows, plan)
        with job.step("logging to MLflow"):
            report = _report(job, evidence, len(test_rows))
            metrics = {**result.metrics, **report.metrics()}
            mlflow.log_metrics(metrics)
            evaluations = {name: metrics[key] for name, key in
                           (("test loss before", "base_eval_loss"), ("test loss after", "eval_loss"))
                           if key in metrics}
            curve = loss_curve(result.history, evaluations, job.dir / "loss_curve.png")
            mlflow.log_artifact(str(curve))
            if result.adapter_dir is not None:
                mlflow.log_artifacts(str(result.adapter_dir), "adapter")
            info = mlflow.transformers.log_model(
                {"model": result.model, "tokenizer": result.tokenizer}, name=MODEL_ARTIFACT,
                task="llm/v1/chat", model_card=_model_card(spec, base, metrics),
                pip_requirements=_pip_requirements())
    return {"metrics": metrics, "mlflow_run_id": run_id, "model_uri": info.model_uri,
            "experiment_id": experiment_id, "ignored_parameters": list(plan.ignored)}


def epochs_remark(epochs: list[dict[str, float]], best: float | None) -> str:
    """The report's line on the held-out loss after each epoch, and which epoch's model was kept."""
    losses = ", ".join(f"epoch {e['epoch']:g}: {e['eval_loss']:.4f}" for e in epochs)
    kept = f"; kept epoch {best:g} (lowest loss)" if best is not None else ""
    return f"held-out loss after each epoch: {losses}{kept}"


def _ref(model: Any) -> str:
    return f"{model.name}:{model.version}"


def _start_model(job: Job, start: Any) -> tuple[Any, Any]:
    """The registered fine-tune to train further (its merged weights and the tokenizer saved with it)."""
    from engine.chat_model import ChatModel
    from shared.platforms.local.endpoints import LocalEndpoints

    chat = ChatModel.load(LocalEndpoints(job.settings).model_dir(start), _ref(start))
    return chat.model.train(), chat.tokenizer


def _chat(model: Any, tokenizer: Any, name: str) -> Any:
    from engine.chat_model import ChatModel

    return ChatModel(model, tokenizer, name)


def _ask_live(job: Job, evidence: Evidence, base: str, test_rows: list[dict[str, Any]], plan: Any) -> None:
    """The current model of the run's project on the same test split (its endpoint: the project's)."""
    from engine.train.evaluate import ask_live, live_model
    from engine.train.training import held_out_loss
    from shared.platforms.port import PROJECT_TAG
    from shared.projects import ProjectNameError, endpoint_of

    try:
        endpoint = endpoint_of(job.settings, job.spec.tags.get(PROJECT_TAG, ""))
    except ProjectNameError:  # a job submitted before projects: the default project's endpoint
        endpoint = job.settings.endpoint_name
    live = live_model(job.settings, endpoint)
    if live is None:
        return
    work = job.dir / "live-eval"
    try:
        ask_live(evidence, live, base,
                 lambda model, tokenizer: held_out_loss(model, tokenizer, test_rows, plan, work))
    except Exception as exc:  # the comparison is worth having, not worth failing the fine-tune for
        log.warning("could not evaluate the live model %s: %s", live.name, exc, exc_info=True)
        evidence.notes["live"] = f"could not be evaluated: {type(exc).__name__}: {redact(str(exc))[:200]}"


def _report(job: Job, evidence: Evidence, test_rows: int) -> EvalReport:
    """Build the evaluation report and save it in the job's folder (where the status page reads it) and in
    the active MLflow run under `evaluation/`, beside the model and loss curve."""
    import mlflow

    from shared.evaluation import artifacts

    report = evidence.report(test_rows)
    title = f"Evaluation of {job.spec.display_name} (job {job.spec.name})"
    for path in artifacts.write(report, job.dir / EVALUATION_DIR, title):
        mlflow.log_artifact(str(path), artifacts.ARTIFACT_DIR)
    return report


def main(argv: list[str]) -> int:
    """Run the job in `argv[1]`; exit 0 when it completed, 1 when it failed (status.json says why)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The storage SDK logs every request and response at INFO; the job log is for the job.
    logging.getLogger("azure").setLevel(logging.WARNING)
    started = time.monotonic()
    job = Job(Path(argv[1]), Settings.from_env())
    job.report("Running", started_at=time.time())
    try:
        fields = run(job)
    except Exception as exc:
        message = str(exc) if isinstance(exc, JobStepFailed) else f"{type(exc).__name__}: {redact(str(exc))}"
        log.exception("job %s failed", job.spec.name)
        job.timings["total"] = round(time.monotonic() - started, 2)
        job.report("Failed", error=message)
        return 1
    job.timings["total"] = round(time.monotonic() - started, 2)
    job.report("Completed", **fields)
    return 0

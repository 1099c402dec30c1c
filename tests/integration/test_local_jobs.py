"""The local engine's jobs side: real Azurite, a real fine-tune in a child process, a real MLflow registry."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from engine.models.loading import load_base_model
from engine.train.training import fine_tune, plan_from_parameters
from shared.events import RUN_COMPLETED, RUN_STATUS_CHANGED, parse_run_event
from shared.platforms.local import mlflow_store
from shared.platforms.local.job_files import JOB_TAG, STATUS_FILE, write_json_atomic
from shared.platforms.local.jobs import PARAMETERS_TAG, LocalJobs
from shared.platforms.port import JobSpec, NotFoundError, PlatformError
from shared.settings import Settings
from shared.storage import blob_service, queue_client

pytestmark = pytest.mark.integration

TOPICS = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("Give me a tip for better sleep.", "Keep a regular bedtime and avoid screens late at night."),
    ("How do I sort a list in Python?", "Use sorted(items) or items.sort()."),
    ("Translate 'good morning' into Spanish.", "Buenos días."),
    ("Name a primary color.", "Red is a primary color."),
]


def chat_rows(n: int) -> list[dict[str, Any]]:
    """Ultrachat-shaped rows (prompt, prompt_id, messages), deterministic."""
    rows = []
    for i in range(n):
        question, answer = TOPICS[i % len(TOPICS)]
        prompt = f"{question} (#{i})"
        rows.append({"prompt": prompt, "prompt_id": f"p{i:04d}", "messages": [
            {"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]})
    return rows


def stage(settings: Settings, name: str, rows: list[dict[str, object]]) -> str:
    container = blob_service(settings.storage).get_container_client(settings.staged_container)
    if not container.exists():
        container.create_container()
    blob = container.get_blob_client(name)
    blob.upload_blob("\n".join(json.dumps(r) for r in rows).encode(), overwrite=True)
    return str(blob.url)


def events(settings: Settings, job: str) -> list[dict[str, object]]:
    """The job events of `job` on the queue (other jobs of the module share it)."""
    queue = queue_client(settings.storage, settings.job_event_queue)
    found = [json.loads(m.content) for m in queue.peek_messages(max_messages=32)]
    return [e for e in found if parse_run_event(e).job_name == job]


def wait_terminal(jobs: LocalJobs, name: str, timeout: float = 180) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if jobs.job_status(name).terminal:
            return time.monotonic() - started
        time.sleep(0.25)
    raise AssertionError(f"job {name} did not finish in {timeout} s; see its job.log")


def spec_for(settings: Settings, name: str, base_model: str = "tiny-random", rows: int = 40) -> JobSpec:
    data = chat_rows(rows)
    return JobSpec(
        name=name, run_id=f"run-{name}", display_name=name, base_model=base_model,
        train_uri=stage(settings, f"{name}/train.jsonl", data[4:]),
        test_uri=stage(settings, f"{name}/test.jsonl", data[:4]),
        parameters={"num_train_epochs": "2", "per_device_train_batch_size": "4", "learning_rate": "1e-2",
                    "apply_lora": "true", "merge_lora_weights": "true", "lora_r": "8", "lora_alpha": "16",
                    "logging_steps": "2", "apply_deepspeed": "true", "precision": "16"},
        tags={"autopilot-run-id": f"run-{name}", "team": "qa"},
    )


@pytest.fixture(scope="module")
def completed(azurite, tmp_path_factory, new_data_dir):
    """One real job run to completion, shared by the tests that read its outcome."""
    data_dir = new_data_dir(tmp_path_factory.mktemp("jobs-data"))
    settings = Settings.from_env({"AUTOPILOT_STORAGE": azurite.connection_string,
                                  "AUTOPILOT_DATA_DIR": str(data_dir),
                                  "STAGED_CONTAINER": "stjobs", "JOB_EVENT_QUEUE": "evjobs"})
    jobs = LocalJobs(settings)
    spec = spec_for(settings, "ft-demo-1")
    started = time.monotonic()
    first = jobs.submit(spec)
    wait_terminal(jobs, spec.name)
    seconds = time.monotonic() - started
    status = json.loads((data_dir / "jobs" / spec.name / STATUS_FILE).read_text())
    print(f"\nsubmit -> {jobs.job_status(spec.name).status} in {seconds:.1f} s; "
          f"child timings {status.get('timings')}")
    return settings, jobs, spec, first, seconds


def test_submitted_job_completes_with_metrics_and_azure_ml_events(completed):
    settings, jobs, spec, first, _ = completed
    assert first.status in ("Queued", "Running")
    state = jobs.job_status(spec.name)
    assert state.status == "Completed", state.error
    assert state.metrics["train_loss"] > 0 and state.metrics["eval_loss"] > 0

    received = [parse_run_event(e) for e in events(settings, spec.name)]
    assert [(e.event_type, e.job_status) for e in received] == [
        (RUN_STATUS_CHANGED, "Running"), (RUN_COMPLETED, "Completed")]
    assert all(e.experiment_name == spec.experiment for e in received)
    assert received[-1].job_tags == dict(spec.tags)


def test_training_lowers_the_test_loss_and_reports_it_in_the_job_status(completed):
    _, jobs, spec, _, _ = completed
    metrics = jobs.job_status(spec.name).metrics
    # Both losses come from the same trainer.evaluate() on the same test split: before and after training.
    assert metrics["eval_loss"] < metrics["base_eval_loss"] - 0.05, metrics
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["eval_loss"]))
    assert metrics["perplexity"] < metrics["base_perplexity"]
    assert metrics["train_tokens_per_second"] > 0


def test_the_mlflow_run_has_step_metrics_a_loss_curve_and_the_evaluation(completed):
    settings, _, spec, _, _ = completed
    status = json.loads((settings.data_dir / "jobs" / spec.name / STATUS_FILE).read_text())
    client = mlflow_store.use(settings.data_dir)
    run = client.get_run(status["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.data.tags[JOB_TAG] == spec.name
    assert run.data.metrics["eval_loss"] == pytest.approx(status["metrics"]["eval_loss"])
    assert "perplexity" in run.data.metrics and run.data.params["learning_rate"] == "0.01"
    # The spec chooses lora_r "8": a run's explicit choice beats the tiny model's own default of 16.
    assert run.data.params["lora_r"] == "8"

    # 2 epochs of 36 rows at batch 4 is 18 steps; logging every 2 steps gives 9 points per metric.
    for name in ("loss", "learning_rate", "tokens_per_second"):
        history = client.get_metric_history(run.info.run_id, name)
        assert len(history) == 9, name
        assert [m.step for m in history] == list(range(2, 19, 2))
    assert all(m.value > 0 for m in client.get_metric_history(run.info.run_id, "tokens_per_second"))
    rates = [m.value for m in client.get_metric_history(run.info.run_id, "learning_rate")]
    assert rates == sorted(rates, reverse=True), "the scheduler's decay is visible step by step"

    artifacts = [a.path for a in client.list_artifacts(run.info.run_id)]
    assert "loss_curve.png" in artifacts
    curve = Path(client.download_artifacts(run.info.run_id, "loss_curve.png"))
    assert curve.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and curve.stat().st_size > 5000


def test_loss_history_is_read_back_for_the_ops_page(completed):
    _, jobs, spec, _, _ = completed
    history = jobs.training_record(spec.name).loss_curve
    assert len(history) >= 2 and [step for step, _ in history] == sorted(step for step, _ in history)
    with pytest.raises(NotFoundError):
        jobs.training_record("no-such-job")


def test_the_job_log_shows_a_progress_bar(completed):
    settings, _, spec, _, _ = completed
    log = (settings.data_dir / "jobs" / spec.name / "job.log").read_text()
    assert "18/18" in log and "100%|" in log


def test_submitting_the_same_spec_again_starts_no_second_job(completed):
    settings, jobs, spec, _, _ = completed
    pid_before = (settings.data_dir / "jobs" / spec.name / "pid.json").read_text()
    again = jobs.submit(spec)
    assert again.status == "Completed"
    assert (settings.data_dir / "jobs" / spec.name / "pid.json").read_text() == pid_before
    assert len(events(settings, spec.name)) == 2


@pytest.fixture(scope="module")
def registered(completed):
    """The job's model registered first by two racing calls (a step delivered twice), then once more: every
    reference returned. Module-scoped, so whatever test runs first, the first registration is this race."""
    _, jobs, spec, _, _ = completed
    refs = []

    def register():
        refs.append(jobs.register(spec.name, "tiny-chat-ft", {"autopilot-run-id": spec.run_id}, "demo run"))

    threads = [threading.Thread(target=register) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    register()
    return refs


def test_register_twice_returns_one_version_with_tags_and_description(completed, registered):
    settings, _, spec, _, _ = completed
    refs = registered
    assert len(refs) == 3 and len(set(refs)) == 1 and refs[0].name == "tiny-chat-ft"

    client = mlflow_store.use(settings.data_dir)
    versions = client.search_model_versions("name = 'tiny-chat-ft'")
    assert len(versions) == 1
    version = client.get_model_version("tiny-chat-ft", refs[0].version)
    assert version.tags["autopilot-run-id"] == spec.run_id
    assert version.tags[JOB_TAG] == spec.name
    assert version.description == "demo run"
    # Lineage: what it was trained from and with, and the run that did it.
    assert json.loads(version.tags[PARAMETERS_TAG]) == dict(spec.parameters)
    assert version.tags["autopilot-base-model"] == "tiny-random"
    assert version.tags["autopilot-train-data"] == spec.train_uri.split("?")[0].rstrip("/")
    status = json.loads((settings.data_dir / "jobs" / spec.name / STATUS_FILE).read_text())
    assert version.tags["mlflow-run-id"] == status["mlflow_run_id"] == version.run_id
    eval_loss = float(version.tags["autopilot-eval-loss"])
    assert eval_loss == pytest.approx(status["metrics"]["eval_loss"], abs=1e-4)
    assert not any("sig=" in value or "AccountKey" in value for value in version.tags.values())


def test_registered_model_answers_chat_through_mlflow(completed, registered):
    import mlflow

    settings, jobs, spec, _, _ = completed
    ref = jobs.register(spec.name, "tiny-chat-ft", {"autopilot-run-id": spec.run_id})
    mlflow_store.use(settings.data_dir)
    model = mlflow.pyfunc.load_model(mlflow_store.model_version_uri(ref.name, ref.version))
    answer = model.predict({"messages": [{"role": "user", "content": "Name a primary color."}],
                            "max_tokens": 5})
    answer = answer[0] if isinstance(answer, list) else answer
    assert answer["object"] == "chat.completion"
    assert isinstance(answer["choices"][0]["message"]["content"], str)


@pytest.fixture(scope="module")
def continued(completed, registered):
    """A second job while the first job's model is live on the endpoint the run deploys to, trained further
    from that model (`start_from`): one job for the live comparison and the lineage alike."""
    from shared.platforms.local.endpoints import LocalEndpoints

    settings, jobs, _, _, _ = completed
    previous = registered[0]
    endpoints = LocalEndpoints(settings)
    endpoints.deploy(previous, settings.endpoint_name, "blue", {})
    endpoints.set_traffic(settings.endpoint_name, {"blue": 100})
    again = dataclasses.replace(spec_for(settings, "ft-continued"), start_from=previous,
                                lineage=("tiny-random", f"{previous.name}:{previous.version}"))
    try:
        jobs.submit(again)
        wait_terminal(jobs, again.name)
    finally:
        endpoints.delete_endpoint(settings.endpoint_name)
    return previous, again


def test_the_report_compares_base_candidate_and_the_model_the_endpoint_serves(completed, continued):
    _, jobs, spec, _, _ = completed
    first = jobs.training_record(spec.name).evaluation
    assert first is not None and [s.role for s in first.scores] == ["base", "candidate"], "nothing was live"
    assert first.score("base").name == "tiny-random" and first.answered == 4  # type: ignore[union-attr]

    ref, second = continued  # the first job's model was live while the second job ran
    state = jobs.job_status(second.name)
    assert state.status == "Completed", state.error
    report = jobs.training_record(second.name).evaluation
    assert report is not None
    live = report.score("live")
    assert live is not None and live.name == f"tiny-chat-ft:{ref.version}"
    # Same base model (same tokenizer), so its loss on this split is measured too, as the candidate's is.
    assert live.loss is not None and live.rouge_l is not None and not live.note
    assert state.metrics["live_eval_loss"] == pytest.approx(live.loss)
    assert all("live" in sample.answers for sample in report.samples)


def test_job_with_a_missing_base_model_fails_once_with_a_failed_event(settings):
    jobs = LocalJobs(settings)
    spec = spec_for(settings, "ft-missing-base", base_model=str(settings.data_dir / "no-such-model"), rows=8)
    # Fired twice at once, as a redelivered trigger would: one job, one child.
    states = []
    threads = [threading.Thread(target=lambda: states.append(jobs.submit(spec))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(states) == 2
    wait_terminal(jobs, spec.name)

    state = jobs.job_status(spec.name)
    assert state.status == "Failed"
    assert state.error and "no-such-model does not exist" in state.error and "BASE_MODEL" in state.error
    received = [parse_run_event(e) for e in events(settings, spec.name)]
    assert [e.job_status for e in received] == ["Running", "Failed"]
    assert received[-1].event_type == RUN_STATUS_CHANGED and received[-1].job_tags == dict(spec.tags)
    with pytest.raises(PlatformError, match="is Failed, not Completed"):
        jobs.register(spec.name, "tiny-chat-ft", {})


def test_child_that_died_without_a_result_reads_as_failed(settings):
    jobs = LocalJobs(settings)
    job_dir = settings.data_dir / "jobs" / "ft-crashed"
    job_dir.mkdir(parents=True)
    write_json_atomic(job_dir / STATUS_FILE, {"name": "ft-crashed", "status": "Running"})
    dead = subprocess.Popen(["true"])
    dead.wait()
    write_json_atomic(job_dir / "pid.json", {"pid": dead.pid, "start": None})

    state = jobs.job_status("ft-crashed")
    assert state.status == "Failed"
    assert state.error and "exited without reporting a result" in state.error


def test_unknown_job_is_not_found(settings):
    with pytest.raises(NotFoundError):
        LocalJobs(settings).job_status("ft-never-submitted")



def test_unmerged_lora_keeps_the_adapter_and_serves_a_merged_model(tmp_path):
    model, tokenizer = load_base_model("tiny-random", tmp_path / "models")
    plan = plan_from_parameters({"apply_lora": "true", "merge_lora_weights": "false", "max_steps": "2",
                                 "lora_r": "4"})
    rows = chat_rows(6)
    result = fine_tune(model, tokenizer, rows[2:], rows[:2], plan, tmp_path / "trainer")
    assert result.adapter_dir is not None and (result.adapter_dir / "adapter_config.json").exists()
    assert not hasattr(result.model, "peft_config")
    assert result.metrics["train_steps"] == 2 and result.metrics["eval_loss"] > 0


def test_a_start_from_live_job_trains_the_previous_fine_tune_further(completed, continued):
    """The job loads the registered fine-tune (its held-out loss before training is that model's), and the
    report still compares with the original base model and shows the lineage."""
    settings, jobs, spec, _, _ = completed
    previous, again = continued
    earlier = jobs.job_status(spec.name).metrics
    state = jobs.job_status(again.name)
    assert state.status == "Completed", state.error
    # Before training, the model scored exactly what the previous fine-tune scored on the same test split
    # (and what the live model, the same one, scored as the live comparison).
    assert "start_eval_loss" in state.metrics, state.metrics
    assert state.metrics["start_eval_loss"] == pytest.approx(earlier["eval_loss"], rel=1e-3)
    assert state.metrics["live_eval_loss"] == pytest.approx(earlier["eval_loss"], rel=1e-3)
    assert state.metrics["base_eval_loss"] == pytest.approx(earlier["base_eval_loss"], rel=1e-3)
    status = json.loads((settings.data_dir / "jobs" / again.name / STATUS_FILE).read_text())
    run = mlflow_store.use(settings.data_dir).get_run(status["mlflow_run_id"])
    assert run.data.params["start_from"] == f"tiny-chat-ft:{previous.version}"
    report = json.loads((settings.data_dir / "jobs" / again.name / "evaluation" / "eval_report.json")
                        .read_text())
    lineage = f"tiny-random → tiny-chat-ft:{previous.version} → ft-continued"
    assert any(lineage in note for note in report["notes"])
    assert any("kept epoch" in note for note in report["notes"]), "the loss of each epoch, and the one kept"

"""Run views and the status page, from ledger runs and job figures alone (no I/O); the endpoint view's idle
time comes from the sweep's own rule."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.idle import idle_since
from shared.ops.figures import duration, loss_curve_svg
from shared.ops.page import render_status_page
from shared.ops.views import JobFigures, endpoints_view, run_view
from shared.runs import Run, State, operator_actions
from tests.fakes.world import MemoryWorld

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def make_run(state: State, **changes: object) -> Run:
    history = tuple({"state": s, "at": (T0 + timedelta(seconds=10 * i)).isoformat()}
                    for i, s in enumerate(("received", "validated", "submitted", state.value)))
    base: dict[str, object] = dict(
        run_id="run-abc", state=state, content_sha256="f" * 64, upload="incoming/chat.jsonl",
        upload_etag="0x1", job_name="ftap-run-abc", model_name="ft-tiny-chat", model_version="3",
        endpoint="autopilot-chat", deployment="d-abc",
        rows=48, train_rows=45, test_rows=3, train_uri="http://x/staged/train.jsonl",
        job_url="https://ml.azure.com/runs/ftap-run-abc", base_model="Phi-4", endpoint_hours=0.5,
        hours_saved=359.5, history=history, alerts=("endpoint.torn_down#1",), created_at=T0,
        updated_at=T0 + timedelta(minutes=1))
    base.update(changes)
    return Run(**base)  # type: ignore[arg-type]


def test_a_run_view_carries_its_whole_lineage() -> None:
    job = JobFigures("Completed", "", "", {"train_loss": 2.25, "eval_loss": 2.5}, ((1, 3.0), (2, 2.5)))
    view = run_view(make_run(State.TORN_DOWN), job)
    assert view["upload"] == {"blob": "incoming/chat.jsonl", "etag": "0x1", "content_sha256": "f" * 64,
                              "forced": False}
    assert view["job"]["id"] == "ftap-run-abc" and view["job"]["url"].startswith("https://ml.azure.com")
    assert view["job"]["metrics"]["eval_loss"] == 2.5 and view["job"]["loss_curve"] == [[1, 3.0], [2, 2.5]]
    assert view["model"] == {"name": "ft-tiny-chat", "version": "3"}
    assert view["endpoint"]["deployment"] == "d-abc"
    assert view["costs"] == {"endpoint_hours": 0.5, "hours_saved": 359.5}
    assert view["dataset"] == {"rows": 48, "train_rows": 45, "test_rows": 3}
    assert view["actions"] == ["redeploy"] and view["links"]["redeploy"] == "/api/runs/run-abc/redeploy"
    assert view["created_at"] == T0.isoformat()


def test_actions_follow_the_state() -> None:
    assert operator_actions(make_run(State.LIVE)) == []
    assert operator_actions(make_run(State.ROLLED_BACK)) == ["redeploy"]
    assert operator_actions(make_run(State.FAILED)) == ["retry"]
    assert operator_actions(make_run(State.FAILED, train_uri="")) == []  # nothing staged to retry
    assert operator_actions(make_run(State.TORN_DOWN, model_name="")) == []
    assert run_view(make_run(State.FAILED, train_uri=""))["actions"] == []


def test_the_page_and_the_sweep_count_idle_time_the_same_way(tmp_path: Path) -> None:
    clock = [T0]
    world = MemoryWorld(tmp_path, now=lambda: clock[0], SMOKE_CONVERSATIONS="1")
    live = world.live_run()
    clock[0] = T0 + timedelta(minutes=40)
    scored_at = world.read_clock()  # the steps' polls moved the world's clock on a little
    world.platform.score(live.endpoint, {"input_data": {"input_string": [{"role": "user", "content": "hi"}]}})
    now = scored_at + timedelta(minutes=20)
    (view,) = endpoints_view(world.life, [world.get(live.run_id)], now)
    info = world.platform.get_endpoint(live.endpoint)
    assert info is not None
    since = idle_since(info, world.platform.endpoint_activity(live.endpoint))
    assert since == scored_at and view["idle_seconds"] == (now - since).total_seconds()
    assert view["teardown_in_seconds"] == (world.settings.idle_ttl - (now - since)).total_seconds()


def test_the_page_is_self_contained_and_shows_each_run() -> None:
    live = run_view(make_run(State.LIVE), JobFigures("Completed", metrics={"train_loss": 2.0},
                                                     loss_curve=((1, 3.0), (2, 2.0), (3, 1.5))))
    bad = run_view(make_run(State.FAILED, run_id="run-<b>", error="quota <exceeded>",
                            train_uri="http://x/t.jsonl"))
    page = render_status_page({
        "platform": "local", "generated_at": T0.isoformat(), "idle_ttl_seconds": 7200,
        "counts": {"live": 1, "failed": 1}, "runs": [live, bad],
        "endpoints": [{"name": "autopilot-chat", "model": "ft-tiny-chat:3", "run_id": "run-abc",
                       "traffic": {"d-abc": 100}, "idle_seconds": 65, "activity_known": True,
                       "last_request_at": None, "teardown_in_seconds": 7135}],
        "alerts": [{"at": T0.isoformat(), "run_id": "run-abc", "alert_class": "job.failed",
                    "severity": "error", "summary": "boom"}]})
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    # No CDN: nothing is loaded from elsewhere (a link to the job in Azure ML studio is fine).
    assert not re.search(r"""src=["']https?://""", page) and "<link" not in page and "@import" not in page
    assert 'data-state="live"' in page and "ft-tiny-chat:3" in page and "<polyline" in page
    assert "run-&lt;b&gt;" in page and "quota &lt;exceeded&gt;" in page and "run-<b>" not in page
    assert "1 min 5 s" in page and "1 h 58 min" in page  # idle for, teardown in
    assert "billed 30 min 0 s" in page and "h saved" not in page
    assert "POST /api/runs/run-&lt;b&gt;/retry" in page


def test_the_empty_page_says_what_to_do() -> None:
    page = render_status_page({"runs": [], "endpoints": [], "alerts": []})
    assert "autopilot drop FILE" in page and "nothing bills" in page


def test_figures() -> None:
    assert duration(None) == "—" and duration(42) == "42 s" and duration(3 * 86400 + 3600) == "3 d 1 h"
    assert loss_curve_svg([(1, 2.0)]) == ""  # one point is not a curve
    svg = loss_curve_svg([(1, 3.0), (5, 1.0)], eval_loss=2.0)
    points = re.search(r'points="([^"]+)"', svg)
    assert points and len(points.group(1).split()) == 2 and "eval 2.000" in svg


def test_the_page_shows_the_jobs_evaluation_report_with_answers_escaped() -> None:
    from shared.evaluation import build_report

    report = build_report(["How do I reset it?"], ["Hold the Home button."],
                          {"base": ["<b>No idea</b>"], "candidate": ["Hold the Home button."],
                           "live": ["Press reset."]},
                          {"base": 4.5, "candidate": 0.3, "live": None},
                          {"base": "SmolLM2-135M-Instruct", "candidate": "ft-new", "live": "ft-old:2"},
                          test_rows=8, max_new_tokens=64, notes={"live": "tuned from tiny-random"})
    job = JobFigures("Completed", "", "", report.metrics(), (), report.to_dict())
    view = run_view(make_run(State.LIVE), job)
    assert view["job"]["evaluation"]["scores"][1]["name"] == "ft-new"
    page = render_status_page({"runs": [view], "counts": {"live": 1}, "endpoints": [], "alerts": []})
    section = page.split("Evaluation on the test split", 1)[1]
    assert "base model" in section and "fine-tuned (this run)" in section and "live deployment" in section
    assert "&lt;b&gt;No idea&lt;/b&gt;" in section and "<b>No idea" not in section
    assert "tuned from tiny-random" in section and "Hold the Home button." in section
    assert run_view(make_run(State.LIVE), JobFigures("Completed"))["job"]["evaluation"] is None


def test_on_azure_ml_the_page_draws_the_logged_loss_and_says_what_the_pipeline_does_not_record() -> None:
    # The figures come from the port (training_record), read from the workspace's MLflow server over the wire.
    from shared.ops.views import JobCache
    from tests.fakes.azureml_world import build_world
    from tests.unit.test_azureml_submit import spec

    world = build_world()
    job = world.platform.submit(spec())
    world.wire.tracking.log_training(job.name, [2.41, 2.02, 1.83, 1.66, 1.61], [1.92, 1.74])
    world.wire.workspace.finish_job(job.name, "Completed")
    figures = JobCache().figures(world.platform, job.name)
    assert figures is not None and figures.status == "Completed"
    assert figures.loss_curve == ((10, 2.41), (20, 2.02), (30, 1.83), (40, 1.66), (50, 1.61))
    assert figures.validation_loss == ((20, 1.92), (40, 1.74)) and figures.evaluation is None
    assert "chat_completion_pipeline" in figures.missing["evaluation"]
    mlflow = [r for r in world.wire.transport.requests if "/api/2.0/mlflow/" in r.path]
    assert {r.path.rsplit("/api/2.0/mlflow/", 1)[1] for r in mlflow} == {
        "runs/get", "runs/search", "metrics/get-history"}
    assert world.wire.transport.denied == []  # within the roles infra/ grants

    run = make_run(State.LIVE, job_name=job.name)
    page = render_status_page({"generated_at": T0.isoformat(), "platform": "azureml", "counts": {},
                               "runs": [run_view(run, figures)], "endpoints": [], "alerts": []})
    assert "training loss over 5 logged steps" in page and "eval 1.740" in page
    assert "No evaluation here: Azure ML&#x27;s chat_completion_pipeline writes no evaluation" in page


def test_a_job_that_has_logged_nothing_yet_has_an_empty_curve_not_an_error() -> None:
    from tests.fakes.azureml_world import build_world
    from tests.unit.test_azureml_submit import spec

    world = build_world()
    job = world.platform.submit(spec())
    record = world.platform.training_record(job.name)
    assert record.loss_curve == () and record.validation_loss == () and record.missing


def test_a_kept_endpoint_shows_no_teardown_on_the_page(tmp_path: Path) -> None:
    from shared.platforms.port import KEEP_TAG

    clock = [T0]
    world = MemoryWorld(tmp_path, now=lambda: clock[0], SMOKE_CONVERSATIONS="1")
    live = world.live_run()
    with world.platform.lock:
        world.platform.endpoints[live.endpoint].tags[KEEP_TAG] = "true"
    now = world.read_clock() + world.settings.idle_ttl * 3  # long past the TTL: the sweep still keeps it
    (view,) = endpoints_view(world.life, [world.get(live.run_id)], now)
    assert view["idle_seconds"] > world.settings.idle_ttl.total_seconds()
    assert view["teardown_in_seconds"] is None
    world.life.on_sweep()
    assert world.platform.get_endpoint(live.endpoint).deployments  # type: ignore[union-attr]


def test_judge_keeps_an_endpoint_being_deployed_to() -> None:
    from shared.idle import judge
    from shared.platforms.port import MANAGED_TAG, EndpointInfo

    endpoint = EndpointInfo("ep-d", {MANAGED_TAG: "true"}, T0, {"blue": 100}, ("blue",))
    idle = judge(endpoint, None, T0 + timedelta(hours=3), timedelta(hours=2))
    assert idle.delete and idle.teardown_in == timedelta(0)
    busy = judge(endpoint, None, T0 + timedelta(hours=3), timedelta(hours=2), deploying=True)
    assert not busy.delete and busy.teardown_in is None and "in progress" in busy.reason
    young = judge(endpoint, None, T0 + timedelta(hours=1), timedelta(hours=2))
    assert young.teardown_in == timedelta(hours=1)

"""A stateful property test of the whole lifecycle on the in-memory world (issue 14).

Hypothesis drives random interleavings: uploads of 1 to 40 rows, job events completed / failed / duplicated /
lost, step messages delivered one at a time in queue order (delays honoured), handlers that raise or whose
worker dies between any two platform calls, several runs on each of two projects' endpoints, sweeps, and
"time passes" (STEP_TIMEOUT and more, with sweeps); manifests that wait for a file that never comes, are
refused, or are completed; operator retries and redeploys, which may fail again (a job failing, a deployment
ending Failed). After every step: no effect twice (jobs, models, deployments, alerts of one attempt), at most
one deployment taking traffic per endpoint, every run ended badly has a reason, every failure of every
attempt is one alert, and no run touches another project's endpoint, lease or alert; after time passes, no
run (or waiting manifest) is left outside a terminal state.

The example budget is fixed and derandomized (the same examples each run); a failure prints its steps.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from shared import ops
from shared.platforms.port import Provisioning
from shared.projects import endpoint_of, run_project
from shared.runs import State, can_redeploy, can_retry
from tests.fakes.world import SAMPLE, Killed, MemoryWorld

LINES = SAMPLE.read_bytes().splitlines(keepends=True)
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TERMINAL = {State.LIVE, State.ROLLED_BACK, State.TORN_DOWN, State.SUPERSEDED, State.FAILED, State.REJECTED,
            State.DUPLICATE, State.CANCELED, State.UNHEALTHY, State.ARRIVED}
ENDED_BADLY = {State.ROLLED_BACK, State.FAILED, State.SUPERSEDED, State.REJECTED}
# Platform calls a fault can hit (job_status is read by the reconciler too, whose failure alerts apart).
CALLS = ["submit", "register", "begin_deployment", "deployment_status", "score", "set_traffic",
         "delete_deployment"]
# Alerts about something other than a run ending badly (an outage, a teardown, a warning).
# Two projects: the default (files at the container's root) and `sales` (files under sales/).
PROJECT_FOLDERS = ["", "sales/"]
NOT_AN_END = {"endpoint.unhealthy", "endpoint.torn_down", "deploy.cleanup_failed",
              "sweep.activity_unavailable", "sweep.failed", "reconcile.failed", "job.canceled"}


class Lifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="autopilot-prop-"))
        self.world = MemoryWorld(self.dir, now=lambda: START, SMOKE_CONVERSATIONS="2", MANIFEST_WAIT="30m")
        self.uploads = 0

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(rows=st.integers(1, 40), offset=st.integers(0, 8), folder=st.sampled_from(PROJECT_FOLDERS))
    def upload(self, rows: int, offset: int, folder: str) -> None:
        """An upload to the default project (the container's root) or to another project's folder."""
        self.uploads += 1
        data = b"".join(LINES[offset:offset + rows])
        self.world.life.on_upload(self.world.drop(f"{folder}u{self.uploads}.jsonl", data))

    @rule(kind=st.sampled_from(["waits", "refused", "completed", "never_completed"]),
          rows=st.integers(12, 40))
    def manifest(self, kind: str, rows: int) -> None:
        """A manifest: for a file that never comes, refused (its data comes anyway), or completed by its data
        (with a test file that comes, or never does)."""
        self.uploads += 1
        n = self.uploads
        doc: dict[str, object] = {"data": f"m{n}.jsonl"}
        if kind == "refused":
            doc["epochs"] = 0
        if kind in ("completed", "never_completed"):
            doc["test"] = f"m{n}-test.jsonl"
        self.world.life.on_upload(self.world.drop(f"m{n}.manifest.json", json.dumps(doc).encode()))
        if kind != "waits":
            self.world.life.on_upload(self.world.drop(f"m{n}.jsonl", b"".join(LINES[:rows])))
        if kind == "completed":
            self.world.life.on_upload(self.world.drop(f"m{n}-test.jsonl", b"".join(LINES[-4:])))

    @rule(data=st.data())
    def operator_retries(self, data: st.DataObject) -> None:
        """An operator retries a failed run (its new job may fail again)."""
        failed = [r for r in self.world.ledger.all() if can_retry(r)]
        if failed:
            with contextlib.suppress(ops.ActionRefused):
                ops.retry(self.world.life, data.draw(st.sampled_from(failed)).run_id)

    @rule(data=st.data(), fails=st.booleans())
    def operator_redeploys(self, data: st.DataObject, fails: bool) -> None:
        """An operator redeploys a torn-down, rolled-back or superseded run; its deployment may fail again."""
        ended = [r for r in self.world.ledger.all() if can_redeploy(r)]
        if ended:
            if fails:
                self.world.platform.script_deployment(Provisioning.FAILED, error="OutOfQuota: injected")
            with contextlib.suppress(ops.ActionRefused):
                ops.redeploy(self.world.life, data.draw(st.sampled_from(ended)).run_id)

    @rule(data=st.data(), status=st.sampled_from(["Completed", "Failed"]),
          delivery=st.sampled_from(["once", "twice", "lost"]))
    def job_ends(self, data: st.DataObject, status: str, delivery: str) -> None:
        running = [r for r in self.world.ledger.all() if r.state in (State.SUBMITTED, State.RUNNING)
                   and self.world.platform.jobs[r.job_name].status not in ("Completed", "Failed")]
        if not running:
            return
        run = data.draw(st.sampled_from(running))
        self.world.platform.finish(run.job_name, status)
        for _ in range({"once": 1, "twice": 2, "lost": 0}[delivery]):
            self.world.life.on_job_event(self.world.event(run, status))

    @rule(count=st.integers(1, 6))
    def deliver(self, count: int) -> None:
        """The host runs the next `count` step messages, one at a time, the clock moving to delayed ones."""
        world = self.world
        for _ in range(count):
            batch = [(world.step_host, d) for d in world.step_host.receive(1)]
            batch = batch or [(world.poison_host, d) for d in world.poison_host.receive(1)]
            if not batch:
                later = [t for t in (world.steps.next_visible_at(), world.poison.next_visible_at()) if t]
                if not later:
                    return
                ahead = max(min(later) - world.read_clock(), timedelta(0))
                world.skipped += ahead + timedelta(milliseconds=1)
                continue
            host, delivery = batch[0]
            with contextlib.suppress(Killed):
                host.deliver(delivery)

    @rule(call=st.sampled_from(CALLS), how=st.sampled_from(["raises", "dies"]))
    def crash(self, call: str, how: str) -> None:
        """The next handler to make this platform call fails: an exception, or its worker dying after it."""
        if how == "raises":
            self.world.platform.fail(call, error=RuntimeError(f"injected crash in {call}"))  # type: ignore[arg-type]
        else:
            def die(_: str) -> None:
                raise Killed()
            self.world.platform.after(call, die)

    @rule()
    def sweep(self) -> None:
        with contextlib.suppress(Killed):  # its worker may die too (a hook on deployment_status, say)
            self.world.life.on_sweep()

    @rule(minutes=st.integers(1, 20))
    def wait(self, minutes: int) -> None:
        self.world.skipped += timedelta(minutes=minutes)

    @precondition(lambda self: self.uploads > 0)
    @rule()
    def time_passes(self) -> None:
        """Every job ends (its event lost); STEP_TIMEOUT passes a few times, a sweep each time, the queue runs
        dry: every run has reached a terminal state."""
        world = self.world
        world.platform.faults.clear()
        world.platform.hooks.clear()
        for _ in range(4):
            for job in list(world.platform.jobs):  # submitted by now, however late
                if world.platform.jobs[job].status not in ("Completed", "Failed"):
                    world.platform.finish(job)
            world.skipped += world.settings.step_timeout + timedelta(minutes=1)
            world.life.on_sweep()
            world.drain(limit=5000)
        stuck = {r.run_id: r.state for r in world.ledger.all() if r.state not in TERMINAL}
        assert stuck == {}, stuck

    @invariant()
    def no_effect_twice(self) -> None:
        platform = self.world.platform
        # One deployment per deploy: the first, and each redeploy the operator asked for.
        deploys = {(r.endpoint, r.deployment): 1 + r.redeploys
                   for r in self.world.ledger.all() if r.deployment}
        assert [k for k, n in platform.deployments_made.items() if n > deploys.get(k, 1)] == []
        assert platform.effects["submit"] == len(platform.jobs)
        assert platform.effects["register"] == len(platform.models)
        alerts = self._alerts()
        repeated = [k for k, n in Counter(a["id"] for a in alerts).items() if n > 1]  # one per attempt
        assert repeated == [], repeated

    @invariant()
    def one_deployment_serves_each_endpoint(self) -> None:
        for name, endpoint in self.world.platform.endpoints.items():
            serving = [d for d, share in endpoint.traffic.items() if share]
            assert len(serving) <= 1, (name, endpoint.traffic)

    @invariant()
    def every_failure_of_every_attempt_is_one_alert(self) -> None:
        sent = Counter(a["run_id"] for a in self._alerts() if a["alert_class"] not in NOT_AN_END)
        for run in self.world.ledger.all():
            if run.state in ENDED_BADLY:
                assert run.error or run.errors, run
            failures = sum(entry.get("state") in ENDED_BADLY for entry in run.history)
            assert sent[run.run_id] == failures, (run.run_id, run.state, run.error, run.history,
                                                  [a for a in self._alerts() if a["run_id"] == run.run_id])

    @invariant()
    def no_cross_talk_between_projects(self) -> None:
        """A run deploys only to its own project's endpoint, holds only its lease, and its alerts name it."""
        settings = self.world.settings
        runs = {r.run_id: r for r in self.world.ledger.all()}
        project_of_deployment: dict[tuple[str, str], str] = {}
        for run in runs.values():
            project = run_project(settings, run)
            if run.endpoint:
                assert run.endpoint == endpoint_of(settings, project), (run.run_id, project, run.endpoint)
                project_of_deployment[(run.endpoint, run.deployment)] = project
            lease = self.world.ledger.endpoints.get(run.endpoint) if run.endpoint else None
            if lease is not None and lease.holder in runs:
                holder = runs[lease.holder]
                assert endpoint_of(settings, run_project(settings, holder)) == run.endpoint, (lease, holder)
        for (endpoint, deployment) in self.world.platform.deployments_made:
            owner = project_of_deployment.get((endpoint, deployment))
            assert owner is None or endpoint_of(settings, owner) == endpoint, (endpoint, deployment, owner)
        for alert in self._alerts():
            run = runs.get(alert["run_id"])
            if run is not None and "project" in alert["details"]:
                assert alert["details"]["project"] == run_project(settings, run), (alert, run.run_id)

    @invariant()
    def live_runs_serve(self) -> None:
        for run in self.world.ledger.find(state=State.LIVE):
            endpoint = self.world.platform.endpoints.get(run.endpoint)
            if endpoint is not None and any(endpoint.traffic.values()):
                assert endpoint.traffic.get(run.deployment) == 100, (run.run_id, endpoint.traffic)

    def _alerts(self) -> list[dict[str, str]]:
        path = self.world.settings.data_dir / "alerts.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


Lifecycle.TestCase.settings = settings(max_examples=80, stateful_step_count=30, deadline=None,
                                       derandomize=True, print_blob=True,
                                       suppress_health_check=[HealthCheck.too_slow])
test_lifecycle_interleavings = Lifecycle.TestCase

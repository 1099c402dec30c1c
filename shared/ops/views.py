"""What ops people see of each run, as plain JSON-ready dicts: lineage, timeline, job figures, costs, alerts.

The API, the status page and `autopilot status --json` all serve the same overview, so what a script reads
is what a person sees.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.idle import asleep, idle_since, judge
from shared.platforms.port import MANAGED_TAG, RUN_TAG, JobState, Platform, PlatformError
from shared.projects import ProjectView, project_views, run_project
from shared.runs import SERVING, Run, State, operator_actions

if TYPE_CHECKING:
    from shared.lifecycle import Lifecycle

log = logging.getLogger(__name__)

DATASET_FIELDS = ("rows", "train_rows", "test_rows", "test_in_train", "estimated_tokens", "error_count",
                  "quarantined_to")
COST_FIELDS = ("endpoint_hours", "idle_hours", "hours_saved", "cost_reference_hours")
# Jobs are looked up for the newest runs only: on Azure ML each lookup is a remote call.
JOB_LOOKUPS = 25
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class JobFigures:
    """What the platform says about a run's job: status, link, scalar metrics, loss per step, validation loss,
    eval report, and the figures its platform does not record (with why)."""

    status: str = ""
    url: str = ""
    error: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)
    loss_curve: tuple[tuple[int, float], ...] = ()
    evaluation: Mapping[str, Any] | None = None
    validation_loss: tuple[tuple[int, float], ...] = ()
    missing: Mapping[str, str] = field(default_factory=dict)


class JobCache:
    """Figures of finished jobs never change, so each is read from its platform once per process."""

    def __init__(self) -> None:
        self._done: weakref.WeakKeyDictionary[Any, dict[str, JobFigures]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def figures(self, platform: Platform, job_name: str) -> JobFigures | None:
        with self._lock:
            known = self._done.get(platform, {}).get(job_name)
        if known is not None:
            return known
        try:
            state: JobState = platform.job_status(job_name)
            record = platform.training_record(job_name)
        except PlatformError as exc:
            log.warning("could not read job %s for the overview: %s", job_name, exc)
            return None
        report = record.evaluation
        figures = JobFigures(state.status, state.studio_url or "", state.error or "", dict(state.metrics),
                             record.loss_curve, report.to_dict() if report else None, record.validation_loss,
                             dict(record.missing))
        if state.terminal:
            with self._lock:
                self._done.setdefault(platform, {})[job_name] = figures
        return figures


JOBS = JobCache()


def run_view(run: Run, job: JobFigures | None = None, base_path: str = "/api") -> dict[str, Any]:
    """One run with its lineage: upload → content hash → job → model → endpoint, plus timeline and costs."""
    actions = operator_actions(run)
    return {
        "run_id": run.run_id,
        "state": run.state.value,
        "upload": {"blob": run.upload, "etag": run.upload_etag, "content_sha256": run.content_sha256,
                   "forced": run.forced},
        "dataset": _known(run, DATASET_FIELDS),
        # The screening policy the upload was scanned under and what it found, by kind (never a value).
        "screening": {"policy": dict(run.screening), "found": dict(run.sensitive)} if run.screening else None,
        "job": None if not run.job_name else {
            "id": run.job_name, "url": run.job_url or (job.url if job else ""), "attempt": run.attempt,
            "status": job.status if job else None, "error": job.error if job else None,
            "metrics": dict(job.metrics) if job else {},
            "loss_curve": [list(point) for point in job.loss_curve] if job else [],
            "validation_loss": [list(point) for point in job.validation_loss] if job else [],
            "evaluation": dict(job.evaluation) if job and job.evaluation else None,
            # What the platform's job does not record, and why: the page says so instead of a gap.
            "not_recorded": dict(job.missing) if job else {}},
        "model": {"name": run.model_name, "version": run.model_version} if run.model_name else None,
        "endpoint": {"name": run.endpoint, "deployment": run.deployment, "scoring_uri": run.scoring_uri,
                     "provisioning": run.provisioning, "polls": run.polls,
                     "deploy_started_at": _iso(run.deploy_started_at)} if run.endpoint else None,
        "base_model": run.base_model,
        "wakes": run.wakes,
        # The models this run's comes from (base model → the live fine-tune it trained on from), if any.
        "started_from": run.started_from,
        "lineage": run.lineage,
        "error": run.error,
        "waiting": waiting_text(run),
        "created_at": _iso(run.created_at),
        "updated_at": _iso(run.updated_at),
        "history": [dict(entry) for entry in run.history],
        "alerts": list(run.alerts),
        "costs": {**_known(run, COST_FIELDS), **({"teardowns": run.teardowns} if run.teardowns else {}),
                  **({"wakes": run.wakes} if run.wakes else {}),
                  # Asleep (nothing billing) since then: what the page counts as hours not billed.
                  **({"asleep_since": _iso(run.torn_down_at)} if run.state == State.TORN_DOWN
                     and run.torn_down_at else {})},
        "actions": actions,
        "links": {"self": f"{base_path}/runs/{run.run_id}",
                  **{action: f"{base_path}/runs/{run.run_id}/{action}" for action in actions}},
    }


def waiting_text(run: Run) -> str:
    """What a waiting manifest waits for, and since when ('' for anything else)."""
    if run.state != State.WAITING:
        return ""
    since = f" since {run.created_at:%Y-%m-%d %H:%M:%S} UTC" if run.created_at else ""
    return f"waiting for {', '.join(run.waiting_for)}{since}"


def _known(run: Run, names: Sequence[str]) -> dict[str, Any]:
    """The named fields the run has a value for (a count of 0 is a value; an unset one is not)."""
    return {name: value for name in names if (value := getattr(run, name)) not in (None, "")}


def sorted_runs(runs: Iterable[Run]) -> list[Run]:
    """Newest first."""
    return sorted(runs, key=lambda r: r.created_at or r.updated_at or _EPOCH,
                  reverse=True)


def run_document(life: Lifecycle, run: Run, base_path: str = "/api") -> dict[str, Any]:
    """One run for GET /api/runs/{id}, with its job's figures read from the platform."""
    job = JOBS.figures(life.platform, run.job_name) if run.job_name else None
    return {**run_view(run, job, base_path), "project": run_project(life.ctx.settings, run)}


def overview(life: Lifecycle, *, now: datetime | None = None, base_path: str = "/api",
             alerts_limit: int = 20, project: str | None = None) -> dict[str, Any]:
    """Everything the status page shows: projects at a glance, runs (newest first), live endpoints with
    idle times, alerts; `project`: that project's only."""
    now = now or life.ledger.now()
    settings = life.ctx.settings
    every = list(life.ledger.all())
    projects = [p for p in project_views(settings, every) if project in (None, p.name)]
    runs = sorted_runs(r for r in every if project in (None, run_project(settings, r)))
    views = []
    for index, run in enumerate(runs):
        job = JOBS.figures(life.platform, run.job_name) if run.job_name and index < JOB_LOOKUPS else None
        view = {**run_view(run, job, base_path), "project": run_project(settings, run)}
        if run.state == State.TORN_DOWN and run.torn_down_at:  # asleep this long: nothing billed meanwhile
            view["costs"]["asleep_hours"] = round((now - run.torn_down_at).total_seconds() / 3600, 4)
        views.append(view)
    endpoints = {p.endpoint for p in projects}
    return {
        "generated_at": now.isoformat(),
        "platform": life.ctx.settings.platform,
        "project": project,
        "projects": [project_summary(p) for p in projects],
        "idle_ttl_seconds": life.ctx.settings.idle_ttl.total_seconds(),
        "counts": _counts(runs),
        "runs": views,
        "endpoints": [e for e in endpoints_view(life, runs, now)
                      if project is None or e["name"] in endpoints],
        "alerts": recent_alerts(life, runs, alerts_limit),
    }


def project_summary(view: ProjectView) -> dict[str, Any]:
    """One project at a glance: live, asleep, training, failing or never deployed; its live model; what its
    deployments billed (hours, from the teardowns recorded so far)."""
    billed = [r.endpoint_hours for r in view.runs if r.endpoint_hours is not None]
    return {"name": view.name, "endpoint": view.endpoint, "state": view.state,
            "live_version": view.live_version or None, "training": view.training, "runs": len(view.runs),
            "billed_hours": round(sum(billed), 4) if billed else None}


def endpoints_view(life: Lifecycle, runs: Sequence[Run], now: datetime) -> list[dict[str, Any]]:
    """Our awake endpoints with their idle time and when the sweep would put them to sleep."""
    ttl = life.ctx.settings.idle_ttl
    live = {r.endpoint: r for r in runs if r.state in SERVING}  # an unhealthy run still holds its endpoint
    try:
        # An asleep endpoint (no deployment) neither serves nor bills: its project's row says it is asleep.
        endpoints = [e for e in life.platform.list_endpoints()
                     if e.tags.get(MANAGED_TAG) == "true" and not asleep(e)]
    except PlatformError as exc:
        log.warning("could not list endpoints for the overview: %s", exc)
        return []
    views = []
    for endpoint in endpoints:
        try:
            last_request = life.platform.endpoint_activity(endpoint.name)
            known = True
        except PlatformError:
            last_request, known = None, False
        since = idle_since(endpoint, last_request) if known else None
        idle = now - since if since is not None else None
        run = live.get(endpoint.name)
        views.append({
            "name": endpoint.name, "deployments": list(endpoint.deployments),
            "traffic": dict(endpoint.traffic),
            "scoring_uri": endpoint.scoring_uri or "",
            "run_id": run.run_id if run else endpoint.tags.get(RUN_TAG, ""),
            "model": f"{run.model_name}:{run.model_version}" if run else "",
            "last_request_at": _iso(last_request), "idle_seconds": _seconds(idle),
            "teardown_in_seconds": _seconds(judge(endpoint, last_request, now, _ttl(run, ttl),
                                                  life.ctx.settings.endpoint_delete_after).teardown_in)
            if known else None,
            "activity_known": known,
            # The sweep's last health read: "unhealthy" until a redeploy (the run's error says why).
            "health": "unhealthy" if run and run.state == State.UNHEALTHY else "ok" if run else "",
        })
    return views


def _ttl(run: Run | None, default: timedelta) -> timedelta:
    """The idle TTL of the endpoint's project (its project.json's, recorded on the serving run)."""
    return timedelta(seconds=run.idle_ttl_seconds) if run and run.idle_ttl_seconds else default


def recent_alerts(life: Lifecycle, runs: Sequence[Run], limit: int) -> list[dict[str, Any]]:
    """Newest alerts first: from the local alert file when there is one, else the classes the ledger keeps."""
    kept = life.ctx.alerts.recent(limit if not runs else None)
    if kept is not None:
        ids = {r.run_id for r in runs}  # the runs shown (one project's, when the view is of one project)
        shown = [a for a in kept if a.get("run_id") in ids or not runs][:limit]
        return [{k: a.get(k) for k in ("at", "run_id", "alert_class", "severity", "summary")} for a in shown]
    # On Azure alerts leave through Event Grid; the ledger still says which were sent for which run.
    from_ledger = [{"at": _iso(r.updated_at), "run_id": r.run_id, "alert_class": c, "severity": "",
                    "summary": ""} for r in runs for c in r.alerts]
    return sorted(from_ledger, key=lambda a: a["at"] or "", reverse=True)[:limit]


def _counts(runs: Iterable[Run]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.state.value] = counts.get(run.state.value, 0) + 1
    return counts


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _seconds(span: timedelta | None) -> float | None:
    return round(span.total_seconds(), 1) if span is not None else None

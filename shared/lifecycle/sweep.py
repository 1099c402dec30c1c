"""on_sweep: stop the meter on idle endpoints, and never take down one that someone is using.

An idle endpoint is put to sleep when nobody has scored it for longer than IDLE_TTL, counting from the
later of its last request (the platform's, or the front door's) and its newest deployment (so a fresh
deployment gets a grace period): its deployments, which bill, are deleted; the endpoint, its URL and its keys
stay, and the front door's first request wakes the model again. An endpoint asleep for longer than
ENDPOINT_DELETE_AFTER is deleted. Only endpoints
tagged as ours are looked at; a keep tag exempts one; missing activity data is never read as "idle"; a
request that arrives while the sweep decides wins; SWEEP_DRY_RUN reports without deleting; at most
SWEEP_MAX_DELETIONS endpoints go per sweep, the longest idle first. The decision itself (idle_since, judge,
select) lives in shared/idle.py, where the status page reads it too.

Before that, each live run's deployment gets its health check (shared/lifecycle/health.py). An unhealthy
run still holds its endpoint for the idle rules (it bills on Azure all the same).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta

from shared.alerts import Alert
from shared.idle import IdleVerdict, asleep, judge, select
from shared.lifecycle.context import Context, alert_project, log
from shared.lifecycle.health import advance_from, check_health
from shared.lifecycle.outcome import Outcome
from shared.ops.figures import duration
from shared.platforms.port import MANAGED_TAG, EndpointInfo, NotFoundError, PlatformError
from shared.runs import SERVING, Run, State


@dataclass
class SweepReport:
    """What one sweep did: runs reconciled, then endpoint names (with a reason where kept) by outcome."""

    reconciled: list[Outcome] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # put to sleep: their deployments deleted
    endpoints_deleted: list[str] = field(default_factory=list)  # asleep past ENDPOINT_DELETE_AFTER
    would_delete: list[str] = field(default_factory=list)  # SWEEP_DRY_RUN
    deferred: list[str] = field(default_factory=list)  # over SWEEP_MAX_DELETIONS: the next sweep's
    kept: list[str] = field(default_factory=list)
    activity_unknown: list[str] = field(default_factory=list)
    request_won: list[str] = field(default_factory=list)  # a request arrived while the sweep decided
    gone: list[str] = field(default_factory=list)  # deleted by someone else meanwhile
    failed: list[str] = field(default_factory=list)
    unhealthy: list[str] = field(default_factory=list)  # endpoint/deployment found not answering this sweep
    recovered: list[str] = field(default_factory=list)  # an unhealthy one that answers again on its own

    def summary(self) -> dict[str, list[str]]:
        """The non-empty outcomes, for the log."""
        return {f.name: [str(entry) for entry in getattr(self, f.name)]
                for f in fields(self) if getattr(self, f.name)}


@dataclass(frozen=True)
class Candidate:
    """An endpoint judged idle, with the activity reading the verdict rests on."""

    endpoint: EndpointInfo
    last_request: datetime | None
    verdict: IdleVerdict


def on_sweep(ctx: Context, now: datetime | None = None, report: SweepReport | None = None) -> SweepReport:
    """Tear down idle managed endpoints; `report` (a new one by default) says what happened to each."""
    now = now or ctx.ledger.now()
    report = report or SweepReport()
    candidates: dict[str, Candidate] = {}
    listed = ctx.call(ctx.platform.list_endpoints)
    _finish_teardowns(ctx, {e.name: set(e.deployments) for e in listed}, now, report)
    for endpoint in listed:
        if endpoint.tags.get(MANAGED_TAG) != "true":
            continue  # not ours: not read, not reported, never touched
        try:
            check_health(ctx, endpoint.name, report.unhealthy, report.recovered)
        except Exception as exc:  # a health read gone wrong must not keep the endpoint from its idle rules
            _endpoint_failed(ctx, endpoint.name, exc, report)
        try:
            candidate = _judge(ctx, endpoint, now, report)
        except Exception as exc:  # one bad endpoint must not keep the others from being swept
            _endpoint_failed(ctx, endpoint.name, exc, report)
            continue
        if candidate is not None:
            candidates[endpoint.name] = candidate

    chosen, deferred = select((c.verdict for c in candidates.values()), ctx.settings.sweep_max_deletions)
    report.deferred = [v.endpoint for v in deferred]
    if deferred:
        log.warning("sweep: %d idle endpoints over SWEEP_MAX_DELETIONS=%d wait for the next sweep: %s",
                    len(deferred), ctx.settings.sweep_max_deletions, ", ".join(report.deferred))
    for verdict in chosen:
        if ctx.settings.sweep_dry_run:
            log.info("sweep (dry run): would delete %s, %s", verdict.endpoint, verdict.reason)
            report.would_delete.append(verdict.endpoint)
            continue
        try:
            outcome, entry = _tear_down(ctx, candidates[verdict.endpoint], now)
        except Exception as exc:
            _endpoint_failed(ctx, verdict.endpoint, exc, report)
            continue
        getattr(report, outcome).append(entry)
    log.info("sweep at %s: %s", now.isoformat(), report.summary())
    return report


def _judge(ctx: Context, endpoint: EndpointInfo, now: datetime, report: SweepReport) -> Candidate | None:
    """The endpoint as a candidate for teardown, or None (kept, gone, or its activity unknown: reported)."""
    try:
        last = _last_request(ctx, endpoint.name)
    except NotFoundError:
        return None  # deleted since it was listed
    except PlatformError as exc:
        _activity_unknown(ctx, endpoint.name, exc, report)
        return None
    verdict = judge(endpoint, last, now, idle_ttl(ctx, endpoint.name), ctx.settings.endpoint_delete_after)
    if verdict.delete and _deploy_in_progress(ctx, endpoint.name, now):  # the ledger, only when it matters
        verdict = judge(endpoint, last, now, idle_ttl(ctx, endpoint.name), ctx.settings.endpoint_delete_after,
                        deploying=True)
    if not verdict.delete:
        report.kept.append(f"{endpoint.name} ({verdict.reason})")
        return None
    return Candidate(endpoint, last, verdict)


def idle_ttl(ctx: Context, endpoint: str) -> timedelta:
    """How long the endpoint may sit idle: its project's `idle_ttl` (project.json, recorded on the run that
    serves it), else IDLE_TTL."""
    serving = ctx.ledger.find(state=SERVING, endpoint=endpoint)
    chosen = [r.idle_ttl_seconds for r in serving if r.idle_ttl_seconds]
    return timedelta(seconds=chosen[0]) if chosen else ctx.settings.idle_ttl


def _endpoint_failed(ctx: Context, endpoint: str, exc: Exception, report: SweepReport) -> None:
    log.exception("sweep: endpoint %s failed; the sweep goes on with the others", endpoint)
    report.failed.append(endpoint)
    try:
        _warn(ctx, endpoint, "sweep.failed", f"the sweep could not handle endpoint {endpoint} "
              f"({type(exc).__name__}: {str(exc)[:300]}); it is kept and may keep billing")
    except Exception:  # the ledger may be what is broken; the log has it
        log.exception("sweep: could not alert about endpoint %s", endpoint)


def _tear_down(ctx: Context, candidate: Candidate, now: datetime) -> tuple[str, str]:
    """Re-read the endpoint right before deleting it; a request (or a deployment) since the decision wins.

    Returns the report key and entry. What remains is the platform's own window between this re-read and
    the delete call, a few hundred milliseconds against a TTL of hours.
    """
    name = candidate.endpoint.name
    try:
        fresh = ctx.call(ctx.platform.get_endpoint, name)
        latest = _last_request(ctx, name) if fresh is not None else None
    except NotFoundError:
        fresh = None
    except PlatformError as exc:
        _activity_unknown(ctx, name, exc, None)
        return "activity_unknown", name
    if fresh is None:
        log.info("sweep: %s was deleted by someone else meanwhile", name)
        return "gone", name
    previous = candidate.last_request
    if latest is not None and (previous is None or latest > previous):
        log.info("sweep: keeping %s, a request arrived at %s while the sweep decided", name, latest)
        return "request_won", name
    verdict = judge(fresh, latest, now, idle_ttl(ctx, name), ctx.settings.endpoint_delete_after)
    if not verdict.delete:
        log.info("sweep: keeping %s, it changed while the sweep decided: %s", name, verdict.reason)
        return "kept", f"{name} ({verdict.reason}, since the decision)"
    if asleep(fresh):
        return _delete_asleep(ctx, fresh, verdict)
    try:
        _put_to_sleep(ctx, fresh)
    except PlatformError as exc:
        log.error("sweep: could not delete %s: %s", name, exc)
        _warn(ctx, name, "sweep.delete_failed",
              f"the sweep could not delete idle endpoint {name}, which keeps billing: {str(exc)[:300]}")
        return "failed", name
    _record_teardown(ctx, fresh, verdict, now)
    return "deleted", name


def _finish_teardowns(ctx: Context, existing: Mapping[str, set[str]], now: datetime,
                      report: SweepReport) -> None:
    """Runs still serving on a deployment (or an endpoint) that no longer exists are recorded torn down, with
    one alert each.

    A sweep deletes first and records after; one stopped in between (the host's timeout) leaves runs live on
    a deployment that is gone, and this is where the next sweep finishes it (so does a deletion by hand).
    What it was idle for is not known any more: only the endpoint-hours are recorded.
    """
    for run in ctx.ledger.find(state=SERVING):
        if not run.endpoint:
            continue
        deployments = existing.get(run.endpoint)
        if deployments is not None and (run.deployment in deployments if run.deployment else deployments):
            continue
        teardowns = run.teardowns + 1
        since = _deployed_at(run)
        gone = f"deployment {run.endpoint}/{run.deployment} no longer exists"
        down = advance_from(ctx, run, SERVING, State.TORN_DOWN, gone,
                        torn_down_at=now, teardowns=teardowns,
                        **({"endpoint_hours": _hours(now - since)} if since else {}))
        if down is None:
            continue
        report.gone.append(run.endpoint)
        if ctx.ledger.mark_alerted(down, f"endpoint.torn_down#{teardowns}") is not None:
            ctx.alerts.send(Alert(down.run_id, "endpoint.torn_down", "info",
                                  f"{gone} (deleted by a sweep that stopped before recording it, or "
                                  f"by hand); model {run.model_name}:"
                                  f"{run.model_version} stays registered, redeploy is one step",
                                  {"endpoint": run.endpoint, "teardown": teardowns, **_costs(down),
                                   "project": alert_project(ctx.settings, run)}))


def _last_request(ctx: Context, endpoint: str) -> datetime | None:
    """The later of the platform's last request and the front door's (which the metrics may not show yet)."""
    marks = [ctx.call(ctx.platform.endpoint_activity, endpoint), ctx.ledger.activity.get(endpoint)]
    known = [mark for mark in marks if mark is not None]
    return max(known) if known else None


def _put_to_sleep(ctx: Context, endpoint: EndpointInfo) -> None:
    """Delete what bills, the endpoint's deployments (traffic off first: a serving one cannot be deleted);
    the endpoint keeps its URL and keys."""
    serving = any(endpoint.traffic.values())
    if serving:
        ctx.call(ctx.platform.set_traffic, endpoint.name, {name: 0 for name in endpoint.deployments})
    try:
        for deployment in endpoint.deployments:
            ctx.call(ctx.platform.delete_deployment, endpoint.name, deployment)
    except Exception:
        if serving:  # the model must not stay awake yet unreachable: its traffic goes back as it was
            with contextlib.suppress(PlatformError):
                ctx.call(ctx.platform.set_traffic, endpoint.name, dict(endpoint.traffic))
        raise


def _delete_asleep(ctx: Context, endpoint: EndpointInfo, verdict: IdleVerdict) -> tuple[str, str]:
    """Delete an endpoint asleep past ENDPOINT_DELETE_AFTER: its URL and keys go; the models stay."""
    try:
        ctx.call(ctx.platform.delete_endpoint, endpoint.name)
    except PlatformError as exc:
        log.error("sweep: could not delete asleep endpoint %s: %s", endpoint.name, exc)
        return "failed", endpoint.name
    ctx.alerts.send(Alert(endpoint.name, "endpoint.deleted", "info",
                          f"endpoint {endpoint.name}, asleep and unused ({verdict.reason}), was deleted with "
                          "its URL and keys (ENDPOINT_DELETE_AFTER); its models stay registered",
                          {"endpoint": endpoint.name}))
    return "endpoints_deleted", endpoint.name


def _record_teardown(ctx: Context, endpoint: EndpointInfo, verdict: IdleVerdict, now: datetime) -> None:
    """Each run live on the endpoint is torn down, with its endpoint-hours and the hours the sweep saved."""
    idle_hours = _hours(verdict.idle_for or timedelta(0))
    saved = round(max(0.0, ctx.settings.cost_reference_hours - idle_hours), 4)
    runs = ctx.ledger.find(state=SERVING, endpoint=endpoint.name)
    for run in runs:
        since = endpoint.last_deployed_at or endpoint.created_at or _deployed_at(run) or now
        teardowns = run.teardowns + 1
        down = advance_from(ctx, run, SERVING, State.TORN_DOWN, f"idle for {_human(verdict.idle_for)}",
                        endpoint_hours=_hours(now - since), idle_hours=idle_hours, hours_saved=saved,
                        torn_down_at=now, cost_reference_hours=ctx.settings.cost_reference_hours,
                        teardowns=teardowns)
        if down is None:
            continue
        # What a reader can check: how long it billed and sat idle; no guess at what was "saved".
        summary = (f"endpoint {endpoint.name} was put to sleep after {_human(verdict.idle_for)} without "
                   f"requests (its deployment billed {_human(now - since)}): its deployment was "
                   f"deleted, its URL and key stay, and model {run.model_name}:{run.model_version} wakes on "
                   "the next request through the front door")
        # The compare-and-set to torn_down already makes this handler the only one; the ordinal keeps a
        # second teardown after a redeploy from being mistaken for a repeat of the first.
        if ctx.ledger.mark_alerted(down, f"endpoint.torn_down#{teardowns}") is not None:
            ctx.alerts.send(Alert(down.run_id, "endpoint.torn_down", "info", summary,
                                  {"endpoint": endpoint.name, "teardown": teardowns, **_costs(down),
                                   "project": alert_project(ctx.settings, down)}))
    if not runs:
        ctx.alerts.send(Alert(endpoint.name, "endpoint.torn_down", "info",
                              f"endpoint {endpoint.name} (no live run in the ledger) was put to sleep "
                              f"after {_human(verdict.idle_for)} without requests",
                              {"endpoint": endpoint.name}))


def _activity_unknown(ctx: Context, endpoint: str, exc: Exception,
                      report: SweepReport | None) -> None:
    log.warning("sweep: keeping %s, its activity could not be read: %s", endpoint, exc)
    if report is not None:
        report.activity_unknown.append(endpoint)
    _warn(ctx, endpoint, "sweep.activity_unavailable",
          f"the sweep kept endpoint {endpoint} because its request activity could not be read "
          f"({str(exc)[:300]}); it keeps billing until the signal returns or someone deletes it")


def _warn(ctx: Context, endpoint: str, alert_class: str, summary: str) -> None:
    """A warning about an endpoint, once: on the run serving there, else under the endpoint's own name."""
    runs = ctx.ledger.find(state=SERVING, endpoint=endpoint)
    if runs:
        ctx.alert(runs[0], alert_class, "warning", summary, endpoint=endpoint)
    elif ctx.ledger.endpoints.mark_alerted(endpoint, alert_class):
        ctx.alerts.send(Alert(endpoint, alert_class, "warning", summary, {"endpoint": endpoint}))


def _deploy_in_progress(ctx: Context, endpoint: str, now: datetime) -> bool:
    """A run is deploying to the endpoint and still moving: a step holds it, or one ran within STEP_TIMEOUT.
    A deployment that stopped moving longer ago no longer protects the endpoint (it would bill for ever)."""
    return any(run.lease_live(now) or (run.updated_at is not None
                                       and now - run.updated_at < ctx.settings.step_timeout)
               for run in ctx.ledger.find(state=State.DEPLOYING, endpoint=endpoint))


def _deployed_at(run: Run) -> datetime | None:
    times = [e["at"] for e in run.history if e.get("state") == State.DEPLOYING.value and e.get("at")]
    return datetime.fromisoformat(times[-1]) if times else None


def _costs(run: Run) -> dict[str, object]:
    keys = ("endpoint_hours", "idle_hours", "hours_saved", "cost_reference_hours")
    return {key: getattr(run, key) for key in keys if getattr(run, key) is not None}


def _human(span: timedelta | None) -> str:
    """'5 s', '2 h 14 min': a duration as the page writes it."""
    return duration(span.total_seconds() if span is not None else None)


def _hours(span: timedelta) -> float:
    return round(span.total_seconds() / 3600, 4)

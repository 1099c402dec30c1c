"""Health checks the sweep runs first: each live run's deployment is read; one that no longer answers
(Failed, gone, a local server that died) marks its run unhealthy with one alert per time it goes down, and an
unhealthy one whose deployment answers again is live again. `redeploy` brings a down one back.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from shared.alerts import Alert
from shared.lifecycle.context import Context, alert_project, log
from shared.platforms.port import DeploymentStatus, NotFoundError, PlatformError
from shared.runs import SERVING, Conflict, IllegalTransition, Run, State


def check_health(ctx: Context, endpoint: str, unhealthy: list[str], recovered: list[str]) -> None:
    """Mark each live run on the endpoint whose deployment does not answer as unhealthy (one alert each time
    it goes down), and an unhealthy one whose deployment answers again (the platform healed it) live."""
    for run in ctx.ledger.find(state=SERVING, endpoint=endpoint):
        if not run.deployment:
            continue
        try:
            status = ctx.call(ctx.platform.deployment_status, endpoint, run.deployment)
        except NotFoundError:
            status = None
        except PlatformError as exc:  # unreadable is not unhealthy: the next sweep reads it again
            log.warning("sweep: health of %s/%s unknown: %s", endpoint, run.deployment, exc)
            continue
        if status is not None and not status.final:
            continue  # still provisioning (Updating, Scaling): neither down nor answering; read again later
        if status is None or not status.succeeded:
            if run.state == State.LIVE:
                _mark_unhealthy(ctx, run, _problem(endpoint, run.deployment, status), unhealthy)
        elif run.state == State.UNHEALTHY:
            advance_from(ctx, run, {State.UNHEALTHY}, State.LIVE, "its deployment answers again", error="")
            recovered.append(f"{endpoint}/{run.deployment}")


def _problem(endpoint: str, deployment: str, status: DeploymentStatus | None) -> str:
    if status is None:
        return f"its deployment {endpoint}/{deployment} no longer exists"
    return (f"its deployment {endpoint}/{deployment} is {status.provisioning}"
            + (f": {status.error[:300]}" if status.error else ""))


def _mark_unhealthy(ctx: Context, run: Run, problem: str, unhealthy: list[str]) -> None:
    down = advance_from(ctx, run, {State.LIVE}, State.UNHEALTHY, problem, error=f"unhealthy: {problem}")
    if down is None:
        return
    unhealthy.append(f"{run.endpoint}/{run.deployment}")
    log.error("sweep: run %s is unhealthy: %s", run.run_id, problem)
    # The ordinal (how many times the run went down) keeps a second outage after a redeploy from being taken
    # for a repeat of the first; within one outage the ledger's alert-once holds.
    times = sum(1 for entry in down.history if entry.get("state") == State.UNHEALTHY.value)
    if ctx.ledger.mark_alerted(down, f"endpoint.unhealthy#{times}") is not None:
        ctx.alerts.send(Alert(down.run_id, "endpoint.unhealthy", "error",
                              f"endpoint {run.endpoint} does not answer: {problem}; model "
                              f"{run.model_name}:{run.model_version} stays registered; redeploy brings "
                              "it back",
                              {"endpoint": run.endpoint, "deployment": run.deployment, "outage": times,
                               "project": alert_project(ctx.settings, run)}))


def advance_from(ctx: Context, run: Run, sources: Collection[State], target: State, note: str,
             **changes: Any) -> Run | None:
    """Move the run from one of `sources` to `target` unless another handler moved it first (then leave
    it)."""
    def move(current: Run) -> Run | None:
        if current.state not in sources:
            return None
        try:
            return ctx.ledger.advance(current, target, note=note, **changes)
        except IllegalTransition:
            return None

    try:
        return ctx.ledger.retry_on_conflict(run, move)
    except Conflict:
        log.error("sweep: run %s kept changing; it is not marked %s", run.run_id, target)
        return None

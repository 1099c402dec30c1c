"""How a run ends when a step cannot go on: failed (before deploying) or rolled back (while deploying), with
exactly one alert, and the previous deployment still serving.

A rollback deletes the new deployment only once it is final (Failed, Canceled, or Succeeded but refused by
the gate): one still provisioning may belong to a handler that is only slow. The two ways of giving up on a
run, a deployment stuck past DEPLOY_TIMEOUT and a poisoned step message, delete it whatever its state
(`force`), so nothing is left billing with no run to answer for it.
"""

from __future__ import annotations

from shared.lifecycle.context import Context, log
from shared.lifecycle.outcome import Outcome, Result
from shared.platforms.port import DeploymentStatus, NotFoundError, PlatformError
from shared.runs import Run, State


def fail(ctx: Context, run: Run, reason: str, alert_class: str, summary: str) -> Outcome:
    """End a run that has not started deploying as failed, with one alert."""
    failed = ctx.ledger.advance(run, State.FAILED, note=reason[:300], error=reason[:1000],
                                step_seq=run.step_seq + 1)
    ctx.alert(failed, alert_class, "error", summary)
    return Outcome(Result.FAILED, run.run_id, State.FAILED, reason)


def roll_back(ctx: Context, run: Run, reason: str, alert_class: str, *, force: bool = False) -> Outcome:
    """Delete the run's new deployment (if final, or `force`) and end the run rolled back, with one alert."""
    endpoint, deployment = run.endpoint, run.deployment
    status = _status(ctx, endpoint, deployment)
    if status is not None:
        _hand_back_traffic(ctx, run)
    if status is not None and (status.final or force):
        try:
            ctx.call(ctx.platform.delete_deployment, endpoint, deployment)
        except PlatformError as cleanup:
            log.error("run %s: could not delete deployment %s/%s: %s", run.run_id, endpoint, deployment,
                      cleanup)
    elif status is not None:
        log.error("run %s: deployment %s/%s is still %s and was left alone", run.run_id, endpoint, deployment,
                  status.provisioning)
    rolled = ctx.ledger.advance(run, State.ROLLED_BACK, note=reason[:300], error=reason[:1000],
                                step_seq=run.step_seq + 1,
                                provisioning=status.provisioning.value if status else run.provisioning)
    ctx.alert(rolled, alert_class, "error", f"deployment {endpoint}/{deployment} was rolled back (the "
              f"previous deployment keeps serving): {reason}")
    return Outcome(Result.FAILED, run.run_id, State.ROLLED_BACK, reason)


def supersede(ctx: Context, run: Run, endpoint: str, newer: Run) -> Outcome:
    """End a registered run whose turn to deploy came after a newer run went live there: nothing is deployed,
    its model stays registered (redeploy is one step), one notice."""
    reason = f"run {newer.run_id}, uploaded later, went live on {endpoint} first; this model was not deployed"
    done = ctx.ledger.advance(run, State.SUPERSEDED, note=reason[:300], error=reason[:1000],
                              step_seq=run.step_seq + 1)
    ctx.alert(done, "deploy.superseded", "info", f"run {run.run_id} was superseded: {reason}")
    return Outcome(Result.ADVANCED, run.run_id, State.SUPERSEDED, reason)


def give_up(ctx: Context, run: Run, reason: str) -> Outcome:
    """End a run whose step failed on every delivery (the poison queue): rolled back if it was deploying
    (its deployment deleted, whatever its state), failed otherwise."""
    if run.state == State.DEPLOYING:
        return roll_back(ctx, run, reason, "step.failed", force=True)
    return fail(ctx, run, reason, "step.failed", f"run {run.run_id} stopped in {run.state}: {reason}")


def _hand_back_traffic(ctx: Context, run: Run) -> None:
    """If the run's deployment took the traffic before its step failed (it died between the switch and
    recording live), give the traffic back to the deployment that had it: the previous one keeps serving."""
    try:
        info = ctx.call(ctx.platform.get_endpoint, run.endpoint)
        if info is None or not info.traffic.get(run.deployment):
            return
        others = [d for d in info.deployments if d != run.deployment
                  and ctx.call(ctx.platform.deployment_status, run.endpoint, d).succeeded]
        if others:
            ctx.call(ctx.platform.set_traffic, run.endpoint, {others[0]: 100})
            log.warning("run %s: traffic on %s given back to %s", run.run_id, run.endpoint, others[0])
    except Exception as exc:  # a rollback must finish whatever the platform does: log and go on
        log.error("run %s: could not give %s's traffic back: %s", run.run_id, run.endpoint, exc)


def _status(ctx: Context, endpoint: str, deployment: str) -> DeploymentStatus | None:
    """The deployment's state; None if there is none (or it cannot be read, so nothing is deleted blind)."""
    if not endpoint or not deployment:
        return None
    try:
        return ctx.call(ctx.platform.deployment_status, endpoint, deployment)
    except NotFoundError:
        return None
    except PlatformError as exc:
        log.error("could not read deployment %s/%s before rolling back: %s", endpoint, deployment, exc)
        return None

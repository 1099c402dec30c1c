"""The deploy and poll steps: a deployment is begun, never awaited, and its provisioning state is read again
later, each wait longer than the last, until it is final.

On Azure a managed deployment takes 10-20 minutes (more for a large model), so no invocation waits for it:
`begin` starts it at 0 % beside the live one and hands off a poll for later; `poll` reads its state and
either hands off another poll (Creating/Updating), the promote step (Succeeded) or a rollback (Failed,
Canceled). One still provisioning after DEPLOY_TIMEOUT is deleted and alerted; the previous deployment
keeps serving throughout.
"""

from __future__ import annotations

from datetime import timedelta

from shared.lifecycle import gate, naming, rollback
from shared.lifecycle.context import Context, log
from shared.lifecycle.outcome import Outcome, Result
from shared.lifecycle.step_message import StepMessage
from shared.platforms.port import (
    MANAGED_TAG,
    RUN_TAG,
    DeploymentStatus,
    ModelRef,
    NotFoundError,
    PlatformError,
)
from shared.projects import endpoint_of, run_project
from shared.runs import SERVING, Run, State

POLL_GROWTH = 1.5


def begin(ctx: Context, run: Run, message: StepMessage) -> Outcome:
    """Begin the run's deployment (a first deploy, or a redeploy) and hand off its first poll.

    A redeploy goes back to the endpoint the run served on; a first deploy goes to its project's endpoint.
    """
    endpoint = endpoint_of(ctx.settings, run_project(ctx.settings, run)) if run.state == State.REGISTERED \
        else run.endpoint
    # One run at a time deploys to an endpoint; the turn lasts as long as a deployment may (or until its
    # run ends), and is taken before anything is begun.
    holder = ctx.ledger.endpoints.take(endpoint, run.run_id, ctx.settings.deploy_timeout
                                       + ctx.settings.step_timeout)
    if holder is not None:
        return _wait_turn(ctx, run, message, endpoint, holder)
    if run.state == State.REGISTERED:
        newer = overtaken_by(ctx, run, endpoint)
        if newer is not None:
            return rollback.supersede(ctx, run, endpoint, newer)
        deployment = naming.deployment_name(run.run_id)
        run = ctx.ledger.advance(run, State.DEPLOYING, note=f"{endpoint}/{deployment}",
                                 hold=ctx.settings.step_timeout, endpoint=endpoint, deployment=deployment)
    try:
        # Refused before a deployment starts: a candidate worse than its base model is not worth serving.
        # A model that went live before passed this already (a wake skips the job's read).
        if not gate.already_passed(run):
            checked = gate.check_against_base(ctx, ctx.call(ctx.platform.job_status, run.job_name).metrics,
                                              run.eval_gate_max_drop)
            log.info("run %s: base-model gate passed (%s)", run.run_id, checked)
        status = _begin(ctx, run)
    except gate.GateFailed as exc:
        return rollback.roll_back(ctx, run, str(exc), f"deploy.{exc.kind}_gate_failed")
    except PlatformError as exc:
        return rollback.roll_back(ctx, run, f"the deployment could not be started: {exc}", "deploy.failed")
    begun = ctx.ledger.update(run, f"begun: {status.provisioning}", step=message.step, release=True,
                              deploy_started_at=ctx.ledger.now(), provisioning=status.provisioning.value,
                              polls=0, step_seq=run.step_seq + 1)
    # Already final (a repeat of a deploy that went through): look at it now rather than after a wait.
    wait = timedelta(0) if status.final else ctx.settings.deploy_poll_interval
    ctx.hand_off(begun, delay=wait)
    log.info("run %s: deployment %s/%s begun (%s)", run.run_id, run.endpoint, run.deployment,
             status.provisioning)
    return Outcome(Result.ADVANCED, run.run_id, State.DEPLOYING,
                   f"{status.provisioning}; first poll in {wait}")


def poll(ctx: Context, run: Run, message: StepMessage) -> Outcome:
    """Read the deployment's provisioning state and hand off what follows from it (see the module)."""
    try:
        status = ctx.call(ctx.platform.deployment_status, run.endpoint, run.deployment)
    except NotFoundError:
        # Not requested yet (its endpoint was still being created), or gone: request it (idempotent).
        try:
            status = _begin(ctx, run)
        except PlatformError as exc:
            return rollback.roll_back(ctx, run, f"the deployment could not be started: {exc}",
                                      "deploy.failed")
    except PlatformError as exc:  # permanent: the deployment cannot even be read
        return rollback.roll_back(ctx, run, f"the deployment's state could not be read: {exc}",
                                  "deploy.failed")
    polls = run.polls + 1
    if status.final and not status.succeeded:
        return rollback.roll_back(ctx, run, f"the deployment ended {status.provisioning}"
                                  + (f": {status.error}" if status.error else ""), "deploy.failed")
    started = run.deploy_started_at or ctx.ledger.now()
    waited = ctx.ledger.now() - started
    if not status.final and waited >= ctx.settings.deploy_timeout:
        return rollback.roll_back(ctx, run, f"the deployment was still {status.provisioning} after "
                                  f"{_minutes(waited)} (DEPLOY_TIMEOUT {ctx.settings.deploy_timeout})",
                                  "deploy.stuck", force=True)
    wait = timedelta(0) if status.succeeded else next_wait(ctx, polls)
    note = f"{status.provisioning} after {_minutes(waited)}" + ("" if status.succeeded else f"; next poll in "
                                                                 f"{int(wait.total_seconds())} s")
    polled = ctx.ledger.update(run, note, step=f"{message.step} {polls}", release=True, polls=polls,
                               provisioning=status.provisioning.value, step_seq=run.step_seq + 1)
    ctx.hand_off(polled, delay=wait)
    return Outcome(Result.ADVANCED, run.run_id, State.DEPLOYING, note)


def overtaken_by(ctx: Context, run: Run, endpoint: str) -> Run | None:
    """A run uploaded after this one that is already serving the endpoint (this one's model is older)."""
    newer = [r for r in ctx.ledger.find(state=SERVING, endpoint=endpoint) if _order(r) > _order(run)]
    return max(newer, key=_order) if newer else None


def _order(run: Run) -> tuple[str, str]:
    """Runs in the order their uploads arrived in storage (not the order their scans finished)."""
    at = run.uploaded_at or run.created_at
    return (at.isoformat() if at else "", run.run_id)


def _wait_turn(ctx: Context, run: Run, message: StepMessage, endpoint: str, holder: str) -> Outcome:
    """Another run is deploying to the endpoint: come back later. The step sequence moves on, so copies of
    this message (a reconciler's, a redelivery) find themselves stale and one chain of waits remains."""
    note = f"waiting for {endpoint}: run {holder} is deploying to it"
    said = run.history[-1].get("note") if run.history else None
    waiting = ctx.ledger.update(run, "" if said == note else note, step=message.step, release=True,
                                step_seq=run.step_seq + 1)
    ctx.hand_off(waiting, delay=ctx.settings.deploy_poll_interval)
    return Outcome(Result.IN_PROGRESS, run.run_id, run.state, note)


def next_wait(ctx: Context, polls: int) -> timedelta:
    """The wait before poll `polls` + 1: the first interval, growing by half each time, up to the max."""
    grown = ctx.settings.deploy_poll_interval * POLL_GROWTH ** max(0, polls - 1)
    return min(grown, ctx.settings.deploy_poll_max_interval)


def _begin(ctx: Context, run: Run) -> DeploymentStatus:
    model = ModelRef(run.model_name, run.model_version)
    tags = {MANAGED_TAG: "true", RUN_TAG: run.run_id}
    return ctx.call(ctx.platform.begin_deployment, model, run.endpoint, run.deployment, tags)


def _minutes(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"

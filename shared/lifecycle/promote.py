"""The promote step: a provisioned deployment is smoke-tested and compared with live (gate.py), takes all the
traffic, and the old deployment goes. Blue/green: until the switch, the old one serves.

Nothing is smoke-tested or deleted unless it is final: the new deployment's state is read again first (a
takeover may find it otherwise), and an old deployment still provisioning is left to the run that owns it.
A failure before the switch rolls back; once the traffic has moved the run is live, and an old deployment
that cannot be deleted is alerted, not rolled back.
"""

from __future__ import annotations

from shared.lifecycle import gate, rollback
from shared.lifecycle.context import Context, log
from shared.lifecycle.outcome import Outcome, Result
from shared.lifecycle.step_message import Step, StepMessage
from shared.platforms.port import EndpointInfo, NotFoundError, PlatformError
from shared.runs import SERVING, Conflict, IllegalTransition, Run, State
from shared.staging import StagingError


def promote(ctx: Context, run: Run, message: StepMessage) -> Outcome:
    """Gate, switch, clean up, record live (see the module docstring)."""
    endpoint, deployment = run.endpoint, run.deployment
    try:
        status = ctx.call(ctx.platform.deployment_status, endpoint, deployment)
    except PlatformError as exc:  # gone (NotFoundError) or unreadable: nothing to test
        return rollback.roll_back(ctx, run, f"the deployment could not be read before its gate: {exc}",
                                  "deploy.failed")
    if not status.succeeded:  # not (or no longer) ready: back to polling, never test it like this
        again = ctx.ledger.update(run, f"{status.provisioning} before its gate; polling again",
                                  step=message.step, release=True, provisioning=status.provisioning.value,
                                  step_seq=run.step_seq + 1)
        ctx.hand_off(again, Step.POLL, delay=ctx.settings.deploy_poll_interval)
        return Outcome(Result.ADVANCED, run.run_id, State.DEPLOYING, f"{status.provisioning}; polling again")
    try:
        live = _serving(ctx.platform.get_endpoint(endpoint), deployment)
        # A model that passed before (a wake, a redeploy) is only checked to answer: one request, not K
        # conversations on two deployments.
        passed_before = gate.already_passed(run)
        wanted = run.smoke_conversations or ctx.settings.smoke_conversations  # the project's, or the app's
        cases = gate.test_cases(ctx, run.test_uri, 1 if passed_before else wanted)
        verdict = (gate.ready(ctx, endpoint, deployment, run, cases) if passed_before
                   else gate.check(ctx, endpoint, deployment, live, cases, run.eval_gate_max_drop))
        ctx.call(ctx.platform.set_traffic, endpoint, {deployment: 100})
    except gate.GateFailed as exc:
        return rollback.roll_back(ctx, run, str(exc), f"deploy.{exc.kind}_gate_failed")
    except (PlatformError, StagingError) as exc:
        return rollback.roll_back(ctx, run, f"the deployment failed before taking traffic: {exc}",
                                  "deploy.failed")
    # Live is recorded the moment the traffic moved; only then is the old deployment deleted and its run
    # retired, so a crash in between leaves the ledger naming what serves (a retry finds it at 100 % and
    # records the same).
    current = ctx.platform.get_endpoint(endpoint)
    note = f"{endpoint}/{deployment} at 100 %; ROUGE-L {verdict.score:.3f}" + (
        f" vs live {verdict.baseline:.3f}" if verdict.baseline is not None else "") + (
        " (gate passed before; answered its readiness request)" if passed_before else "")
    done = ctx.ledger.advance(run, State.LIVE, note=note, scoring_uri=current.scoring_uri if current else "",
                              smoke_reply=verdict.replies[0][:200], eval_rouge_l=round(verdict.score, 4),
                              baseline_rouge_l=verdict.baseline, replaced=live or "",
                              step_seq=run.step_seq + 1)
    _retire_superseded(ctx, run, endpoint)
    leftovers = _delete_old(ctx, endpoint, deployment)
    if leftovers:
        ctx.alert(done, "deploy.cleanup_failed", "warning", f"{endpoint}/{deployment} is live, but old "
                  f"deployment(s) could not be deleted and may keep billing: {'; '.join(leftovers)}")
    log.info("run %s: live on %s/%s", run.run_id, endpoint, deployment)
    return Outcome(Result.ADVANCED, run.run_id, State.LIVE, note)


def _serving(endpoint: EndpointInfo | None, new: str) -> str | None:
    """The deployment taking the endpoint's traffic now (the one the new deployment must beat)."""
    if endpoint is None:
        return None
    serving = [(share, name) for name, share in endpoint.traffic.items() if share > 0 and name != new]
    return max(serving)[1] if serving else None


def _delete_old(ctx: Context, endpoint: str, new: str) -> list[str]:
    """Delete the endpoint's other deployments that are final; returns what could not be deleted, and why."""
    info = ctx.platform.get_endpoint(endpoint)
    problems = []
    for old in (d for d in (info.deployments if info else ()) if d != new):
        try:
            status = ctx.call(ctx.platform.deployment_status, endpoint, old)
            if not status.final:
                log.info("old deployment %s/%s is %s: left to its own run", endpoint, old,
                         status.provisioning)
                continue
            ctx.call(ctx.platform.delete_deployment, endpoint, old)
        except NotFoundError:
            continue
        except PlatformError as exc:
            log.error("could not delete old deployment %s/%s: %s", endpoint, old, exc)
            problems.append(f"{old}: {str(exc)[:200]}")
    return problems


def _retire_superseded(ctx: Context, run: Run, endpoint: str) -> None:
    """The run that was live on this endpoint is now replaced; record it as torn down."""
    for earlier in ctx.ledger.find(state=SERVING, endpoint=endpoint):
        if earlier.run_id != run.run_id:
            try:
                ctx.ledger.advance(earlier, State.TORN_DOWN, note=f"superseded by {run.run_id}")
            except (Conflict, IllegalTransition) as exc:  # it moved meanwhile (a sweep); not ours to fix
                log.warning("run %s: could not retire %s: %s", run.run_id, earlier.run_id, exc)

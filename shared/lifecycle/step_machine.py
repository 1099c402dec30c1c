"""The step machine: one queue message advances one run by one short step, exactly once however often it
arrives.

    step      run waits in            does (one invocation, well under a minute)           then
    submit    validated               start the fine-tune job                              (job events)
    register  succeeded               register the job's model                             deploy
    deploy    registered / deploying  begin the deployment (not awaited)                   poll, later
    poll      deploying, begun        read its provisioning state                          poll / promote
    promote   deploying, Succeeded    smoke + eval gate, traffic 100 %, delete the old one  (live)

A message is current only if it is the step its run waits for (`next_step`) at the run's step sequence, for
the run's attempt and deployment; anything else is a duplicate or a late delivery and is dropped. A current
message claims the step's lease (compare-and-set) before any effect. If another handler holds the lease, a
first delivery is dropped (that handler's own message comes back if it dies, since the host deletes a message
only after its invocation returns); a redelivery is sent again to arrive when the lease runs out, so a
handler killed mid-step is taken over then. A step that raises lets go of its lease and records why; the
host retries the message and, after host.json's maxDequeueCount, moves it to the poison queue (`on_poison`).

A handler the host kills at functionTimeout lets go of nothing: its message comes back while the lease is
held. The copy sent again carries the deliveries so far (`StepMessage.deliveries`), and a copy whose
deliveries in all exceed maxDequeueCount is poisoned without running, as the host does with its own count:
a step killed on every delivery ends the run with one alert instead of looping.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import partial

import msgspec

from shared import deadline
from shared.lifecycle import deploy, promote, register, rollback, submit
from shared.lifecycle.context import Context, log
from shared.lifecycle.outcome import Outcome, Result
from shared.lifecycle.step_message import Step, StepMessage, next_step
from shared.runs import Conflict, Run, StoreError

Handler = Callable[[Context, Run, StepMessage], Outcome]
# One handler per step; each gets the run with the step's lease held, and ends by releasing it.
STEPS: dict[Step, Handler] = {
    Step.SUBMIT: submit.submit,
    Step.REGISTER: register.register,
    Step.DEPLOY: deploy.begin,
    Step.POLL: deploy.poll,
    Step.PROMOTE: promote.promote,
}
_LEASE_SLACK = timedelta(seconds=1)
# host.json's extensions.queues.maxDequeueCount (test_bindings holds them equal).
MAX_DELIVERIES = 5


def on_step(ctx: Context, message: StepMessage, dequeue_count: int = 1) -> Outcome:
    """Run the message's step if it is current and free; see the module docstring for the rules."""
    run = ctx.ledger.get(message.run_id)
    if run is None:
        return Outcome(Result.IGNORED, message.run_id, detail=f"{message}: no such run")
    try:  # a lost claim means the run changed: the ledger reads it again and the message is judged afresh
        turn = ctx.ledger.retry_on_conflict(run, partial(_judge, ctx, message, dequeue_count), tries=3)
    except Conflict:
        return Outcome(Result.IN_PROGRESS, message.run_id, detail=f"{message}: the run kept changing")
    if turn is None:
        return Outcome(Result.IGNORED, message.run_id, detail=f"{message}: no such run")
    return turn()


def _judge(ctx: Context, message: StepMessage, dequeue_count: int, run: Run) -> Callable[[], Outcome]:
    """What becomes of the message on the run as read: dropped, held, poisoned or run, the step's lease
    claimed first (Conflict if another handler wrote meanwhile). The claim is its only effect; the rest is
    done once the judgement stands."""
    stale = staleness(run, message)
    if stale:
        log.debug("dropped %s: %s", message, stale)
        return lambda: Outcome(Result.IGNORED, run.run_id, run.state, stale)
    if run.lease_live(ctx.ledger.now()):
        return partial(_held, ctx, run, message, dequeue_count)
    if message.deliveries + dequeue_count > MAX_DELIVERIES:
        log.error("%s: delivered %d times in all; poisoned without running", message,
                  message.deliveries + dequeue_count)
        return partial(on_poison, ctx, message)
    claimed = ctx.ledger.claim(run, message.step.value, ctx.settings.step_timeout)
    if claimed is None:  # a clock that went back between the two reads: the lease is live after all
        return partial(_held, ctx, run, message, dequeue_count)
    return partial(_run, ctx, claimed, message)


def on_poison(ctx: Context, message: StepMessage) -> Outcome:
    """A step message failed maxDequeueCount times: end its run (failed, or rolled back), with one alert.

    A message the run has moved past is only logged: the failure no longer stands in the run's way.
    """
    run = ctx.ledger.get(message.run_id)
    if run is None:
        return Outcome(Result.IGNORED, message.run_id, detail=f"poisoned {message}: no such run")
    stale = staleness(run, message)
    # A lease on this very step was taken by one of its own deliveries, all of which failed or died.
    if stale or (run.lease_live(ctx.ledger.now()) and run.lease_step != message.step.value):
        log.warning("poisoned %s left alone: %s", message, stale or "another handler holds the run")
        return Outcome(Result.IGNORED, run.run_id, run.state, f"poisoned {message}: {stale or 'held'}")
    reason = f"step {message.step} failed on every delivery" + (f"; last error: {run.error}" if run.error
                                                                 else "")
    return rollback.give_up(ctx, run, reason)


def staleness(run: Run, message: StepMessage) -> str:
    """Why the message is not the run's current step ('' if it is)."""
    if message.seq != run.step_seq or message.step != next_step(run):
        waiting = next_step(run)
        return (f"stale {message}: the run is {run.state} at seq {run.step_seq}"
                + (f", waiting for {waiting}" if waiting else ""))
    if message.attempt != run.attempt:
        return f"stale {message}: it is for attempt {message.attempt}, the run is on {run.attempt}"
    if message.deployment and run.deployment and message.deployment != run.deployment:
        return f"stale {message}: the run deploys {run.deployment}"
    return ""


def _held(ctx: Context, run: Run, message: StepMessage, dequeue_count: int) -> Outcome:
    holder = f"{run.lease_step} is held until {run.lease_until:%H:%M:%S}" if run.lease_until else "held"
    if dequeue_count <= 1 and not message.deliveries:
        return Outcome(Result.IN_PROGRESS, run.run_id, run.state, f"{message}: {holder}; dropped")
    # A redelivery: its handler may have died holding the lease. Come back when the lease runs out, with the
    # deliveries so far, so a step that dies on every delivery still reaches poison.
    assert run.lease_until is not None
    wait = run.lease_until - ctx.ledger.now() + _LEASE_SLACK
    again = msgspec.structs.replace(message, deliveries=message.deliveries + dequeue_count)
    ctx.steps.send(again.encode(), delay=wait)
    return Outcome(Result.IN_PROGRESS, run.run_id, run.state, f"{message}: {holder}; back in {wait}")


def _run(ctx: Context, claimed: Run, message: StepMessage) -> Outcome:
    try:
        with deadline.within(ctx.settings.step_deadline.total_seconds(), ctx.monotonic):
            return STEPS[message.step](ctx, claimed, message)
    except Exception as exc:
        _let_go(ctx, claimed, message, exc)
        raise


def _let_go(ctx: Context, claimed: Run, message: StepMessage, exc: Exception) -> None:
    """Release the lease a failing step holds and note why, so the host's retry can run it at once."""
    log.warning("%s failed (the host will retry it): %s: %s", message, type(exc).__name__, exc)
    try:
        current = ctx.ledger.get(claimed.run_id)
        if current is not None and current.lease_step and current.step_seq == message.seq:
            error = f"{message.step}: {type(exc).__name__}: {exc}"[:1000]
            ctx.ledger.update(current, release=True, error=error)
    except StoreError as cleanup:  # the lease then runs out on its own (Conflict is a StoreError)
        log.error("%s: could not release its lease: %s", message, cleanup)


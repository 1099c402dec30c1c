"""Queue triggers on the step queue: one short step of a run per message, and the poison queue's verdict.

The step itself decides what the message means (shared/lifecycle/step_machine.py); a message that is not a
step message is logged and acknowledged, since retrying it cannot help. A step that raises is retried by the
host and, after host.json's maxDequeueCount, lands on `<STEP_QUEUE>-poison`, whose trigger ends the run.
"""

import logging

import azure.functions as func

from functions.worker import lifecycle
from shared.lifecycle import MalformedStep, StepMessage

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.function_name("steps")
@bp.queue_trigger(arg_name="message", queue_name="%STEP_QUEUE%", connection="AUTOPILOT_STORAGE")
def steps(message: func.QueueMessage) -> None:
    """Advance one run by one step: submit, register, begin deployment, poll it, or promote it."""
    try:
        step = StepMessage.decode(message.get_body())
    except MalformedStep as exc:
        log.warning("ignored step queue message %s: %s", message.id, exc)
        return
    outcome = lifecycle().on_step(step, dequeue_count=message.dequeue_count or 1)
    log.info("%s (delivery %s): %s", step, message.dequeue_count, outcome)


@bp.function_name("steps_poison")
@bp.queue_trigger(arg_name="message", queue_name="%STEP_QUEUE%-poison", connection="AUTOPILOT_STORAGE")
def steps_poison(message: func.QueueMessage) -> None:
    """A step message that failed on every delivery: end its run as failed (or rolled back), alert once."""
    try:
        step = StepMessage.decode(message.get_body())
    except MalformedStep as exc:
        log.error("unreadable poisoned step message %s dropped: %s", message.id, exc)
        return
    outcome = lifecycle().on_poison(step)
    log.error("poisoned %s: %s", step, outcome)

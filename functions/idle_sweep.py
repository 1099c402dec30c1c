"""Timer: tear down idle endpoints and reconcile runs whose events were lost."""

import logging

import azure.functions as func

from functions.worker import lifecycle

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.function_name("idle_sweep")
@bp.timer_trigger(arg_name="timer", schedule="%IDLE_SWEEP_SCHEDULE%", run_on_startup=False, use_monitor=True)
def idle_sweep(timer: func.TimerRequest) -> None:
    """Delete managed endpoints idle past IDLE_TTL; advance runs stuck without events."""
    report = lifecycle().on_sweep()
    log.info("idle sweep%s: %s", " (past due)" if timer.past_due else "", report.summary())

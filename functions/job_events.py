"""Event Grid trigger for Azure ML run events (RunCompleted / RunStatusChanged).

The subscription may use the Event Grid schema or CloudEvents 1.0; the binding hands either an
EventGridEvent or a CloudEvent, and both are read into one shape here. A malformed event is logged and
acknowledged: raising would make Event Grid retry it for 24 hours. Nothing long happens here: the status is
recorded and the next step queued, so Event Grid has its answer well inside its 30 s.
"""

import logging
from typing import Any

import azure.functions as func

from functions.worker import lifecycle
from shared.events import MalformedEvent, parse_run_event

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.function_name("job_events")
@bp.event_grid_trigger(arg_name="event")
def job_events(event: func.EventGridEvent) -> None:
    """Record the job's status on its run and, for a completed job, queue the register step (milliseconds)."""
    try:
        run_event = parse_run_event(_as_dict(event))
    except (MalformedEvent, ValueError) as exc:
        log.warning("ignored malformed job event %s: %s", getattr(event, "id", "?"), exc)
        return
    outcome = lifecycle().on_job_event(run_event)
    log.info("job event %s for %s (%s): %s", run_event.id, run_event.job_name, run_event.job_status, outcome)


def _as_dict(event: Any) -> dict[str, Any]:
    if isinstance(event, func.CloudEvent):
        return {"specversion": event.specversion, "id": event.id, "type": event.type,
                "subject": event.subject, "time": event.time.isoformat() if event.time else None,
                "data": event.get_json()}
    return {"id": event.id, "eventType": event.event_type, "subject": event.subject,
            "eventTime": event.event_time.isoformat() if event.event_time else None,
            "data": event.get_json()}

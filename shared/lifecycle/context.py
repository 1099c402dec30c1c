"""What every lifecycle step works with: settings and the ports (platform, ledger, alerts, staging, the step
queue)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from shared import deadline
from shared.alerts import Alert, Alerts, Severity
from shared.lifecycle.step_message import Step, message_for, next_step
from shared.platforms.endpoint_names import project_name
from shared.platforms.port import Platform, PlatformError
from shared.projects import project_of
from shared.queues import MessageQueue
from shared.runs import Ledger, Run
from shared.settings import Settings
from shared.staging import BlobStore

log = logging.getLogger("autopilot.lifecycle")
T = TypeVar("T")


@dataclass
class Context:
    """Settings and the ports a step uses; one per lifecycle."""

    settings: Settings
    platform: Platform
    ledger: Ledger
    alerts: Alerts
    staging: BlobStore
    steps: MessageQueue
    # How a retry waits out its backoff (tests that run in milliseconds record the waits instead).
    sleep: Callable[[float], None] = field(default=time.sleep)
    # The clock of the step's deadline (STEP_DEADLINE; tests move it instead of waiting).
    monotonic: Callable[[], float] = field(default=time.monotonic)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call the platform, retrying transient failures (429, 5xx, timeouts) with backoff; no attempt
        starts once the step's deadline has passed (OutOfTime)."""
        def attempt(*inner: Any, **named: Any) -> T:
            deadline.check(getattr(fn, "__name__", "a platform call"), self.monotonic)
            return fn(*inner, **named)
        return _transient_retry(attempt, self.sleep)(*args, **kwargs)

    def hand_off(self, run: Run, step: Step | None = None, delay: timedelta = timedelta(0)) -> Step | None:
        """Put the run's next step (or `step`) on the step queue, stamped with the run's step sequence, to
        run after `delay`; returns the step sent (None when the run's state has no step)."""
        step = step or next_step(run)
        if step is not None:
            self.steps.send(message_for(run, step).encode(), delay=delay)
            log.debug("run %s: %s queued (seq %d, in %s)", run.run_id, step, run.step_seq, delay)
        return step

    def alert(self, run: Run, alert_class: str, severity: Severity, summary: str, **details: Any) -> None:
        """Send the alert of this class for this run once per attempt (a retry's job, a redeploy), however
        many handlers reach this point."""
        key = alert_key(run, alert_class)
        if self.ledger.mark_alerted(run, key) is None:
            log.debug("alert %s for run %s was already sent", key, run.run_id)
            return
        details = {"project": alert_project(self.settings, run), **details}
        if key != alert_class:
            details = {"alert_key": key, "attempt": run.attempt, "redeploys": run.redeploys, **details}
        self.alerts.send(Alert(run.run_id, alert_class, severity, summary, details))


def alert_project(settings: Settings, run: Run) -> str:
    """The project an alert is about: the run's, or (a record made before its upload was read) its
    folder's."""
    if run.project:
        return run.project
    _, _, name = run.upload.partition("/")  # "container/name"
    return project_of(settings, name) if name else project_name(settings)


def alert_key(run: Run, alert_class: str) -> str:
    """What the ledger records an alert as sent under: its class, per attempt. The first try keeps the plain
    class; a retry's job (`#a2`) and each redeploy (`#r1`) fail on their own, so each failure is one alert."""
    parts = [f"a{run.attempt}"] if run.attempt > 1 else []
    parts += [f"r{run.redeploys}"] if run.redeploys else []
    return f"{alert_class}#{'.'.join(parts)}" if parts else alert_class


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, PlatformError) and exc.transient


def _transient_retry(fn: Callable[..., T], sleep: Callable[[float], None]) -> Callable[..., T]:
    return retry(retry=retry_if_exception(_is_transient), stop=stop_after_attempt(4),
                 wait=wait_exponential(multiplier=0.5, max=8), sleep=sleep, reraise=True)(fn)

"""Fires timer-triggered functions on their NCRONTAB schedules, as the host's timer scheduler would.

Schedules have six fields, seconds first (`0 */15 * * * *`), evaluated in UTC like Azure's default; the
TimeSpan form `hh:mm:ss` means "every that long". `runOnStartup` fires once at start. A timer whose previous
run is still going skips its tick: the host never overlaps two runs of one timer.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from croniter import croniter

from devhost.polling import Poller
from devhost.triggers import FunctionError, HostedFunction, Invoker, timer_argument

log = logging.getLogger("devhost.timers")

Schedule = Callable[[datetime], datetime]
# A tick that fires this much later than due is reported as past due, as the host's schedule monitor would.
PAST_DUE_AFTER = timedelta(seconds=60)


def parse_schedule(expression: str, *, where: str) -> Schedule:
    """A function from a time to the schedule's next occurrence after it; FunctionError if malformed."""
    text = expression.strip()
    span = re.fullmatch(r"(\d+):(\d{2}):(\d{2})", text)
    if span:
        hours, minutes, seconds = (int(p) for p in span.groups())
        every = timedelta(hours=hours, minutes=minutes, seconds=seconds)
        if every <= timedelta(0):
            raise FunctionError(f"{where}: TimeSpan schedule {expression!r} must be longer than zero")
        return lambda after: after + every
    if len(text.split()) != 6 or not croniter.is_valid(text, second_at_beginning=True):
        raise FunctionError(f"{where}: schedule {expression!r} is not an NCRONTAB expression with six "
                            "fields, seconds first (e.g. '0 */15 * * * *')")

    def following(after: datetime) -> datetime:
        nxt: datetime = croniter(text, after, second_at_beginning=True).get_next(datetime)
        return nxt

    return following


class TimerSchedule(Poller):
    """Owns the timers of an app: when each fires next, and the runs in progress."""

    name = "timers"

    def __init__(self, functions: list[HostedFunction], invoker: Invoker, *,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        super().__init__(interval=0.1)
        self.invoker = invoker
        self._now = now
        self.timers = {f.name: (f, parse_schedule(str(f.trigger["schedule"]), where=f"function {f.name}"))
                       for f in functions}
        self._next: dict[str, datetime] = {}
        self._running: dict[str, threading.Thread] = {}

    def start(self) -> None:
        """Plan each timer's first tick, fire the runOnStartup ones, then start the clock."""
        now = self._now()
        for name, (function, schedule) in self.timers.items():
            self._next[name] = schedule(now)
            log.info("timer %s (%s): next run at %s", name, function.trigger["schedule"],
                     self._next[name].isoformat())
            if function.trigger.get("runOnStartup"):
                self._fire(function, past_due=False)
        super().start()

    def poll(self) -> None:
        """Fire every timer that is due and plan its next tick."""
        now = self._now()
        for name, due in list(self._next.items()):
            if due > now:
                continue
            function, schedule = self.timers[name]
            self._next[name] = schedule(now)
            self._fire(function, past_due=now - due > PAST_DUE_AFTER)

    def close(self) -> None:
        for thread in list(self._running.values()):
            thread.join()

    def _fire(self, function: HostedFunction, *, past_due: bool) -> None:
        previous = self._running.get(function.name)
        if previous is not None and previous.is_alive():
            log.warning("timer %s: previous run still going; this tick is skipped", function.name)
            return

        def run() -> None:
            # A failure is logged by the invoker; the next tick runs regardless, as in the host.
            with contextlib.suppress(Exception):
                self.invoker.invoke(function, timer_argument(past_due=past_due), reason="Timer fired")

        thread = threading.Thread(target=run, name=f"devhost-timer-{function.name}")
        self._running[function.name] = thread
        thread.start()

"""What a handler did with one trigger: a small typed value that tests assert on and logs print.

    Outcome(Result.SUBMITTED, run_id="run-…", state=State.SUBMITTED, detail="job ftap-run-…")
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shared.runs import State


class Result(StrEnum):
    IGNORED = "ignored"  # not ours, or nothing to do; `detail` says why
    WAITING = "waiting"  # a manifest waits for the files it names
    QUEUED = "queued"  # recorded; the run's next step is on the step queue
    SUBMITTED = "submitted"  # a fine-tune job was submitted
    REJECTED = "rejected"  # the upload or manifest was refused (and quarantined, alerted)
    DUPLICATE = "duplicate"  # the same content was trained before; nothing started
    ALREADY_HANDLED = "already_handled"  # a repeated delivery of something already done
    IN_PROGRESS = "in_progress"  # another handler holds the step, or moved the run first
    ADVANCED = "advanced"  # the run moved; `state` says where it stands now
    FAILED = "failed"  # the step failed; the run ended failed, with one alert


@dataclass(frozen=True)
class Outcome:
    """A handler's result: what happened, to which run, where that run stands."""

    result: Result
    run_id: str = ""
    state: State | None = None
    detail: str = ""

    def __str__(self) -> str:
        run = f" run {self.run_id}" if self.run_id else ""
        state = f" ({self.state})" if self.state else ""
        return f"{self.result}:{run}{state}" + (f" - {self.detail}" if self.detail else "")

"""The step message: what the step queue carries to advance one run by one short step.

A message names its run, its step and the run's step sequence when it was sent, plus the deployment it is
about; the run's record is the truth, the message only says "look at this run now". A message is current only
while the run still has that sequence (and that attempt and deployment): each completed step moves the
sequence on, so a duplicate or late delivery finds itself stale and does nothing.

    StepMessage(run_id="run-…", step=Step.POLL, seq=7, endpoint="autopilot-chat", deployment="d-…", poll=2)
"""

from __future__ import annotations

from enum import StrEnum

import msgspec

from shared.platforms.port import Provisioning
from shared.runs import Run, State


class Step(StrEnum):
    """One short step of a run; each runs in one queue-triggered invocation of well under a minute."""

    SUBMIT = "submit"  # validated: start the fine-tune job
    REGISTER = "register"  # the job succeeded: register its model
    DEPLOY = "deploy"  # registered (or a redeploy asked for): begin the deployment, do not wait for it
    POLL = "poll"  # deploying: read its provisioning state; not final yet, poll again later
    PROMOTE = "promote"  # provisioned: smoke test and eval gate, traffic to it, delete the old one


class MalformedStep(ValueError):
    """A queue message that is not a step message (the text says why)."""


class StepMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One step of one run, as it travels on the queue (JSON)."""

    run_id: str
    step: Step
    seq: int
    attempt: int = 1
    endpoint: str = ""
    deployment: str = ""
    poll: int = 0
    # Deliveries of the earlier copies this one was re-sent from (while a dead handler's lease ran out), so
    # the count the host's maxDequeueCount judges keeps growing across the re-send.
    deliveries: int = 0

    def encode(self) -> str:
        """The message's queue text."""
        return msgspec.json.encode(self).decode()

    @classmethod
    def decode(cls, raw: str | bytes) -> StepMessage:
        """The message in a queue text; MalformedStep if it is not one."""
        try:
            message = msgspec.json.decode(raw, type=cls)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise MalformedStep(f"not a step message: {exc}") from None
        if not message.run_id or message.seq < 0:
            raise MalformedStep("not a step message: run_id is empty or seq is negative")
        return message

    def __str__(self) -> str:
        where = f" {self.endpoint}/{self.deployment}" if self.deployment else ""
        return f"{self.step} of {self.run_id} (seq {self.seq}{where})"


def next_step(run: Run) -> Step | None:
    """The step the run waits for in its state (None: it waits for a job event, an operator, or nothing)."""
    if run.state == State.DEPLOYING:
        if run.deploy_started_at is None:
            return Step.DEPLOY
        return Step.PROMOTE if run.provisioning == Provisioning.SUCCEEDED else Step.POLL
    return {State.VALIDATED: Step.SUBMIT, State.SUCCEEDED: Step.REGISTER,
            State.REGISTERED: Step.DEPLOY}.get(run.state)


def message_for(run: Run, step: Step) -> StepMessage:
    """The message for `step` of the run as it stands (its sequence, attempt and deployment)."""
    return StepMessage(run_id=run.run_id, step=step, seq=run.step_seq, attempt=run.attempt,
                       endpoint=run.endpoint, deployment=run.deployment, poll=run.polls)

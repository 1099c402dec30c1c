"""The submit step: a validated run's fine-tune job is started (from the base model, or with
`start_from: live` from the model its endpoint serves), and the run becomes submitted."""

from __future__ import annotations

from shared.lifecycle import naming, rollback
from shared.lifecycle.context import Context, log
from shared.lifecycle.outcome import Outcome, Result
from shared.lifecycle.step_message import StepMessage
from shared.platforms.port import HASH_TAG, PROJECT_TAG, RUN_TAG, JobSpec, ModelRef, PlatformError
from shared.projects import endpoint_of, run_project
from shared.runs import SERVING, Run, State


class NoLiveModel(ValueError):
    """A run asked to start from the live model, and there is none it can start from."""


def submit(ctx: Context, run: Run, message: StepMessage) -> Outcome:
    """Start the fine-tune job (its name is deterministic per attempt, so a retry finds it)."""
    try:
        start, lineage = _live_start(ctx, run)
    except NoLiveModel as exc:
        return rollback.fail(ctx, run, f"submit refused: {exc}", "job.submit_failed",
                             f"the fine-tune job was not submitted: {exc}")
    spec = JobSpec(
        name=naming.job_name(run.run_id, run.attempt),
        run_id=run.run_id,
        display_name=naming.model_name(run.base_model, run.run_name or run.upload),
        base_model=run.base_model,
        train_uri=run.train_uri,
        test_uri=run.test_uri,
        parameters={**ctx.settings.finetune_overrides, **run.overrides},
        tags={**run.tags, RUN_TAG: run.run_id, HASH_TAG: run.content_sha256,
              PROJECT_TAG: run_project(ctx.settings, run)},
        start_from=start,
        lineage=lineage,
    )
    try:
        job = ctx.call(ctx.platform.submit, spec)
    except PlatformError as exc:
        return rollback.fail(ctx, run, f"submit failed: {exc}", "job.submit_failed",
                             f"the fine-tune job could not be submitted: {exc}")
    started_from = f"{start.name}:{start.version}" if start else ""
    ctx.ledger.advance(run, State.SUBMITTED, note=job.status, job_name=job.name, job_url=job.studio_url or "",
                       step_seq=run.step_seq + 1, started_from=started_from, lineage=" → ".join(lineage))
    log.info("run %s: submitted job %s", run.run_id, job.name)
    return Outcome(Result.SUBMITTED, run.run_id, State.SUBMITTED, f"job {job.name}")


def _live_start(ctx: Context, run: Run) -> tuple[ModelRef | None, tuple[str, ...]]:
    """For a `start_from: live` run, the endpoint's live fine-tune and the lineage of this run's model: the
    base model, then each fine-tune trained on from it. (None, (base,)) starts from the base model."""
    if run.start_from != "live":
        return None, (run.base_model,)
    # The run serving the project's endpoint (an unhealthy one still holds its traffic): the live one first.
    endpoint = endpoint_of(ctx.settings, run_project(ctx.settings, run))
    live = sorted((r for r in ctx.ledger.find(state=SERVING, endpoint=endpoint)
                   if r.model_name and r.model_version), key=lambda r: r.state != State.LIVE)
    if not live:
        raise NoLiveModel(f"\"start_from\": \"live\" but endpoint {endpoint} serves no "
                          "fine-tune yet; train from the base model first (drop start_from)")
    source = live[0]
    if source.base_model != run.base_model:
        raise NoLiveModel(f"the live model {source.model_name}:{source.model_version} was tuned from "
                          f"{source.base_model}, not {run.base_model}; it cannot start this run")
    earlier = tuple(source.lineage.split(" → ")) if source.lineage else (source.base_model,)
    return (ModelRef(source.model_name, source.model_version),
            (*earlier, f"{source.model_name}:{source.model_version}"))

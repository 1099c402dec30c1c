"""The register step: the succeeded job's model becomes a registered version, with its lineage in tags."""

from __future__ import annotations

from shared.lifecycle import naming, rollback
from shared.lifecycle.context import Context, log
from shared.lifecycle.outcome import Outcome, Result
from shared.lifecycle.step_message import StepMessage
from shared.platforms.port import HASH_TAG, RUN_TAG, PlatformError
from shared.runs import Run, State


def register(ctx: Context, run: Run, message: StepMessage) -> Outcome:
    """Register the job's model (one version per job, so a retry finds it), then hand off the deploy step."""
    name = naming.model_name(run.base_model, run.run_name or run.upload.split("/", 1)[-1])
    tags = {RUN_TAG: run.run_id, HASH_TAG: run.content_sha256, "autopilot-job": run.job_name,
            "autopilot-upload": run.upload}
    try:
        model = ctx.call(ctx.platform.register, run.job_name, name, tags,
                         f"Fine-tuned by Fine-Tune Autopilot from {run.upload} (job {run.job_name})")
    except PlatformError as exc:
        return rollback.fail(ctx, run, f"registration failed: {exc}", "model.registration_failed",
                             f"model registration failed: {exc}")
    log.info("run %s: registered %s version %s", run.run_id, model.name, model.version)
    registered = ctx.ledger.advance(run, State.REGISTERED, note=f"{model.name}:{model.version}",
                                    model_name=model.name, model_version=model.version,
                                    step_seq=run.step_seq + 1)
    ctx.hand_off(registered)
    return Outcome(Result.ADVANCED, run.run_id, State.REGISTERED, f"{model.name}:{model.version}")

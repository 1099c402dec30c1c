"""After a job succeeds: register the model, deploy it beside the live one, smoke-test, switch traffic.

Blue/green: the new deployment starts at 0 % and is scored directly (gate.py); only when it passes does
traffic move to it and the old deployment go. Any failure deletes the new deployment and leaves the old one
serving.
"""

from __future__ import annotations

from shared.lifecycle import gate, naming
from shared.lifecycle.context import Context, log
from shared.platforms.port import HASH_TAG, MANAGED_TAG, RUN_TAG, EndpointInfo, ModelRef, PlatformError
from shared.runs import Run, State
from shared.staging import StagingError


def advance(ctx: Context, run: Run) -> Run:
    """Drive a succeeded run as far as it goes now: register, then deploy. Stops where another handler is."""
    while True:
        if run.state == State.SUCCEEDED:
            step = register(ctx, run)
        elif run.state in (State.REGISTERED, State.DEPLOYING):
            step = deploy(ctx, run)
        else:
            return run
        if step is None:
            return run
        run = step


def register(ctx: Context, run: Run) -> Run | None:
    """Register the job's model (deterministic per run, so a retry reuses the version)."""
    claimed = ctx.ledger.claim(run, "register", ctx.settings.step_timeout)
    if claimed is None:
        return None
    name = naming.model_name(run.base_model, run.upload.split("/", 1)[-1])
    tags = {RUN_TAG: run.run_id, HASH_TAG: run.content_sha256, "autopilot-job": run.job_name,
            "autopilot-upload": run.upload}
    try:
        model = ctx.call(ctx.platform.register, run.job_name, name, tags,
                         f"Fine-tuned by Fine-Tune Autopilot from {run.upload} (job {run.job_name})")
    except PlatformError as exc:
        failed = ctx.ledger.advance(claimed, State.FAILED, note="registration failed", error=str(exc))
        ctx.alert(failed, "model.registration_failed", "error", f"model registration failed: {exc}")
        return None
    log.info("run %s: registered %s version %s", run.run_id, model.name, model.version)
    return ctx.ledger.advance(claimed, State.REGISTERED, note=f"{model.name}:{model.version}",
                              model_name=model.name, model_version=model.version)


def deploy(ctx: Context, run: Run) -> Run | None:
    """New deployment at 0 % → smoke test and eval gate → 100 % → delete the old one; roll back on failure.

    Also the redeploy of a torn-down or rolled-back run: the model is still registered, so this is one step,
    and it goes back to the endpoint the run served on (the first deploy goes to ENDPOINT_NAME).
    """
    claimed = ctx.ledger.claim(run, "deploy", ctx.settings.step_timeout)
    if claimed is None:
        return None
    endpoint = run.endpoint or ctx.settings.endpoint_name
    deployment = naming.deployment_name(run.run_id)
    if claimed.state == State.DEPLOYING:
        run = claimed  # taking over a deploy whose handler died; every step below is idempotent
    else:
        run = ctx.ledger.advance(claimed, State.DEPLOYING, note=f"{endpoint}/{deployment}",
                                 hold=ctx.settings.step_timeout, endpoint=endpoint, deployment=deployment)
    model = ModelRef(run.model_name, run.model_version)
    tags = {MANAGED_TAG: "true", RUN_TAG: run.run_id}
    try:
        # Refused before a deployment starts: a candidate worse than its base model is not worth serving.
        checked = gate.check_against_base(ctx, ctx.call(ctx.platform.job_status, run.job_name).metrics)
        log.info("run %s: base-model gate passed (%s)", run.run_id, checked)
        live = _serving(ctx.platform.get_endpoint(endpoint), deployment)
        info = ctx.call(ctx.platform.deploy, model, endpoint, deployment, tags)
        cases = gate.test_cases(ctx, run.test_uri, ctx.settings.smoke_conversations)
        verdict = gate.check(ctx, endpoint, deployment, live, cases)
        ctx.call(ctx.platform.set_traffic, endpoint, {deployment: 100})
        for old in (d for d in info.deployments if d != deployment):
            ctx.call(ctx.platform.delete_deployment, endpoint, old)
    except (PlatformError, StagingError, gate.GateFailed) as exc:
        return _roll_back(ctx, run, endpoint, deployment, exc)
    _retire_superseded(ctx, run, endpoint)
    current = ctx.platform.get_endpoint(endpoint)
    note = f"{endpoint}/{deployment} at 100 %; ROUGE-L {verdict.score:.3f}" + (
        f" vs live {verdict.baseline:.3f}" if verdict.baseline is not None else "")
    done = ctx.ledger.advance(run, State.LIVE, note=note, scoring_uri=current.scoring_uri if current else "",
                              smoke_reply=verdict.replies[0][:200], eval_rouge_l=round(verdict.score, 4),
                              baseline_rouge_l=verdict.baseline, replaced=live or "")
    log.info("run %s: live on %s/%s", run.run_id, endpoint, deployment)
    return done


def _serving(endpoint: EndpointInfo | None, new: str) -> str | None:
    """The deployment taking the endpoint's traffic now (the one the new deployment must beat)."""
    if endpoint is None:
        return None
    serving = [(share, name) for name, share in endpoint.traffic.items() if share > 0 and name != new]
    return max(serving)[1] if serving else None


def _roll_back(ctx: Context, run: Run, endpoint: str, deployment: str, exc: Exception) -> Run | None:
    try:
        ctx.call(ctx.platform.delete_deployment, endpoint, deployment)
    except PlatformError as cleanup:
        log.error("run %s: could not delete failed deployment %s: %s", run.run_id, deployment, cleanup)
    rolled = ctx.ledger.advance(run, State.ROLLED_BACK, note=str(exc)[:300], error=str(exc)[:1000])
    kind = f"deploy.{exc.kind}_gate_failed" if isinstance(exc, gate.GateFailed) else "deploy.failed"
    ctx.alert(rolled, kind, "error", f"deployment {endpoint}/{deployment} failed and was rolled back "
              f"(the previous deployment keeps serving): {exc}")
    return None  # the chain stops here


def _retire_superseded(ctx: Context, run: Run, endpoint: str) -> None:
    """The run that was live on this endpoint is now replaced; record it as torn down."""
    for earlier in ctx.ledger.find(state=State.LIVE, endpoint=endpoint):
        if earlier.run_id != run.run_id:
            ctx.ledger.advance(earlier, State.TORN_DOWN, note=f"superseded by {run.run_id}")

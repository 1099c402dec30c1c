"""After a job succeeds: register the model, deploy it beside the live one, smoke-test, switch traffic.

Blue/green: the new deployment starts at 0 % and is scored directly; only when it answers does traffic move
to it and the old deployment go. Any failure deletes the new deployment and leaves the old one serving.
"""

from __future__ import annotations

import json
from typing import Any

from shared.ledger import Run, State
from shared.lifecycle import naming
from shared.lifecycle.context import Context, log
from shared.platforms.port import HASH_TAG, MANAGED_TAG, RUN_TAG, ModelRef, PlatformError


class SmokeTestFailed(Exception):
    """The new deployment did not answer a test conversation sensibly."""


def advance(ctx: Context, run: Run) -> Run:
    """Drive a succeeded run as far as it goes now: register, then deploy. Stops where another handler is."""
    while True:
        if run.state == State.SUCCEEDED:
            step = register(ctx, run)
        elif run.state == State.REGISTERED:
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
    name = naming.model_name(str(run.fields.get("base_model", "")), run.upload.split("/", 1)[-1])
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
    """New deployment at 0 % → smoke test → 100 % → delete the old one; roll back on any failure.

    Also the redeploy of a torn-down or rolled-back run: the model is still registered, so this is one step.
    """
    claimed = ctx.ledger.claim(run, "deploy", ctx.settings.step_timeout)
    if claimed is None:
        return None
    endpoint = str(run.fields.get("endpoint_name") or ctx.settings.endpoint_name)
    deployment = naming.deployment_name(run.run_id)
    run = ctx.ledger.advance(claimed, State.DEPLOYING, note=f"{endpoint}/{deployment}",
                             hold=ctx.settings.step_timeout, endpoint=endpoint, deployment=deployment)
    model = ModelRef(run.model_name, run.model_version)
    tags = {MANAGED_TAG: "true", RUN_TAG: run.run_id}
    try:
        info = ctx.call(ctx.platform.deploy, model, endpoint, deployment, tags)
        reply = smoke_test(ctx, run, endpoint, deployment)
        previous = [d for d in info.deployments if d != deployment]
        ctx.call(ctx.platform.set_traffic, endpoint, {deployment: 100})
        for old in previous:
            ctx.call(ctx.platform.delete_deployment, endpoint, old)
    except (PlatformError, SmokeTestFailed) as exc:
        return _roll_back(ctx, run, endpoint, deployment, exc)
    _retire_superseded(ctx, run, endpoint)
    current = ctx.platform.get_endpoint(endpoint)
    live = ctx.ledger.advance(run, State.LIVE, note=f"{endpoint}/{deployment} at 100 %",
                              scoring_uri=current.scoring_uri if current else "", smoke_reply=reply[:200])
    log.info("run %s: live on %s/%s", run.run_id, endpoint, deployment)
    return live


def smoke_test(ctx: Context, run: Run, endpoint: str, deployment: str) -> str:
    """Score the first test conversation (without its last assistant turn) on the new deployment."""
    conversation = first_test_prompt(ctx, str(run.fields["test_uri"]))
    payload = seed_payload(conversation, ctx.settings.smoke_max_new_tokens)
    answer = ctx.call(ctx.platform.score, endpoint, payload, deployment)
    reply = _reply_text(answer)
    if not reply.strip():
        raise SmokeTestFailed(f"deployment {deployment} answered an empty reply: {str(answer)[:200]}")
    return reply


def seed_payload(messages: list[dict[str, Any]], max_new_tokens: int = 16) -> dict[str, Any]:
    """The seed's scoring payload, which Azure ML's MLflow chat deployments accept."""
    return {"input_data": {"input_string": messages,
                           "parameters": {"temperature": 0.7, "top_p": 0.9, "do_sample": True,
                                          "max_new_tokens": max_new_tokens}},
            "params": {}}


def first_test_prompt(ctx: Context, test_uri: str) -> list[dict[str, Any]]:
    """The test split's first conversation, cut before its last assistant message."""
    from shared.storage import split_blob_url

    container, name = split_blob_url(test_uri)
    stream = ctx.blobs.get_blob_client(container, name).download_blob()
    buffer = b""
    for chunk in stream.chunks():
        buffer += chunk
        if b"\n" in buffer:
            break
    messages: list[dict[str, Any]] = json.loads(buffer.split(b"\n", 1)[0])["messages"]
    last_assistant = max(i for i, m in enumerate(messages) if m.get("role") == "assistant")
    return messages[:last_assistant] or messages[:1]


def _reply_text(answer: Any) -> str:
    if isinstance(answer, dict):
        answer = answer.get("output", answer)
    if isinstance(answer, list):
        answer = answer[0] if answer else ""
    return answer if isinstance(answer, str) else ""


def _roll_back(ctx: Context, run: Run, endpoint: str, deployment: str, exc: Exception) -> Run | None:
    try:
        ctx.call(ctx.platform.delete_deployment, endpoint, deployment)
    except PlatformError as cleanup:
        log.error("run %s: could not delete failed deployment %s: %s", run.run_id, deployment, cleanup)
    rolled = ctx.ledger.advance(run, State.ROLLED_BACK, note=str(exc)[:300], error=str(exc)[:1000])
    kind = "deploy.smoke_failed" if isinstance(exc, SmokeTestFailed) else "deploy.failed"
    ctx.alert(rolled, kind, "error", f"deployment {endpoint}/{deployment} failed and was rolled back "
              f"(the previous deployment keeps serving): {exc}")
    return None  # the chain stops here


def _retire_superseded(ctx: Context, run: Run, endpoint: str) -> None:
    """The run that was live on this endpoint is now replaced; record it as torn down."""
    for earlier in ctx.ledger.find(endpoint=endpoint, state=State.LIVE.value):
        if earlier.run_id != run.run_id:
            ctx.ledger.advance(earlier, State.TORN_DOWN, note=f"superseded by {run.run_id}")

"""on_upload: a new blob in the incoming container becomes a submitted fine-tune job, or is quarantined.

The blob is streamed once: validation, stats, content hash and the train/test split happen together, and the
staged files are written block by block as rows go by. Bad data never reaches a GPU.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from shared.dataset import BlockBlobSink, Limits, Report, scan
from shared.ledger import Run, State
from shared.lifecycle import naming
from shared.lifecycle.context import Context, log
from shared.platforms.port import HASH_TAG, RUN_TAG, JobSpec, PlatformError
from shared.quarantine import quarantine


@dataclass(frozen=True)
class Upload:
    """A blob that arrived in the incoming container."""

    container: str
    name: str

    @property
    def path(self) -> str:
        return f"{self.container}/{self.name}"


def on_upload(ctx: Context, upload: Upload) -> str:
    """Validate, split, stage and submit the upload; returns a one-line outcome for the log."""
    settings = ctx.settings
    if upload.container != settings.incoming_container:
        return f"ignored: {upload.container} is not the incoming container"
    blob = ctx.blobs.get_blob_client(upload.container, upload.name)
    try:
        props = blob.get_blob_properties()
    except ResourceNotFoundError:
        return "ignored: the blob is gone (already quarantined or deleted)"
    etag = str(props.etag).strip('"')
    known = ctx.ledger.find(upload=upload.path, upload_etag=etag)
    if known:
        return resume(ctx, known[0])

    key = naming.upload_key(upload.container, upload.name, etag)
    staged = ctx.blobs.get_container_client(settings.staged_container)
    with contextlib.suppress(ResourceExistsError):  # concurrent deliveries race to create it
        staged.create_container()
    train_blob = staged.get_blob_client(f"{key}/train.jsonl")
    test_blob = staged.get_blob_client(f"{key}/test.jsonl")
    train, test = BlockBlobSink(train_blob), BlockBlobSink(test_blob)
    received = ctx.ledger.now()
    # scan() commits both staged blobs when the data is valid and aborts them otherwise.
    report = scan(blob.download_blob().chunks(), _limits(ctx), train, test)
    if not report.valid:
        return _reject(ctx, upload, etag, key, report)

    forced = str((props.metadata or {}).get("force", "")).lower() == "true"
    run = Run(
        run_id=naming.run_id(report.content_sha256, key if forced else None),
        state=State.VALIDATED,
        content_sha256=report.content_sha256,
        upload=upload.path,
        upload_etag=etag,
        fields={"rows": report.rows, "train_rows": report.train_rows, "test_rows": report.test_rows,
                "estimated_tokens": report.estimated_tokens, "base_model": settings.base_model,
                "train_uri": train_blob.url, "test_uri": test_blob.url, "forced": forced},
        history=({"state": State.RECEIVED.value, "at": received.isoformat()},),
    )
    created = ctx.ledger.create(run, note=f"{report.rows} rows")
    if created is None:
        earlier = ctx.ledger.get(run.run_id)
        if earlier is not None and earlier.upload == upload.path and earlier.upload_etag == etag:
            return resume(ctx, earlier)  # the same upload delivered twice
        return _duplicate(ctx, run, key)
    return submit(ctx, created)


def resume(ctx: Context, run: Run) -> str:
    """A repeated delivery of an upload we know: finish its submit if it was left half-done."""
    if run.state == State.VALIDATED:
        return submit(ctx, run)
    return f"already handled: run {run.run_id} is {run.state}"


def submit(ctx: Context, run: Run) -> str:
    """Claim the submit step and start the job (its name is deterministic, so a retry finds it)."""
    claimed = ctx.ledger.claim(run, "submit", ctx.settings.step_timeout)
    if claimed is None:
        return f"run {run.run_id}: another handler is submitting it"
    params = {**ctx.settings.finetune_overrides, **claimed.fields.get("overrides", {})}
    spec = JobSpec(
        name=naming.job_name(claimed.run_id, int(claimed.fields.get("attempt", 1))),
        run_id=claimed.run_id,
        display_name=f"autopilot {claimed.run_id}",
        base_model=str(claimed.fields.get("base_model", "")),
        train_uri=str(claimed.fields["train_uri"]),
        test_uri=str(claimed.fields["test_uri"]),
        parameters=params,
        tags={RUN_TAG: claimed.run_id, HASH_TAG: claimed.content_sha256},
    )
    try:
        job = ctx.call(ctx.platform.submit, spec)
    except PlatformError as exc:
        failed = ctx.ledger.advance(claimed, State.FAILED, note="submit failed", error=str(exc))
        ctx.alert(failed, "job.submit_failed", "error", f"the fine-tune job could not be submitted: {exc}")
        return f"run {run.run_id}: submit failed"
    ctx.ledger.advance(claimed, State.SUBMITTED, note=job.status, job_name=job.name,
                       job_url=job.studio_url or "")
    log.info("run %s: submitted job %s", run.run_id, job.name)
    return f"run {run.run_id}: submitted job {job.name}"


def _limits(ctx: Context) -> Limits:
    s = ctx.settings
    return Limits(test_fraction=s.test_fraction, test_rows_max=s.test_rows_max)


def _reject(ctx: Context, upload: Upload, etag: str, key: str, report: Report) -> str:
    """Quarantine the upload with its report (copy verified before the original goes) and alert once."""
    location = quarantine(ctx.blobs, upload.container, upload.name, ctx.settings.rejected_container, report)
    run = Run(run_id=f"rej-{key}", state=State.REJECTED, content_sha256=report.content_sha256,
              upload=upload.path, upload_etag=etag,
              fields={"rows": report.rows, "error_count": report.error_count, "quarantined_to": location,
                      "errors": report.to_dict()["errors"][:5]})
    created = ctx.ledger.create(run, note=f"{report.error_count} errors") or ctx.ledger.get(run.run_id)
    if created is not None:
        first = report.errors[0]
        ctx.alert(created, "upload.rejected", "error",
                  f"{upload.path} was rejected with {report.error_count} error(s) and moved to {location}; "
                  f"first: line {first.line}: {first.message}")
    return f"rejected: {report.error_count} errors; quarantined to {location}"


def _duplicate(ctx: Context, run: Run, key: str) -> str:
    record = Run(run_id=f"dup-{key}", state=State.DUPLICATE, content_sha256=run.content_sha256,
                 upload=run.upload, upload_etag=run.upload_etag, fields={"duplicate_of": run.run_id})
    ctx.ledger.create(record, note=f"same content as {run.run_id}")
    return f"duplicate of run {run.run_id}: no new job (set blob metadata force=true to retrain)"

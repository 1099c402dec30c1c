"""on_upload: a new blob in the incoming container becomes a submitted fine-tune job, or is quarantined.

The blob is streamed once: validation, stats, content hash and the train/test split happen together, and the
staged files are written block by block as rows go by. Bad data never reaches a GPU.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from shared.dataset import BlockBlobSink, Limits, Report, Sink, scan
from shared.ledger import Run, State
from shared.lifecycle import manifests, naming
from shared.lifecycle.context import Context, log
from shared.lifecycle.manifests import RunPlan, Upload
from shared.platforms.port import HASH_TAG, RUN_TAG, JobSpec, PlatformError
from shared.quarantine import quarantine


@dataclass(frozen=True)
class Staged:
    """The outcome of streaming a run's files into the staged container."""

    report: Report  # the train file's report (the combined counts are in `fields`)
    fields: dict[str, Any]
    content_sha256: str
    rejected: tuple[Upload, Report] | None = None


def on_upload(ctx: Context, upload: Upload) -> str:
    """Validate, split, stage and submit the upload; returns a one-line outcome for the log."""
    if upload.container != ctx.settings.incoming_container:
        return f"ignored: {upload.container} is not the incoming container"
    try:
        plan = manifests.plan_for(ctx, upload)
    except manifests.ManifestRejected as exc:
        return _bad_manifest(ctx, upload, str(exc))
    except ResourceNotFoundError:
        return "ignored: the blob is gone (already quarantined or deleted)"
    if isinstance(plan, str):
        return plan
    blob = ctx.blobs.get_blob_client(plan.train.container, plan.train.name)
    try:
        props = blob.get_blob_properties()
    except ResourceNotFoundError:
        return "ignored: the blob is gone (already quarantined or deleted)"
    etag = str(props.etag).strip('"')
    known = ctx.ledger.find(upload=plan.train.path, upload_etag=etag)
    if known:
        return resume(ctx, known[0])

    key = naming.upload_key(plan.train.container, plan.train.name, etag + plan.fingerprint)
    received = ctx.ledger.now()
    staged = _stage(ctx, plan, key)
    if staged.rejected is not None:
        bad, report = staged.rejected
        return _reject(ctx, bad, etag, key, report)

    forced = str((props.metadata or {}).get("force", "")).lower() == "true"
    run = Run(
        run_id=naming.run_id(staged.content_sha256, key if forced else None),
        state=State.VALIDATED,
        content_sha256=staged.content_sha256,
        upload=plan.train.path,
        upload_etag=etag,
        fields={**staged.fields, "base_model": plan.base_model or ctx.settings.base_model, "forced": forced,
                "overrides": dict(plan.overrides), "manifest": plan.manifest or "",
                "test_upload": plan.test.path if plan.test else ""},
        history=({"state": State.RECEIVED.value, "at": received.isoformat()},),
    )
    created = ctx.ledger.create(run, note=f"{staged.fields['rows']} rows")
    if created is None:
        earlier = ctx.ledger.get(run.run_id)
        if earlier is not None and earlier.upload == plan.train.path and earlier.upload_etag == etag:
            return resume(ctx, earlier)  # the same upload delivered twice
        return _duplicate(ctx, run, key)
    return submit(ctx, created)


def _stage(ctx: Context, plan: RunPlan, key: str) -> Staged:
    """Stream the train file (split, unless a test file is named) and the test file into `staged/<key>/`."""
    staged = ctx.blobs.get_container_client(ctx.settings.staged_container)
    with contextlib.suppress(ResourceExistsError):  # concurrent deliveries race to create it
        staged.create_container()
    train_blob = staged.get_blob_client(f"{key}/train.jsonl")
    test_blob = staged.get_blob_client(f"{key}/test.jsonl")
    limits = _limits(ctx, plan)
    read = ctx.blobs.get_blob_client
    if plan.test is None:
        # scan() commits both staged blobs when the data is valid and aborts them otherwise.
        report = scan(read(plan.train.container, plan.train.name).download_blob().chunks(), limits,
                      BlockBlobSink(train_blob), BlockBlobSink(test_blob))
        fields: dict[str, Any] = {"rows": report.rows, "train_rows": report.train_rows,
                                  "test_rows": report.test_rows}
        sha = report.content_sha256
        test_report = report
    else:
        report = scan(read(plan.train.container, plan.train.name).download_blob().chunks(), limits,
                      *OneFile(BlockBlobSink(train_blob)).sides())
        test_report = scan(read(plan.test.container, plan.test.name).download_blob().chunks(), limits,
                           *OneFile(BlockBlobSink(test_blob)).sides())
        fields = {"rows": report.rows + test_report.rows, "train_rows": report.rows,
                  "test_rows": test_report.rows}
        sha = hashlib.sha256(f"{report.content_sha256}:{test_report.content_sha256}".encode()).hexdigest()
    if plan.fingerprint:  # same data, other settings: another run, not a duplicate
        sha = hashlib.sha256(f"{sha}:{plan.fingerprint}".encode()).hexdigest()
    rejected = ((plan.train, report) if not report.valid else
                (plan.test, test_report) if plan.test and not test_report.valid else None)
    fields |= {"estimated_tokens": report.estimated_tokens, "train_uri": train_blob.url,
               "test_uri": test_blob.url, "warnings": report.warning_count}
    return Staged(report, fields, sha, rejected)


class OneFile:
    """Both sides of a scan's split written to one staged file (a file that is all train, or all test)."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self._open = 2
        self._aborted = False

    def sides(self) -> tuple[Sink, Sink]:
        return _Side(self), _Side(self)

    def _close(self, abort: bool) -> None:
        self._aborted |= abort
        self._open -= 1
        if self._open == 0:
            (self.sink.abort if self._aborted else self.sink.close)()


class _Side:
    def __init__(self, file: OneFile) -> None:
        self.file = file

    def write(self, data: bytes) -> None:
        self.file.sink.write(data)

    def close(self) -> None:
        self.file._close(abort=False)

    def abort(self) -> None:
        self.file._close(abort=True)


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
        display_name=naming.model_name(str(claimed.fields.get("base_model", "")), claimed.upload),
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


def _limits(ctx: Context, plan: RunPlan) -> Limits:
    s = ctx.settings
    epochs = plan.overrides.get("num_train_epochs") or s.finetune_overrides.get("num_train_epochs") or 1
    return Limits(max_line_bytes=s.max_line_bytes, max_errors_listed=s.report_max_errors,
                  token_limit_per_conversation=s.conversation_token_limit, test_fraction=s.test_fraction,
                  test_rows_max=s.test_rows_max, max_tokens_per_run=s.max_tokens_per_run,
                  epochs=max(1, round(float(epochs))))


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


def _bad_manifest(ctx: Context, upload: Upload, problem: str) -> str:
    """A manifest that cannot start a run: record it and alert once; no data is touched."""
    key = naming.upload_key(upload.container, upload.name, "manifest")
    run = Run(run_id=f"rej-{key}", state=State.REJECTED, upload=upload.path, fields={"error": problem})
    created = ctx.ledger.create(run, note="bad manifest") or ctx.ledger.get(run.run_id)
    if created is not None:
        ctx.alert(created, "upload.rejected", "error", f"manifest {upload.path} was rejected: {problem}")
    return f"rejected manifest: {problem}"


def _duplicate(ctx: Context, run: Run, key: str) -> str:
    record = Run(run_id=f"dup-{key}", state=State.DUPLICATE, content_sha256=run.content_sha256,
                 upload=run.upload, upload_etag=run.upload_etag, fields={"duplicate_of": run.run_id})
    ctx.ledger.create(record, note=f"same content as {run.run_id}")
    return f"duplicate of run {run.run_id}: no new job (set blob metadata force=true to retrain)"

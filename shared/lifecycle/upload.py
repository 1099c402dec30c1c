"""on_upload: a new blob in the incoming container becomes a validated run whose submit step is queued, or
is quarantined (the submit step itself is submit.py).

The blob is streamed once: validation, stats, content hash and the train/test split happen together, and the
staged files are written block by block as rows go by. Bad data never reaches a GPU. Submitting the job
(several calls to the platform) is the step queue's work, not the blob trigger's.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from shared.dataset import Limits, Parallelism, Report, Sink, scan_upload
from shared.dataset.overlap import LineDigests
from shared.finetune import ParameterError, resolve_parameters
from shared.lifecycle import naming, run_plan
from shared.lifecycle.context import Context, alert_project, log
from shared.lifecycle.outcome import Outcome, Result
from shared.lifecycle.run_plan import RunPlan
from shared.names import name_problem, printable
from shared.platforms.endpoint_names import project_name
from shared.platforms.port import BaseModelRefused
from shared.projects import ProjectNameError, endpoint_of, is_settings_file, project_of
from shared.runs import Run, State
from shared.staging import BlobInfo, BlobMissing, BlobReader, BlobRef, open_blob, quarantine


@dataclass(frozen=True)
class Staged:
    """The outcome of streaming a run's files into the staged container."""

    report: Report  # the train file's report (the combined counts are in `counts`)
    counts: dict[str, Any]  # the run's dataset fields: rows, train/test rows, tokens, warnings, staged URLs
    content_sha256: str
    rejected: tuple[BlobRef, Report] | None = None


_GONE = "the blob is gone (already quarantined or deleted)"


def on_upload(ctx: Context, upload: BlobRef) -> Outcome:
    """Validate, split and stage the upload, then queue its submit step (or quarantine it)."""
    if upload.container != ctx.settings.incoming_container:
        return Outcome(Result.IGNORED, detail=f"{upload.container} is not the incoming container")
    if (problem := name_problem(upload.name)) is not None:
        return _bad_name(ctx, upload, problem)
    project = project_of(ctx.settings, upload.name)
    try:
        endpoint_of(ctx.settings, project)
    except ProjectNameError as exc:
        return _bad_name(ctx, upload, str(exc))
    if is_settings_file(upload.name):
        return _project_file_arrived(ctx, upload, project)
    try:
        plan = run_plan.plan_for(ctx, upload)
    except run_plan.WaitEnded as ended:
        return Outcome(Result.ALREADY_HANDLED, ended.record.run_id, State.REJECTED, str(ended))
    except run_plan.DataRefused as exc:
        return _refused_data(ctx, upload, str(exc))
    except run_plan.ManifestRejected as exc:
        return _bad_manifest(ctx, upload, str(exc))
    except BlobMissing:
        return Outcome(Result.IGNORED, detail=_GONE)
    if isinstance(plan, run_plan.Waiting):
        return run_plan.wait(ctx, plan)
    try:
        settings_file = run_plan.project_file(ctx, project)
        if settings_file is not None:
            plan = run_plan.with_project(plan, settings_file[2], *settings_file[:2])
    except run_plan.ManifestRejected as exc:
        return _refused_data(ctx, upload, f"{upload.path} is not trained: {exc}")
    except BlobMissing:
        return Outcome(Result.IGNORED, detail=_GONE)
    chosen = settings_file[2] if settings_file is not None else None
    info = ctx.staging.properties(plan.train)
    if info is None:
        return Outcome(Result.IGNORED, detail=_GONE)
    etag = info.etag.strip('"')
    known = ctx.ledger.find(upload=plan.train.path, upload_etag=etag)
    if known:
        return resume(ctx, known[0])
    if not run_plan.arrived(ctx, plan):  # the manifest gave up waiting just before its last file came
        return _refused_data(ctx, upload, f"{upload.path} is not trained: its manifest {plan.manifest} "
                             "stopped waiting (MANIFEST_WAIT); upload the manifest again, then its files")

    key = naming.upload_key(plan.train.container, plan.train.name, etag + plan.fingerprint)
    try:  # the app's own FINETUNE_* settings under the same rules as a manifest's (checked on its arrival)
        resolve_parameters({}, ctx.settings.finetune_overrides)
    except ParameterError as exc:
        return _refused_settings(ctx, plan.train, etag, key, str(exc))
    base_model = plan.base_model or ctx.settings.base_model
    try:  # before anything is staged: a base model the platform cannot fine-tune wastes no copy and no job
        ctx.call(ctx.platform.check_base_model, base_model)
    except BaseModelRefused as exc:
        return _refused_base_model(ctx, plan.train, etag, key, base_model, str(exc))
    received = ctx.ledger.now()
    # Read exactly the version whose ETag the run records: an overwrite meanwhile fails the read.
    staged = _stage(ctx, plan, key, BlobReader(ctx.staging, plan.train, info.etag, info.size))
    if staged.rejected is not None:
        bad, report = staged.rejected
        return _reject(ctx, bad, etag, key, report)

    forced = str(info.metadata.get("force", "")).lower() == "true"
    identity = staged.content_sha256  # what a run is keyed by: its content, and (but one) its project
    if project != project_name(ctx.settings):  # the same data in another project trains another model
        identity = hashlib.sha256(f"{identity}:project={project}".encode()).hexdigest()
    run = Run(
        run_id=naming.run_id(identity, key if forced else None),
        state=State.VALIDATED,
        project=project,
        idle_ttl_seconds=chosen.idle_ttl_seconds if chosen else None,
        eval_gate_max_drop=chosen.eval_gate_max_drop if chosen else None,
        smoke_conversations=chosen.smoke_conversations if chosen else None,
        content_sha256=staged.content_sha256,
        upload=plan.train.path,
        upload_etag=etag,
        base_model=base_model,
        forced=forced,
        overrides=dict(plan.overrides),
        manifest=plan.manifest or "",
        run_name=plan.run_name,
        start_from=plan.start_from,
        tags=plan.tags,
        test_upload=plan.test.path if plan.test else "",
        uploaded_at=_uploaded_at(ctx, plan, info),
        history=({"state": State.RECEIVED.value, "at": received.isoformat()},),
        **staged.counts,
    )
    created = ctx.ledger.create(run, note=f"{staged.counts['rows']} rows" + _overlap_note(staged.counts))
    if created is None:
        earlier = ctx.ledger.get(run.run_id)
        if earlier is not None and earlier.upload == plan.train.path and earlier.upload_etag == etag:
            return resume(ctx, earlier)  # the same upload delivered twice
        return _duplicate(ctx, run, key)
    ctx.hand_off(created)
    return Outcome(Result.QUEUED, created.run_id, State.VALIDATED, f"{created.rows} rows; submit queued")


def _stage(ctx: Context, plan: RunPlan, key: str, train: BlobReader) -> Staged:
    """Stream the train file (split, unless a test file is named) and the test file into `staged/<key>/`."""
    train_file = BlobRef(ctx.settings.staged_container, f"{key}/train.jsonl")
    test_file = BlobRef(ctx.settings.staged_container, f"{key}/test.jsonl")
    limits, parallel = _limits(ctx, plan), Parallelism(workers=ctx.settings.ingest_workers)

    def scan(upload: BlobReader, train: Sink, test: Sink) -> Report:
        # Ranged reads through the staging port, scanned on every core; the format follows the upload's
        # name. Commits the sinks when the data is valid and aborts them otherwise.
        return scan_upload(upload, limits, train, test, parallel=parallel)

    if plan.test is None:
        report = scan(train, ctx.staging.writer(train_file), ctx.staging.writer(test_file))
        counts: dict[str, Any] = {"rows": report.rows, "train_rows": report.train_rows,
                                  "test_rows": report.test_rows}
        sha = report.content_sha256
        test_report = report
    else:
        # Each file is one side: all of the train file trains, all of the test file tests. The test file
        # goes first, so the training rows can be held against its (few) conversations as they pass.
        whole = dataclasses.replace(limits, split=False)
        limits = dataclasses.replace(whole, min_training_rows=0, max_tokens_per_run=None)
        held = LineDigests(ctx.staging.writer(test_file))
        test_report = scan(open_blob(ctx.staging, plan.test), *OneFile(held).sides())
        limits = whole
        trained = LineDigests(ctx.staging.writer(train_file), against=held.seen)
        report = scan(train, *OneFile(trained).sides())
        counts = {"rows": report.rows + test_report.rows, "train_rows": report.rows,
                  "test_rows": test_report.rows, "test_in_train": trained.shared}
        sha = hashlib.sha256(f"{report.content_sha256}:{test_report.content_sha256}".encode()).hexdigest()
    if plan.fingerprint:  # same data, other settings: another run, not a duplicate
        sha = hashlib.sha256(f"{sha}:{plan.fingerprint}".encode()).hexdigest()
    rejected = ((plan.train, report) if not report.valid else
                (plan.test, test_report) if plan.test and not test_report.valid else None)
    counts |= {"estimated_tokens": report.estimated_tokens, "train_uri": ctx.staging.url(train_file),
               "test_uri": ctx.staging.url(test_file), "warnings": report.warning_count,
               **screened(report, test_report if plan.test else None)}
    return Staged(report, counts, sha, rejected)


def screened(report: Report, test_report: Report | None = None) -> dict[str, Any]:
    """The run's screening fields: the policy its upload was scanned under, and the findings by kind (of
    the test file too, when a manifest names one)."""
    found = dict(report.sensitive.get("by_kind", {}))
    for kind, n in (test_report.sensitive.get("by_kind", {}) if test_report else {}).items():
        found[kind] = found.get(kind, 0) + n
    return {"screening": dict(report.sensitive.get("policy", {})), "sensitive": found}


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

    def write(self, data: bytes | memoryview) -> None:
        self.file.sink.write(data)

    def close(self) -> None:
        self.file._close(abort=False)

    def abort(self) -> None:
        self.file._close(abort=True)


def on_upload_failed(ctx: Context, upload: BlobRef, etag: str, reason: str) -> Outcome:
    """An upload its blob trigger gave up on (its message poisoned after maxDequeueCount failures) or that no
    trigger ever handled: record it failed and alert once, unless a run already accounts for this version."""
    etag = etag.strip('"')
    if upload.container != ctx.settings.incoming_container:
        return Outcome(Result.IGNORED, detail=f"{upload.container} is not the incoming container")
    known = ctx.ledger.find(upload=upload.path, upload_etag=etag) or ctx.ledger.find(test_upload=upload.path)
    if known:
        return Outcome(Result.ALREADY_HANDLED, known[0].run_id, known[0].state, "the upload has a run")
    shown = f"{upload.container}/{printable(upload.name)}"
    run = Run(run_id=f"lost-{naming.upload_key(upload.container, upload.name, etag)}", state=State.FAILED,
              project=project_of(ctx.settings, upload.name), upload=shown, upload_etag=etag, error=reason)
    created = ctx.ledger.create(run, note="upload not processed") or ctx.ledger.get(run.run_id)
    if created is not None:
        ctx.alert(created, "upload.failed", "error",
                  f"{shown} was not processed: {reason}. Upload it again (or `autopilot drop --force`).")
    return Outcome(Result.FAILED, run.run_id, State.FAILED, reason)


def resume(ctx: Context, run: Run) -> Outcome:
    """A repeated delivery of an upload we know: queue its submit again if it was left before it (the first
    delivery's handler may have died between recording the run and queueing the step; a repeat is dropped)."""
    if run.state == State.VALIDATED:
        ctx.hand_off(run)
        return Outcome(Result.ALREADY_HANDLED, run.run_id, run.state, "submit queued again")
    return Outcome(Result.ALREADY_HANDLED, run.run_id, run.state)


def _overlap_note(counts: dict[str, Any]) -> str:
    """Said on the run when its held-out test file repeats training conversations (its gate is then weak)."""
    shared = counts.get("test_in_train") or 0
    if not shared:
        return ""
    log.warning("%d of %d test conversations are also in the training file", shared, counts["test_rows"])
    return (f"; {shared} of {counts['test_rows']} test conversations are also in the training file: "
            "they are evaluated on what was trained")


def _limits(ctx: Context, plan: RunPlan) -> Limits:
    """Settings' limits with the manifest's, and what the platform's fine-tune honours of the chat format:
    weight-0 turns and tool-calling data it cannot honour are refused by line before anything is staged (a
    manifest's `train_weight_zero_turns` accepts training weight-0 turns as any other)."""
    s = ctx.settings
    epochs = plan.overrides.get("num_train_epochs") or s.finetune_overrides.get("num_train_epochs") or 1
    limits = plan.limits(Limits.from_settings(s, epochs=max(1, round(float(epochs)))))
    support = ctx.platform.training_support()
    accepted = bool(plan.spec and plan.spec.training.train_weight_zero_turns)
    weights: Literal["honour", "refuse", "train"] = (
        "honour" if support.per_turn_weights else "train" if accepted else "refuse")
    return dataclasses.replace(limits, weights=weights, tool_calling=support.tool_calling)


def _reject(ctx: Context, upload: BlobRef, etag: str, key: str, report: Report) -> Outcome:
    """Quarantine the upload with its report (copy verified before the original goes) and alert once."""
    location = quarantine(ctx.staging, upload, ctx.settings.rejected_container, report)
    errors = tuple(report.to_dict()["errors"][:5])
    run = Run(run_id=f"rej-{key}", state=State.REJECTED, content_sha256=report.content_sha256,
              project=project_of(ctx.settings, upload.name), upload=upload.path, upload_etag=etag,
              rows=report.rows, error_count=report.error_count,
              quarantined_to=location, errors=errors, **screened(report))
    created = ctx.ledger.create(run, note=f"{report.error_count} errors") or ctx.ledger.get(run.run_id)
    if created is not None:
        first = report.errors[0]
        where = f"line {first.line}: " if first.line is not None else ""  # a whole-file error has no line
        ctx.alert(created, "upload.rejected", "error",
                  f"{upload.path} was rejected with {report.error_count} error(s) and moved to {location}; "
                  f"first: {where}{first.message}")
    return Outcome(Result.REJECTED, run.run_id, State.REJECTED,
                   f"{report.error_count} errors; quarantined to {location}")


def _refuse(ctx: Context, run: Run, note: str, alert_class: str, summary: str, detail: str) -> Outcome:
    """Record a rejected run (its id is deterministic, so a redelivery finds it) and alert once."""
    run = dataclasses.replace(run, project=run.project or alert_project(ctx.settings, run))
    created = ctx.ledger.create(run, note=note) or ctx.ledger.get(run.run_id)
    if created is not None:
        ctx.alert(created, alert_class, "error", summary)
    return Outcome(Result.REJECTED, run.run_id, State.REJECTED, detail)


def _bad_manifest(ctx: Context, upload: BlobRef, problem: str) -> Outcome:
    """A manifest that cannot start a run: record it and alert once; no data is touched."""
    key = naming.upload_key(upload.container, upload.name, "manifest")
    run = Run(run_id=f"rej-{key}", state=State.REJECTED, upload=upload.path, manifest=upload.name,
              error=problem)
    return _refuse(ctx, run, "bad manifest", "upload.rejected",
                   f"manifest {upload.path} was rejected: {problem}", f"manifest: {problem}")


def _project_file_arrived(ctx: Context, upload: BlobRef, project: str) -> Outcome:
    """A project's settings file: checked now (a bad key is refused by name, with one alert), and read again
    by each later upload of the project; it starts no run itself."""
    try:
        run_plan.project_file(ctx, project)
    except run_plan.ManifestRejected as exc:
        return _bad_manifest(ctx, upload, str(exc))
    except BlobMissing:
        return Outcome(Result.IGNORED, detail=_GONE)
    return Outcome(Result.IGNORED, detail=f"the settings of project {project}, for its later uploads")


def _refused_data(ctx: Context, upload: BlobRef, problem: str) -> Outcome:
    """A data file whose manifest was refused (or gave up waiting): not trained with default settings
    instead. Record it and alert once; the data stays where it is."""
    info = ctx.staging.properties(upload)
    etag = info.etag.strip('"') if info else ""
    key = naming.upload_key(upload.container, upload.name, f"refused-manifest@{etag}")
    run = Run(run_id=f"rej-{key}", state=State.REJECTED, upload=upload.path, upload_etag=etag, error=problem)
    return _refuse(ctx, run, "manifest refused", "upload.rejected", problem, f"manifest: {problem}")


def _uploaded_at(ctx: Context, plan: RunPlan, train: BlobInfo) -> datetime | None:
    """When the run's upload was complete: its last file's (or its manifest's) own time in storage, which is
    how runs are ordered ("uploaded later"), whenever their scans finish."""
    times = [train.uploaded_at] + [info.uploaded_at for blob in plan.blobs[1:]
                                   if (info := ctx.staging.properties(blob)) is not None]
    known = [t for t in times if t is not None]
    return max(known) if known else None


def _refused_settings(ctx: Context, upload: BlobRef, etag: str, key: str, problem: str) -> Outcome:
    """A FINETUNE_* app setting breaks a parameter rule: no upload can train until it is fixed. One alert."""
    why = f"the app setting FINETUNE_* {problem}; fix the setting, then upload again"
    run = Run(run_id=f"rej-{key}", state=State.REJECTED, upload=upload.path, upload_etag=etag, error=why)
    return _refuse(ctx, run, "parameters refused", "upload.rejected", f"{upload.path} was not trained: {why}",
                   f"parameters: {why}")


def _bad_name(ctx: Context, upload: BlobRef, problem: str) -> Outcome:
    """An upload whose name the app will not carry around: record it and alert once; it is not read."""
    key = naming.upload_key(upload.container, upload.name, "name")
    shown = f"{upload.container}/{printable(upload.name)}"
    run = Run(run_id=f"rej-{key}", state=State.REJECTED, upload=shown, error=problem)
    return _refuse(ctx, run, "bad name", "upload.rejected", f"{shown} was rejected: {problem}",
                   f"name: {problem}")


def _refused_base_model(ctx: Context, upload: BlobRef, etag: str, key: str, base_model: str,
                        why: str) -> Outcome:
    """The data was not read: the platform cannot fine-tune the base model. Record it and alert once; the
    upload stays where it is (nothing is wrong with it), to be uploaded again once BASE_MODEL is fixed."""
    run = Run(run_id=f"rej-{key}", state=State.REJECTED, upload=upload.path, upload_etag=etag,
              base_model=base_model, error=why)
    return _refuse(ctx, run, "base model refused", "upload.base_model_refused",
                   f"{upload.path} was not trained: {why}", f"base model refused: {why}")


def _duplicate(ctx: Context, run: Run, key: str) -> Outcome:
    record = Run(run_id=f"dup-{key}", state=State.DUPLICATE, content_sha256=run.content_sha256,
                 project=run.project, upload=run.upload, upload_etag=run.upload_etag, duplicate_of=run.run_id)
    ctx.ledger.create(record, note=f"same content as {run.run_id}")
    return Outcome(Result.DUPLICATE, record.run_id, State.DUPLICATE,
                   f"same content as run {run.run_id}: no new job (set blob metadata force=true to retrain)")

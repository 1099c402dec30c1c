"""Which files make a run, and with which overrides: a plain upload, or files a manifest names.

A manifest (`NAME.manifest.json`) names a train file, optionally a test file, in its own folder, and per-run
overrides (base model, epochs, hyperparameters, test fraction, token budget, run name, tags). Upload the
manifest first, then the data: the run starts when the last named file is there, whichever of them arrives
last. A data file that a manifest names is never a run of its own. Every key a manifest may hold reaches the
run (tests/unit/test_manifest_keys.py checks each one).

The names that tie data to a manifest are the ones it names: its `data` (default: its own name without
`.manifest.json`) and its `test`. They tie even when the manifest is refused (read as far as they can be), so
refused settings never become default ones. A manifest waiting for its files is a record of its own
(`wait-…`, state waiting) that the page shows; after MANIFEST_WAIT it ends rejected with one alert, and
data it names that comes later is refused too (upload the manifest again to start over).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from shared.dataset import Limits, Manifest, ManifestError, is_manifest, parse_manifest
from shared.dataset.manifest import ProjectFile, data_name_for, parse_project_file
from shared.finetune import ParameterError, resolve_parameters
from shared.lifecycle import naming
from shared.lifecycle.context import Context, log
from shared.lifecycle.outcome import Outcome, Result
from shared.ops.figures import duration
from shared.projects import SETTINGS_FILE, project_of
from shared.runs import Conflict, IllegalTransition, Run, State
from shared.staging import BlobMissing, BlobRef, read_all


@dataclass(frozen=True)
class RunPlan:
    """The files and settings of one run."""

    train: BlobRef
    test: BlobRef | None = None
    base_model: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    manifest: str | None = None
    spec: Manifest | None = None  # the manifest itself: its limits, run name and tags
    waited: str | None = None  # the manifest's waiting record, if it had to wait for its files
    project_file: str = ""  # a digest of the project's settings it runs under ('' for none)

    @property
    def run_name(self) -> str:
        """What names the job and the model instead of the data file ('' for the file)."""
        return self.spec.run_name or "" if self.spec else ""

    @property
    def start_from(self) -> str:
        """"live" to train the live fine-tune further; "" for the base model (the default)."""
        return "live" if self.spec and self.spec.training.start_from == "live" else ""

    @property
    def tags(self) -> dict[str, str]:
        """Tags added to the job's own."""
        return dict(self.spec.tags) if self.spec else {}

    @property
    def blobs(self) -> list[BlobRef]:
        """Every blob the run is made of: its files and its manifest."""
        manifest = [BlobRef(self.train.container, self.manifest)] if self.manifest else []
        return [self.train, *([self.test] if self.test else []), *manifest]

    def limits(self, base: Limits) -> Limits:
        """The scan's limits: `base` (from settings) with the manifest's epochs, test fraction and token
        budget. A manifest may lower the operator's MAX_TOKENS_PER_RUN, never raise it: it is a cost cap."""
        if self.spec is None:
            return base
        limits = self.spec.limits(base)
        if base.max_tokens_per_run is not None and limits.max_tokens_per_run is not None:
            limits = dataclasses.replace(
                limits, max_tokens_per_run=min(base.max_tokens_per_run, limits.max_tokens_per_run))
        return limits

    @property
    def fingerprint(self) -> str:
        """What besides the data's content makes this run different from another on the same data."""
        if not self.manifest and not self.project_file:
            return ""
        payload: dict[str, Any] = {"base_model": self.base_model, "overrides": dict(self.overrides)}
        if self.project_file:  # the same data under other project settings: another run
            payload["project_file"] = self.project_file
        if self.start_from:  # the same data trained on from the live model is another run
            payload["start_from"] = self.start_from
        if self.spec and self.spec.test_fraction is not None:  # another split trains on other rows
            payload["test_fraction"] = self.spec.test_fraction
        if self.spec and self.spec.screening:  # another policy stages other files (redacted or not)
            payload["screening"] = dict(self.spec.screening)
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Waiting:
    """A manifest whose files are not all there yet."""

    manifest: BlobRef
    etag: str
    missing: tuple[str, ...]

    def __str__(self) -> str:
        return f"manifest {self.manifest.name}: waiting for {', '.join(self.missing)}"


class ManifestRejected(Exception):
    """A manifest that cannot start a run; the message says what to fix."""


class DataRefused(ManifestRejected):
    """A data file a refused (or given-up) manifest names: not trained without it."""


class WaitEnded(Exception):
    """A repeated delivery of a manifest that already gave up waiting (its one alert was sent then)."""

    def __init__(self, record: Run) -> None:
        super().__init__(record.error)
        self.record = record


def plan_for(ctx: Context, upload: BlobRef) -> RunPlan | Waiting:
    """The run this arrival completes, or what it still waits for."""
    if is_manifest(upload.name):
        manifest = _read(ctx, upload)
        return _ready(ctx, upload.container, manifest, upload.name)
    for name, manifest in _manifests_beside(ctx, upload):
        if upload.name in (manifest.data, manifest.test):
            return _ready(ctx, upload.container, manifest, name, data=upload.name)
    return RunPlan(train=upload)


def project_file(ctx: Context, project: str) -> tuple[str, bytes, ProjectFile] | None:
    """The project's settings as they are now (`<project>/project.json`), or None if it has none.

    Read when an upload arrives, so a change affects later runs only. ManifestRejected names a bad key."""
    where = BlobRef(ctx.settings.incoming_container, f"{project}/{SETTINGS_FILE}")
    try:
        raw = read_all(ctx.staging, where)
    except BlobMissing:
        return None
    try:
        parsed = parse_project_file(raw, where.path)
    except ManifestError as exc:
        raise ManifestRejected(str(exc)) from None
    overrides_of(parsed.defaults, where.path)  # its fine-tune parameters under the one rule set
    return where.name, raw, parsed


def with_project(plan: RunPlan, project: ProjectFile, name: str, raw: bytes) -> RunPlan:
    """The plan under its project's settings (`name`: the project file, `raw` its content): the upload's
    manifest keys win, the project's fill in the rest. ManifestRejected if the two break a rule together."""
    spec = project.under(plan.spec)
    overrides = overrides_of(spec, plan.manifest or name)
    return dataclasses.replace(plan, spec=spec, base_model=spec.base_model, overrides=overrides,
                               project_file=hashlib.sha256(raw).hexdigest()[:16])


def overrides_of(manifest: Manifest, manifest_name: str) -> dict[str, Any]:
    """The manifest's fine-tune parameters, each checked against the one rule set (shared.finetune)."""
    overrides = dict(manifest.hyperparameters)
    if manifest.epochs is not None:
        overrides["num_train_epochs"] = manifest.epochs
    try:
        resolve_parameters({}, overrides)  # unknown names or bad values are refused before any upload work
    except ParameterError as exc:
        raise ManifestRejected(f"{manifest_name}: {exc}") from None
    return overrides


def _ready(ctx: Context, container: str, manifest: Manifest, manifest_name: str,
           data: str | None = None) -> RunPlan | Waiting:
    overrides = overrides_of(manifest, manifest_name)
    where = BlobRef(container, manifest_name)
    info = ctx.staging.properties(where)
    if info is None:
        raise BlobMissing(where.path)
    etag = info.etag.strip('"')
    record = ctx.ledger.get(waiting_id(where, etag))
    if record is not None and record.state == State.REJECTED:
        if data is None:
            raise WaitEnded(record)
        raise DataRefused(f"{container}/{data or manifest.data} is not trained: its manifest {manifest_name} "
                          f"stopped waiting ({record.error}); upload the manifest again, then its files")
    test = manifest.test
    missing = tuple(n for n in (manifest.data, test) if n and not _exists(ctx, container, n))
    if missing:
        return Waiting(where, etag, missing)
    return RunPlan(train=BlobRef(container, manifest.data), test=BlobRef(container, test) if test else None,
                   base_model=manifest.base_model, overrides=overrides, manifest=manifest_name, spec=manifest,
                   waited=record.run_id if record is not None else None)


def _read(ctx: Context, upload: BlobRef) -> Manifest:
    raw = read_all(ctx.staging, upload)
    try:
        return parse_manifest(raw, upload.name)
    except ManifestError as exc:
        raise ManifestRejected(str(exc)) from None


def _manifests_beside(ctx: Context, upload: BlobRef) -> list[tuple[str, Manifest]]:
    """The valid manifests in the upload's folder; DataRefused if a refused one names the upload."""
    folder = upload.name.rsplit("/", 1)[0] + "/" if "/" in upload.name else ""
    found = []
    for name in ctx.staging.names(upload.container, folder):
        if "/" in name[len(folder):] or not is_manifest(name):
            continue
        try:
            raw = read_all(ctx.staging, BlobRef(upload.container, name))
        except BlobMissing:
            continue
        try:
            manifest = parse_manifest(raw, name)
            overrides_of(manifest, name)
        except (ManifestError, ManifestRejected) as exc:
            if upload.name in names_tied(raw, name):  # training without its manifest would ignore it
                raise DataRefused(f"{upload.container}/{upload.name} is not trained: its manifest {name} "
                                  f"was rejected ({exc})") from None
            continue  # another broken manifest is reported when it arrives, not on every data upload
        found.append((name, manifest))
    return found


def names_tied(raw: bytes, manifest_name: str) -> set[str]:
    """The data a manifest names, read as far as it can be even when the manifest is refused: its `data`
    (default: its own name without `.manifest.json`) and `test`, in its own folder."""
    folder = manifest_name.rsplit("/", 1)[0] + "/" if "/" in manifest_name else ""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        doc = None
    doc = doc if isinstance(doc, dict) else {}
    named = {folder + str(doc[key]).strip() for key in ("data", "test") if isinstance(doc.get(key), str)}
    return named | ({data_name_for(manifest_name)} if not isinstance(doc.get("data"), str) else set())


def _exists(ctx: Context, container: str, name: str) -> bool:
    return ctx.staging.properties(BlobRef(container, name)) is not None


def waiting_id(manifest: BlobRef, etag: str) -> str:
    """The waiting record of one version of a manifest (a new upload of it waits afresh)."""
    return f"wait-{naming.upload_key(manifest.container, manifest.name, etag)}"


def wait(ctx: Context, waiting: Waiting) -> Outcome:
    """Record (once) that the manifest waits for its files, so the page shows it; or say it still does."""
    record = Run(run_id=waiting_id(waiting.manifest, waiting.etag), state=State.WAITING,
                 project=project_of(ctx.settings, waiting.manifest.name), upload=waiting.manifest.path,
                 upload_etag=waiting.etag, manifest=waiting.manifest.name,
                 waiting_for=waiting.missing)
    created = ctx.ledger.create(record, note=f"waiting for {', '.join(waiting.missing)}")
    current = created or ctx.ledger.get(record.run_id)
    if current is not None and current.state == State.WAITING and current.waiting_for != waiting.missing:
        with contextlib.suppress(Conflict):  # one of its files came meanwhile: say what it still waits for
            current = ctx.ledger.update(current, f"waiting for {', '.join(waiting.missing)}",
                                        waiting_for=waiting.missing)
    log.info("%s", waiting)
    return Outcome(Result.WAITING, record.run_id, current.state if current else State.WAITING, str(waiting))


def arrived(ctx: Context, plan: RunPlan) -> bool:
    """The files of a manifest that waited are all here: end its waiting record (False if the wait was given
    up first, so the data must not be trained)."""
    if plan.waited is None:
        return True
    def arrive(record: Run) -> bool:
        if record.state != State.WAITING:
            return record.state != State.REJECTED
        ctx.ledger.advance(record, State.ARRIVED, note=f"{plan.train.name} arrived; the run starts",
                           waiting_for=())
        return True

    record = ctx.ledger.get(plan.waited)
    # A lost compare-and-set (the wait given up, or another file's handler first) is judged again, re-read.
    ended = None if record is None else ctx.ledger.retry_on_conflict(record, arrive, tries=None)
    return ended is None or ended


def expire_waiting(ctx: Context, now: datetime) -> list[Outcome]:
    """End every manifest that has waited longer than MANIFEST_WAIT: rejected with a reason, one alert."""
    outcomes = []
    for record in ctx.ledger.find(state=State.WAITING):
        since = record.created_at or now
        if now - since < ctx.settings.manifest_wait:
            continue
        waited = duration(ctx.settings.manifest_wait.total_seconds())
        reason = (f"manifest {record.upload} waited {waited} (MANIFEST_WAIT) for "
                  f"{', '.join(record.waiting_for)}, which never came; upload the manifest again, then its "
                  "files")
        try:
            ended = ctx.ledger.advance(record, State.REJECTED, note="gave up waiting", error=reason)
        except (Conflict, IllegalTransition):
            continue  # its files came meanwhile, or another sweep ended it
        ctx.alert(ended, "manifest.expired", "error", reason)
        outcomes.append(Outcome(Result.REJECTED, ended.run_id, State.REJECTED, reason))
    return outcomes

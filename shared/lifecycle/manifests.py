"""Which files make a run, and with which overrides: a plain upload, or files a manifest names.

A manifest (`NAME.manifest.json`) names a train file, optionally a test file, in its own folder, and per-run
overrides (base model, epochs, hyperparameters, test fraction, token budget, run name, tags). Upload the
manifest first, then the data: the run starts when the last named file is there, whichever of them arrives
last. A data file that a manifest names is never a run of its own. Every key a manifest may hold reaches the
run (tests/unit/test_manifest_keys.py checks each one).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.dataset import Limits, Manifest, ManifestError, is_manifest, parse_manifest
from shared.dataset.manifest import manifest_name_for
from shared.finetune import ParameterError, resolve_parameters
from shared.lifecycle.context import Context
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
        if not self.manifest:
            return ""
        payload: dict[str, Any] = {"base_model": self.base_model, "overrides": dict(self.overrides)}
        if self.start_from:  # the same data trained on from the live model is another run
            payload["start_from"] = self.start_from
        if self.spec and self.spec.test_fraction is not None:  # another split trains on other rows
            payload["test_fraction"] = self.spec.test_fraction
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


class ManifestRejected(Exception):
    """A manifest that cannot start a run; the message says what to fix."""


def plan_for(ctx: Context, upload: BlobRef) -> RunPlan | str:
    """The run this arrival completes, or a one-line reason why there is none (yet)."""
    if is_manifest(upload.name):
        manifest = _read(ctx, upload)
        return _ready(ctx, upload.container, manifest, upload.name)
    for name, manifest in _manifests_beside(ctx, upload):
        if upload.name in (manifest.data, manifest.test):
            return _ready(ctx, upload.container, manifest, name)
    return RunPlan(train=upload)


def _ready(ctx: Context, container: str, manifest: Manifest, manifest_name: str) -> RunPlan | str:
    test = manifest.test
    missing = [n for n in (manifest.data, test) if n and not _exists(ctx, container, n)]
    if missing:
        return f"manifest {manifest_name}: waiting for {', '.join(missing)}"
    overrides = dict(manifest.hyperparameters)
    if manifest.epochs is not None:
        overrides["num_train_epochs"] = manifest.epochs
    try:
        resolve_parameters({}, overrides)  # unknown names or bad values are refused before any upload work
    except ParameterError as exc:
        raise ManifestRejected(f"{manifest_name}: {exc}") from None
    return RunPlan(train=BlobRef(container, manifest.data), test=BlobRef(container, test) if test else None,
                   base_model=manifest.base_model, overrides=overrides, manifest=manifest_name, spec=manifest)


def _read(ctx: Context, upload: BlobRef) -> Manifest:
    raw = read_all(ctx.staging, upload)
    try:
        return parse_manifest(raw, upload.name)
    except ManifestError as exc:
        raise ManifestRejected(str(exc)) from None


def _manifests_beside(ctx: Context, upload: BlobRef) -> list[tuple[str, Manifest]]:
    folder = upload.name.rsplit("/", 1)[0] + "/" if "/" in upload.name else ""
    found = []
    for name in ctx.staging.names(upload.container, folder):
        if "/" in name[len(folder):] or not is_manifest(name):
            continue
        try:
            found.append((name, parse_manifest(read_all(ctx.staging, BlobRef(upload.container, name)), name)))
        except ManifestError as exc:
            if name == manifest_name_for(upload.name):  # training without its own manifest would ignore it
                raise ManifestRejected(f"{upload.name} is not trained: its manifest was rejected "
                                       f"({exc})") from None
            continue  # another broken manifest is reported when it arrives, not on every data upload
        except BlobMissing:
            continue
    return found


def _exists(ctx: Context, container: str, name: str) -> bool:
    return ctx.staging.properties(BlobRef(container, name)) is not None

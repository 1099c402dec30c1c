"""Uploads nothing handled: every blob in the incoming container ends in a run, even if no trigger ran.

Event Grid may never deliver a BlobCreated (a subscription made after the upload, a deleted and re-created
topic), and a blob trigger that gave up leaves its message in `webjobs-blobtrigger-poison`, which
`ingest_poison` reads, unless that queue is lost too. So each sweep lists the incoming container and fails,
with one alert, every upload older than LOST_UPLOAD_AFTER that no run accounts for. Manifests are left
alone (they wait for the files they name, and their own failures are recorded when they are read).
"""

from __future__ import annotations

from datetime import datetime

from shared.dataset import is_manifest
from shared.lifecycle import upload
from shared.lifecycle.context import Context, log
from shared.lifecycle.outcome import Outcome, Result
from shared.names import name_problem
from shared.ops.figures import duration
from shared.projects import is_settings_file
from shared.staging import BlobRef


def check(ctx: Context, now: datetime | None = None) -> list[Outcome]:
    """Fail each upload that has waited LOST_UPLOAD_AFTER with no run; what was done to each."""
    now = now or ctx.ledger.now()
    container = ctx.settings.incoming_container
    outcomes: list[Outcome] = []
    try:
        names = list(ctx.staging.names(container))
    except Exception:  # the sweep's teardown must still run; the next sweep looks again
        log.exception("could not list %s for uploads no trigger handled", container)
        return outcomes
    for name in names:
        if is_manifest(name) or is_settings_file(name) or name_problem(name) is not None:
            # (a bad name has its rejected run already; a project's settings start no run)
            continue
        try:
            outcome = _check(ctx, BlobRef(container, name), now)
        except Exception:  # one upload must not stop the others being checked
            log.exception("could not check upload %s/%s", container, name)
            continue
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes


def _check(ctx: Context, blob: BlobRef, now: datetime) -> Outcome | None:
    info = ctx.staging.properties(blob)
    if info is None or info.uploaded_at is None or now - info.uploaded_at < ctx.settings.lost_upload_after:
        return None
    after = duration(ctx.settings.lost_upload_after.total_seconds())
    reason = (f"no blob trigger handled it in {after} (its event never came, or the "
              "trigger gave up)")
    outcome = upload.on_upload_failed(ctx, blob, info.etag, reason)
    return None if outcome.result == Result.ALREADY_HANDLED else outcome

"""Move a rejected upload out of the incoming container without ever losing it.

Order matters: copy into the rejected container (exactly the version that was scanned), verify the copy
(size, then a re-hash of its bytes against the scan's sha256), write the report beside it, and only then
delete the original - and only the version that was copied. Any failure before the delete leaves the
original where it was; a crash between copy and delete leaves both, and running again is safe: the
destination name depends only on the upload's name and content. The rules are written once, over the
staging port, so they hold for every backend.
"""

from __future__ import annotations

import hashlib

from shared.dataset.report import Report
from shared.names import safe_blob_name
from shared.staging.port import BlobChanged, BlobMissing, BlobRef, BlobStore, StagingError
from shared.staging.reader import BlobReader


class QuarantineError(RuntimeError):
    """The upload could not be quarantined; the original is still in its container."""


def destination_name(blob_name: str, content_sha256: str) -> str:
    """`<safe name>/<first 16 hex of sha256>/<file name>`: one folder per distinct upload content."""
    safe = safe_blob_name(blob_name)
    return f"{safe}/{content_sha256[:16] or 'unhashed'}/{safe.rsplit('/', 1)[-1]}"


def quarantine(store: BlobStore, upload: BlobRef, rejected_container: str, report: Report) -> str:
    """Move `upload` to `rejected_container` with its report; return the copy's blob name.

    Writes `<copy>.report.json` and `<copy>.report.txt` beside the copy. Raises QuarantineError when the
    copy fails or does not match `report.content_sha256`; the original is then left in place.
    """
    original = store.properties(upload)
    if original is None:
        raise QuarantineError(f"{upload.path} is gone; nothing to quarantine")
    target = BlobRef(rejected_container, destination_name(upload.name, report.content_sha256))
    try:
        copied = store.copy(upload, target, source_etag=original.etag)
    except (BlobChanged, BlobMissing) as exc:
        raise QuarantineError(f"{upload.path} changed while it was being quarantined: {exc}") from exc
    except StagingError as exc:
        raise QuarantineError(f"copying {upload.path} to {target.path} failed: {exc}") from exc
    try:
        _verify(BlobReader(store, target, copied.etag, copied.size), original.size, report.content_sha256)
    except QuarantineError:
        store.delete(target)  # a copy that is not the upload must not pose as one; the original stays
        raise
    store.put(BlobRef(rejected_container, f"{target.name}.report.json"), report.to_json().encode(),
              "application/json")
    store.put(BlobRef(rejected_container, f"{target.name}.report.txt"), report.to_text(upload.name).encode(),
              "text/plain; charset=utf-8")
    store.delete(upload, etag=original.etag)
    return target.name


def _verify(copy: BlobReader, size: int, content_sha256: str) -> None:
    """The copy has the original's size and hashes to the sha256 the scan computed over the upload."""
    if copy.size != size:
        raise QuarantineError(f"the copy has {copy.size:,} bytes, the upload {size:,}")
    digest = hashlib.sha256()
    for chunk in copy.chunks():
        digest.update(chunk)
    if digest.hexdigest() != content_sha256:
        raise QuarantineError("the copy's sha256 differs from the scanned upload's; the upload may have "
                              "changed since it was scanned")

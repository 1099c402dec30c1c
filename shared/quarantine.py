"""Move a rejected upload out of the incoming container without ever losing it.

Order matters: server-side copy into the rejected container, wait until it completes, verify the copy
(size, then a re-hash of its bytes against the scan's sha256), write the report beside it, and only then
delete the original - and only the version that was copied (ETag condition). Any failure before the delete
leaves the original where it was; a crash between copy and delete leaves both, and running again is safe:
the destination name depends only on the upload's name and content.
"""

from __future__ import annotations

import contextlib
import hashlib
import time

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobClient, BlobServiceClient, ContentSettings

from shared.dataset.report import Report
from shared.names import safe_blob_name

COPY_TIMEOUT_S = 600.0
_POLL_S = 0.5


class QuarantineError(RuntimeError):
    """The upload could not be quarantined; the original is still in its container."""


def destination_name(blob_name: str, content_sha256: str) -> str:
    """`<safe name>/<first 16 hex of sha256>/<file name>`: one folder per distinct upload content."""
    safe = safe_blob_name(blob_name)
    return f"{safe}/{content_sha256[:16] or 'unhashed'}/{safe.rsplit('/', 1)[-1]}"


def quarantine(blob_service: BlobServiceClient, source_container: str, blob_name: str,
               rejected_container: str, report: Report, *, copy_timeout_s: float = COPY_TIMEOUT_S) -> str:
    """Move upload `blob_name` to `rejected_container` with its report; return the copy's blob name.

    Writes `<copy>.report.json` and `<copy>.report.txt` beside the copy. Raises QuarantineError when the
    copy fails or does not match `report.content_sha256`; the original is then left in place.
    """
    source = blob_service.get_blob_client(source_container, blob_name)
    properties = source.get_blob_properties()
    target_name = destination_name(blob_name, report.content_sha256)
    container = blob_service.get_container_client(rejected_container)
    with contextlib.suppress(ResourceExistsError):
        container.create_container()
    target = container.get_blob_client(target_name)
    # Copy exactly the version that was inspected: a newer upload under the same name must not be moved.
    target.start_copy_from_url(source.url, source_etag=properties.etag,
                               source_match_condition=MatchConditions.IfNotModified)
    _wait_for_copy(target, copy_timeout_s)
    try:
        _verify(target, properties.size, report.content_sha256)
    except QuarantineError:
        target.delete_blob()  # a copy that is not the upload must not pose as one; the original stays
        raise
    text = ContentSettings(content_type="text/plain; charset=utf-8")
    container.upload_blob(f"{target_name}.report.json", report.to_json().encode(), overwrite=True,
                          content_settings=ContentSettings(content_type="application/json"))
    container.upload_blob(f"{target_name}.report.txt", report.to_text(blob_name).encode(), overwrite=True,
                          content_settings=text)
    source.delete_blob(etag=properties.etag, match_condition=MatchConditions.IfNotModified)
    return target_name


def _wait_for_copy(target: BlobClient, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        copy = target.get_blob_properties().copy
        if copy.status == "success":
            return
        if copy.status in ("failed", "aborted"):
            raise QuarantineError(f"copying the upload to {target.container_name}/{target.blob_name} "
                                  f"{copy.status}: {copy.status_description or 'no reason given'}")
        if time.monotonic() > deadline:
            target.abort_copy(copy.id or "")
            raise QuarantineError(f"copying the upload did not finish within {timeout_s:.0f}s")
        time.sleep(_POLL_S)


def _verify(target: BlobClient, size: int, content_sha256: str) -> None:
    """The copy has the original's size and hashes to the sha256 the scan computed over the upload."""
    copied = target.get_blob_properties().size
    if copied != size:
        raise QuarantineError(f"the copy has {copied:,} bytes, the upload {size:,}")
    digest = hashlib.sha256()
    for chunk in target.download_blob().chunks():
        digest.update(chunk)
    if digest.hexdigest() != content_sha256:
        raise QuarantineError("the copy's sha256 differs from the scanned upload's; the upload may have "
                              "changed since it was scanned")

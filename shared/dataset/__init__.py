"""Chat-format upload checks at gigabyte scale: one streaming pass validates, measures, hashes, splits and
stages, on every core for a big upload.

    report = scan_upload(open_blob(store, upload), Limits(), train=store.writer(...), test=store.writer(...))
"""

from shared.dataset.any_upload import scan_upload, upload_format
from shared.dataset.files import scan_path
from shared.dataset.manifest import Manifest, ManifestError, is_manifest, parse_manifest
from shared.dataset.parquet import scan_parquet
from shared.dataset.report import Report
from shared.dataset.rules import Issue
from shared.dataset.sinks import BlockBlobSink, FileSink, MemorySink, Sink
from shared.dataset.sources import FileSource, Source
from shared.dataset.stream import Parallelism, scan
from shared.dataset.tally import Limits

__all__ = [
    "BlockBlobSink", "FileSink", "FileSource", "Issue", "Limits", "Manifest", "ManifestError",
    "MemorySink", "Parallelism", "Report", "Sink", "Source", "is_manifest", "parse_manifest", "scan",
    "scan_parquet", "scan_path", "scan_upload", "upload_format",
]

"""Chat-format upload checks at gigabyte scale: one streaming pass validates, measures, hashes, splits and
stages.

    report = scan(chunks, Limits(), train=BlockBlobSink(...), test=BlockBlobSink(...))
"""

from shared.dataset.files import is_parquet, read_chunks, scan_path
from shared.dataset.manifest import Manifest, ManifestError, is_manifest, parse_manifest
from shared.dataset.parquet import scan_parquet
from shared.dataset.report import Report
from shared.dataset.rules import Issue
from shared.dataset.scanner import Limits, scan
from shared.dataset.sinks import BlockBlobSink, FileSink, MemorySink, Sink

__all__ = [
    "BlockBlobSink", "FileSink", "Issue", "Limits", "Manifest", "ManifestError", "MemorySink", "Report",
    "Sink", "is_manifest", "is_parquet", "parse_manifest", "read_chunks", "scan", "scan_parquet", "scan_path",
]

"""Scanning an upload, whatever its kind, from any Source: what `autopilot validate` and the ingest trigger
both call.

    report = scan_upload(open_blob(store, upload), limits, store.writer(train), store.writer(test))

The name decides the format: `.parquet`/`.pq` is Parquet, `.gz` is gzip-compressed JSON Lines (one stream:
gzip cannot be split by byte range, but its lines still go to every core), anything else JSON Lines. A body
that is gzip or Parquet under another name gets one clear error, not a page of not-UTF-8 lines.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator

from shared.dataset import rules
from shared.dataset.parquet import scan_parquet
from shared.dataset.report import Report
from shared.dataset.sinks import Sink
from shared.dataset.sources import FileSource, Source, read_pieces
from shared.dataset.stream import Hasher, Parallelism, scan_file, scan_lines
from shared.dataset.tally import Limits
from shared.dataset.totals import Totals

JSONL, JSONL_GZ, PARQUET = "jsonl", "jsonl.gz", "parquet"
_GZIP_MAGIC, _PARQUET_MAGIC = b"\x1f\x8b", b"PAR1"


def upload_format(name: str) -> str:
    """The format an upload's name says it has: "parquet", "jsonl.gz" or "jsonl"."""
    lower = name.lower()
    if lower.endswith((".parquet", ".pq")):
        return PARQUET
    return JSONL_GZ if lower.endswith(".gz") else JSONL


def scan_upload(source: Source, limits: Limits | None = None, train: Sink | None = None,
                test: Sink | None = None, *, parallel: Parallelism | None = None,
                progress: Callable[[int], None] | None = None) -> Report:
    """Validate, measure, hash, split and stage an upload in one pass over `source`.

    Valid rows are staged to `train`/`test` as `{"messages": [...]}` lines; the sinks are closed when the
    upload is valid and aborted when it is not (or when reading fails). A big JSON Lines upload is scanned
    on every core (see `Parallelism`); the report and staged files are the same either way. `progress` gets
    the bytes read so far (rows for Parquet).
    """
    kind = upload_format(source.name)
    if kind == PARQUET:
        return scan_parquet(source, limits, train, test, progress)
    parallel = parallel or Parallelism()
    totals, hasher, piece = Totals(limits or Limits(), train, test), Hasher(), parallel.piece_bytes
    workers = parallel.workers_for(source.size, staging=totals.staging)
    try:
        if (kind == JSONL and isinstance(source, FileSource)
                and _misnamed(source.read_range(0, len(_PARQUET_MAGIC))) is None):
            # A plain local file is read where it is scanned, and by the hash alongside.
            scan_file(source, totals, hasher, workers, piece, progress)
        else:  # the bytes are read here, in order, and reach any workers through shared memory
            raw = hasher.through(read_pieces(source, piece), progress)
            lines = _gunzip(raw, totals, piece) if kind == JSONL_GZ else _plain(raw, totals)
            scan_lines(lines, totals, workers, piece)
        return totals.finish(content_sha256=hasher.hexdigest(), size=hasher.size, format=kind)
    except BaseException:
        hasher.close()
        totals.abort()
        raise


def _misnamed(first: bytes) -> tuple[str, str] | None:
    """(code, message) when a JSON Lines upload's first bytes say it is something else."""
    if first.startswith(_GZIP_MAGIC):
        return rules.GZIP_COMPRESSED, ("the file is gzip-compressed; name it .jsonl.gz (or upload it "
                                       "uncompressed)")
    if first.startswith(_PARQUET_MAGIC):
        return rules.PARQUET_CONTENT, "the file is Parquet; name it .parquet"
    return None


def _plain(raw: Iterator[bytes], totals: Totals) -> Iterator[bytes]:
    """The pieces of a JSON Lines upload, unless its first bytes say it is something else."""
    first = next(raw, b"")
    misnamed = _misnamed(first)
    if misnamed is None:
        if first:
            yield first
        yield from raw
        return
    totals.cannot_read(*misnamed)
    for _ in raw:  # still read to the end: the content hash covers the whole upload
        pass


def _gunzip(raw: Iterator[bytes], totals: Totals, piece: int) -> Iterator[bytes]:
    """The decompressed pieces of a gzip upload (members one after another, as `cat a.gz b.gz` makes).
    A body that is not gzip, or ends mid-member, is an error; what was decompressed before it counts."""
    inflate, inside = zlib.decompressobj(wbits=31), False
    try:
        for data in raw:
            while data:
                inside = True
                out = inflate.decompress(data, piece)
                data = inflate.unconsumed_tail
                if out:
                    yield out
                while len(out) == piece and not data and not inflate.eof:  # output was cut short
                    out = inflate.decompress(b"", piece)
                    if out:
                        yield out
                if inflate.eof:
                    data, inside = inflate.unused_data, False
                    inflate = zlib.decompressobj(wbits=31)
    except zlib.error as exc:
        totals.cannot_read(rules.UNREADABLE_FILE, f"the file is named .gz but is not readable gzip: {exc}")
        for _ in raw:  # the content hash covers the whole upload
            pass
        return
    if inside:
        totals.cannot_read(rules.UNREADABLE_FILE, "the gzip stream ends in the middle; the upload is "
                           "truncated")

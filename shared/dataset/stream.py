"""One stream of JSON Lines, scanned once: in this process, or on every core when it is big enough.

The content hash is the sha256 of the upload's bytes as stored, computed on a background thread (hashlib
releases the GIL) while the bytes go by, or, for a local file whose ranges workers read themselves, by
reading the file alongside them: it costs a share of one core and no second pass.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from shared.dataset.parallel import Ranges
from shared.dataset.report import Report
from shared.dataset.scanner import Lines
from shared.dataset.sinks import Sink
from shared.dataset.sources import BUFFER_BYTES, PIECE_BYTES, FileSource
from shared.dataset.tally import Limits, MiB
from shared.dataset.totals import Totals

# Below this a single pass beats starting workers (`bench/ingest.py --crossover` measures where).
PARALLEL_MIN_BYTES = 32 * MiB
_SHM = "/dev/shm"
# The hash thread takes the GIL once per block; beside a scan on the main thread, 256 KiB blocks made it wait
# for the GIL so often that a one-pass scan of 100 MB took 0.22 s instead of 0.18 s with 1 MiB.
HASH_BLOCK_BYTES = MiB


class Hasher:
    """sha256 and size of raw bytes, updated in order on a background thread (one update in flight)."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.size = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")
        self._pending: Future[None] | None = None
        self._stopping = threading.Event()

    def update(self, data: bytes) -> None:
        """Hash `data` next; returns at once (waits only for the previous update)."""
        if self._pending is not None:
            self._pending.result()
        self.size += len(data)
        self._pending = self._pool.submit(self.sha.update, data)

    def through(self, chunks: Iterable[bytes],
                progress: Callable[[int], None] | None = None) -> Iterator[bytes]:
        """`chunks`, each hashed on its way; `progress` gets the bytes so far once a chunk is consumed."""
        for chunk in chunks:
            self.update(chunk)
            yield chunk
            if progress is not None:
                progress(self.size)

    def read(self, source: FileSource, block: int = HASH_BLOCK_BYTES) -> None:
        """Hash a whole local file on the background thread, reading it into one reused buffer (the scan's
        workers read the same file by themselves)."""
        self.size = source.size
        self._pending = self._pool.submit(self._hash_file, source, block)

    def _hash_file(self, source: FileSource, block: int) -> None:
        buffer = bytearray(block)
        view = memoryview(buffer)
        for got in source.fill(buffer, 0, source.size):
            if self._stopping.is_set():
                return
            self.sha.update(view[:got])

    def hexdigest(self) -> str:
        """The digest of everything hashed (waits for the last update)."""
        if self._pending is not None:
            self._pending.result()
        self._pool.shutdown()
        return self.sha.hexdigest()

    def stop(self) -> None:
        """Ask a file being hashed to stop at its next block (the scan failed or was interrupted)."""
        self._stopping.set()

    def close(self) -> None:
        """Stop without a digest (the scan failed): at once, not after hashing the rest of a big file."""
        self.stop()
        self._pool.shutdown(cancel_futures=True)


@dataclass(frozen=True)
class Parallelism:
    """How a big upload is spread over cores: at most `workers` processes (None or 0: one per core), none
    for an upload under `min_bytes`; `piece_bytes` is the read size and about the size of a range."""

    workers: int | None = None
    min_bytes: int = PARALLEL_MIN_BYTES
    piece_bytes: int = PIECE_BYTES

    def workers_for(self, size: int, *, staging: bool) -> int:
        """Worker processes for `size` bytes: one per core available to us, within the cap, at most one per
        range, and no more than the shared-memory filesystem has room for; 1 means one pass here."""
        if size < self.min_bytes:
            return 1
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        wanted = min(cores, self.workers or cores, -(-size // self.piece_bytes))
        if os.path.isdir(_SHM):  # containers often mount a small /dev/shm; running out there is a SIGBUS
            room = os.statvfs(_SHM)
            per_worker = Ranges.shared_bytes(staging, self.piece_bytes)
            wanted = min(wanted, room.f_bavail * room.f_frsize // per_worker)
        return max(wanted, 1)


def scan_file(source: FileSource, totals: Totals, hasher: Hasher, workers: int,
              piece_bytes: int = PIECE_BYTES, progress: Callable[[int], None] | None = None) -> None:
    """Add the tallies of a local JSON Lines file to `totals` while `hasher` reads the whole file on its
    thread: in this process, or from `workers` processes that each read their own ranges."""
    if workers == 1:
        hasher.read(source)
        lines, done = Lines(totals.limits, staging=totals.staging), 0
        buffer = bytearray(min(BUFFER_BYTES, piece_bytes))
        for got in source.fill(buffer, 0, source.size):
            lines.feed(buffer, got)
            totals.add(lines.harvest())
            done += got
            if progress is not None:
                progress(done)
        totals.add(lines.finish())
        return
    # The workers start first: a process with no other thread running forks them at no start-up cost.
    with Ranges(totals, workers, str(source.path), piece_bytes) as ranges:
        hasher.read(source)
        ranges.scan_file(source, progress)


def scan_lines(chunks: Iterable[bytes], totals: Totals, workers: int = 1,
               piece_bytes: int = PIECE_BYTES) -> None:
    """Add the tallies of a JSON Lines stream to `totals`: in this process, or across `workers` processes
    (the same tallies, in the same order)."""
    if workers > 1:
        with Ranges(totals, workers, None, piece_bytes) as ranges:
            ranges.scan(chunks)
        return
    lines = Lines(totals.limits, staging=totals.staging)
    for chunk in chunks:
        lines.feed(chunk)
        totals.add(lines.harvest())
    totals.add(lines.finish())


def scan(chunks: Iterable[bytes], limits: Limits | None = None, train: Sink | None = None,
         test: Sink | None = None, progress: Callable[[int], None] | None = None) -> Report:
    """Validate, measure, hash, split and stage a JSON Lines upload in one pass over `chunks`.

    Valid rows are staged to `train`/`test` as `{"messages": [...]}` lines; the sinks are closed when the
    upload is valid and aborted when it is not (or when reading fails). `progress` gets the bytes read so
    far after each chunk.
    """
    totals, hasher = Totals(limits or Limits(), train, test), Hasher()
    try:
        scan_lines(hasher.through(chunks, progress), totals)
        return totals.finish(content_sha256=hasher.hexdigest(), size=hasher.size, format="jsonl")
    except BaseException:
        hasher.close()
        totals.abort()
        raise

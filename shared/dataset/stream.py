"""One stream of JSON Lines, scanned once: in this process, or on every core when it is big enough.

The content hash is the sha256 of the upload's bytes as stored, updated on a background thread while the
bytes go by (hashlib releases the GIL), so it costs a share of one core and no second pass.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from shared.dataset.parallel import Ranges
from shared.dataset.report import Report
from shared.dataset.scanner import Lines
from shared.dataset.sinks import Sink
from shared.dataset.sources import PIECE_BYTES
from shared.dataset.tally import Limits, MiB
from shared.dataset.totals import Totals

# Below this a single pass beats starting workers (`bench/ingest.py --crossover` measures where).
PARALLEL_MIN_BYTES = 32 * MiB
_SHM = "/dev/shm"


class Hasher:
    """sha256 and size of raw bytes, updated in order on a background thread (one update in flight)."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.size = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")
        self._pending: Future[None] | None = None

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

    def hexdigest(self) -> str:
        """The digest of everything hashed (waits for the last update)."""
        if self._pending is not None:
            self._pending.result()
        self._pool.shutdown()
        return self.sha.hexdigest()

    def close(self) -> None:
        """Stop without a digest (reading failed)."""
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


def scan_lines(chunks: Iterable[bytes], totals: Totals, workers: int = 1, path: str | None = None,
               piece_bytes: int = PIECE_BYTES) -> None:
    """Add the tallies of a JSON Lines stream to `totals`: in this process, or across `workers` processes
    (the same tallies, in the same order). `path`: the chunks are this local file's bytes, from its start."""
    if workers > 1:
        with Ranges(totals, workers, path, piece_bytes) as ranges:
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

"""Scanning on every core: ranges of an upload go to worker processes, their tallies come back in order.

The upload is cut into ranges that end at a line end. A local file's ranges are cut by reading just past
each boundary, and each worker reads its own ranges into one reused buffer (the content hash reads the file
on a thread of its own). Any other stream (a blob, decompressed gzip) is read once and in order by the parent,
which hashes it as it goes and hands each range over through shared memory. Either way a worker runs the same
`Lines` scanner a single pass runs. Its tally comes back over its pipe (staged rows through shared memory)
and is added to `Totals` in range order, moved by the lines before it: the report and the staged files equal
the single pass's.

Workers are processes (the scanner holds the GIL); they fork from a fork server that has already imported the
scanner, so starting one costs milliseconds (spawn where there is no fork server).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path
from typing import Any

from shared.dataset.scanner import Lines
from shared.dataset.sources import BUFFER_BYTES, PIECE_BYTES, FileSource, SourceChanged
from shared.dataset.tally import Limits, Tally
from shared.dataset.totals import Totals

_SLOTS = 2  # ranges, input slots and staged-rows slots per worker: one in use while the other is filled
_CUT_WINDOW = 64 * 1024  # read past a range's nominal end in these steps to find its line end
# The content hash is one sequential sha256 in the parent; the ranges can go to any worker. Workers run at a
# lower priority so the hash gets a whole core while it runs and never trails alone at the end; the workers
# fill the rest (on 2 cores this took 5% off a 100 MB scan).
_WORKER_NICENESS = 5


@dataclass
class _Worker:
    """The parent's handle on one worker: its pipe, its input and staged-rows slots, and the ranges it has in
    hand (in order)."""

    process: Any
    conn: Connection
    slots: list[SharedMemory]
    out: list[SharedMemory]
    free: list[int] = field(default_factory=lambda: list(range(_SLOTS)))
    ranges: deque[int] = field(default_factory=deque)


def _view(segment: SharedMemory) -> memoryview:
    """A shared-memory segment's bytes (open segments always have a buffer)."""
    assert segment.buf is not None
    return segment.buf


def _context() -> Any:
    """How workers start: forked from this process when it runs no other thread (the CLI: no start-up cost,
    nothing to deadlock on), else from a fork server that has already imported the scanner (a host process
    with threads must not fork itself), else spawned (Windows)."""
    methods = mp.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return mp.get_context("fork")
    if "forkserver" in methods:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        return ctx
    return mp.get_context("spawn")


class Ranges:
    """Scans JSON Lines on `workers` processes as line-aligned ranges and adds their tallies to `totals` in
    order: a stream of pieces (`scan`), or a local file at `path` whose ranges the workers read themselves
    (`scan_file`). Use as a context manager: leaving it stops the workers."""

    def __init__(self, totals: Totals, workers: int, path: str | None = None,
                 piece_bytes: int = PIECE_BYTES) -> None:
        self.totals = totals
        self.path = path
        self.piece_bytes = piece_bytes
        self.workers: list[_Worker] = []
        self.open: _Worker | None = None  # the worker whose range has not reached a line end yet
        self.sent = 0  # bytes of the stream handed out
        self.started = 0  # ranges handed out
        self.merged = 0  # ranges added to totals
        self.done: dict[int, tuple[_Worker, Tally, int | None, str | None, int]] = {}
        self.range_ends: deque[int] = deque()  # scan_file: where each range not yet merged ends
        self.progress: Callable[[int], None] | None = None
        ctx = _context()
        try:
            for _ in range(workers):
                self.workers.append(self._start(ctx))
        except BaseException:
            self.close()
            raise

    @staticmethod
    def shared_bytes(staging: bool, piece_bytes: int = PIECE_BYTES) -> int:
        """Shared memory one worker may fill: its input slots, and its staged-rows slots when staging."""
        return _SLOTS * (2 + (3 if staging else 0)) * piece_bytes

    def _start(self, ctx: Any) -> _Worker:
        # An input slot holds a carried partial line (under a piece) plus a piece; a range's staged rows are
        # about the size of the range, and spill to a segment of their own when they are not.
        def segments(size: int) -> list[SharedMemory]:
            return [SharedMemory(create=True, size=size) for _ in range(_SLOTS)]

        slots = [] if self.path else segments(2 * self.piece_bytes)
        out = segments(3 * self.piece_bytes) if self.totals.staging else []
        mine, theirs = ctx.Pipe()
        process = ctx.Process(target=_work, daemon=True, name="scan-worker",
                              args=(theirs, self.path, [s.name for s in slots], [s.name for s in out],
                                    self.totals.limits, self.totals.staging,
                                    min(BUFFER_BYTES, self.piece_bytes)))
        worker = _Worker(process, mine, slots, out)
        process.start()
        theirs.close()
        return worker

    def __enter__(self) -> Ranges:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def scan(self, pieces: Iterable[bytes]) -> None:
        """Scan the whole stream: every piece, in order, then wait for the last tally."""
        carry = b""
        for data in pieces:
            for at in range(0, len(data), self.piece_bytes):
                part = memoryview(data)[at:at + self.piece_bytes]
                cut = data.rfind(b"\n", at, at + len(part)) - at
                if cut < 0:  # no line ends here: it all continues the open range
                    self._send(carry, part, end=False)
                    carry = b""
                else:
                    self._send(carry, part[:cut + 1], end=True)
                    carry = bytes(part[cut + 1:])
        if carry or self.open is not None:
            self._send(carry, memoryview(b""), end=True)
        while self.merged < self.started:
            self._service(block=True)

    def scan_file(self, source: FileSource, progress: Callable[[int], None] | None = None) -> None:
        """Scan the whole local file `path` names (opened as `source`): cut it into ranges of about a piece
        that end just past a newline, and hand each to a worker, which reads it. `progress` gets the bytes
        scanned so far, in order."""
        self.progress, size, start = progress, source.size, 0
        while start < size:
            nominal = start + self.piece_bytes
            end = _past_newline(source, nominal - 1) if nominal < size else size
            worker = self._next_worker()
            self._post(worker, ("piece", start, end - start, start == 0, True))
            self.range_ends.append(end)
            start = end
            self._service(block=False)
        while self.merged < self.started:
            self._service(block=True)

    def _next_worker(self) -> _Worker:
        """The worker for a new range: the one with the fewest in hand, once one has room."""
        while all(len(w.ranges) >= _SLOTS for w in self.workers):
            self._service(block=True)
        worker = min(self.workers, key=lambda w: len(w.ranges))
        worker.ranges.append(self.started)
        self.started += 1
        return worker

    def _send(self, carry: bytes, part: memoryview, *, end: bool) -> None:
        """Hand the next stretch (the carried partial line, then `part`) to the worker of its range."""
        worker = self._next_worker() if self.open is None else self.open
        file_start, size = self.sent == 0, len(carry) + len(part)
        while not worker.free:
            self._service(block=True)
        index = worker.free.pop()
        buf = _view(worker.slots[index])
        buf[:len(carry)] = carry
        buf[len(carry):size] = part
        self._post(worker, ("piece", index, size, file_start, end))
        self.sent += size
        self.open = None if end else worker
        self._service(block=False)

    def _post(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        """Send a worker its next message. One that has stopped (a failure) closed its pipe: what it sent
        before it stopped says why, and taking that raises."""
        try:
            worker.conn.send(message)
        except OSError:
            while True:
                self._service(block=True)

    def _service(self, *, block: bool) -> None:
        """Take what the workers have sent: freed slots and tallies; add finished ranges in order."""
        for ready in wait([w.conn for w in self.workers], timeout=None if block else 0):
            worker = next(w for w in self.workers if w.conn is ready)
            try:
                message = worker.conn.recv()
            except (EOFError, OSError):
                worker.process.join(timeout=1)
                raise RuntimeError(f"scan worker {worker.process.pid} stopped (exit code "
                                   f"{worker.process.exitcode})") from None
            kind = message[0]
            if kind == "ack":
                worker.free.append(message[1])
            elif kind == "tally":
                self.done[worker.ranges.popleft()] = (worker, *message[1:])
            elif kind == "changed":
                raise SourceChanged(message[1])
            else:
                raise RuntimeError(f"scan worker failed:\n{message[1]}")
        while self.merged in self.done:
            self._merge(*self.done.pop(self.merged))
            self.merged += 1
            if self.range_ends:
                scanned = self.range_ends.popleft()
                if self.progress is not None:
                    self.progress(scanned)

    def _merge(self, worker: _Worker, tally: Tally, slot: int | None, spill: str | None, size: int) -> None:
        """Add a range's tally, its staged rows read in place from shared memory; then free that memory."""
        if spill is not None:  # the worker's segment, for once; ours to remove
            segment = SharedMemory(name=spill)
            self.totals.add(tally, _view(segment)[:size])
            segment.unlink()
            with contextlib.suppress(BufferError):
                segment.close()
        elif slot is not None:
            self.totals.add(tally, _view(worker.out[slot])[:size])
            self._post(worker, ("released", slot))
        else:
            self.totals.add(tally)

    def close(self) -> None:
        """Stop the workers and free the shared memory (also after a failure)."""
        for worker in self.workers:
            with contextlib.suppress(OSError):  # it is gone already
                worker.conn.send(None)
        for worker in self.workers:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
            for segment in [*worker.slots, *worker.out]:
                segment.unlink()
                with contextlib.suppress(BufferError):  # a view still held by a failed send: freed with it
                    segment.close()
        self.workers.clear()


def _work(conn: Connection, path: str | None, slot_names: list[str], out_names: list[str], limits: Limits,
          staging: bool, read_bytes: int) -> None:
    """A worker: scan each range it is sent, stretch by stretch; send back a tally per range."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops us
    if hasattr(os, "nice"):  # not on Windows
        os.nice(_WORKER_NICENESS)
    file = FileSource(Path(path)) if path else None
    buffer = bytearray(read_bytes if file else 0)
    slots = [SharedMemory(name=name) for name in slot_names]
    out = [SharedMemory(name=name) for name in out_names]
    free = set(range(len(out)))  # staged-rows slots the parent has released
    held: deque[Any] = deque()  # messages that arrived while waiting for a staged-rows slot
    lines = None
    try:
        while (message := held.popleft() if held else conn.recv()) is not None:
            if message[0] == "released":
                free.add(message[1])
                continue
            _, where, size, file_start, end = message
            if lines is None:
                lines = Lines(limits, staging=staging, at_file_start=file_start)
            if file is not None:
                for got in file.fill(buffer, where, where + size):
                    lines.feed(buffer, got)
            else:
                lines.feed(bytes(_view(slots[where])[:size]))
                conn.send(("ack", where))
            if end:
                tally, lines = lines.finish(), None
                while out and not free:
                    reply = conn.recv()
                    if reply is not None and reply[0] == "released":
                        free.add(reply[1])
                    else:
                        held.append(reply)
                _send_tally(conn, tally, out, free)
    except SourceChanged as exc:
        conn.send(("changed", str(exc)))
    except Exception:
        conn.send(("failed", traceback.format_exc()))
    finally:
        for segment in [*slots, *out]:
            segment.close()
        if file is not None:
            file.close()


def _past_newline(source: FileSource, at: int) -> int:
    """Where the first line that has a byte at `at` or after ends: just past its newline (the file's end
    if it has none)."""
    while at < source.size:
        data = source.read_range(at, min(_CUT_WINDOW, source.size - at))
        if not data:
            raise SourceChanged.short(source.name, at, source.size)
        found = data.find(b"\n")
        if found >= 0:
            return at + found + 1
        at += len(data)
    return source.size


def _send_tally(conn: Connection, tally: Tally, out: list[SharedMemory], free: set[int]) -> None:
    """Send a range's tally; its staged rows go through a free staged-rows slot, or a spill segment when they
    do not fit there (a conversation near the line limit)."""
    staged, tally.staged = tally.staged, bytearray()
    size = len(staged)
    if not out:
        conn.send(("tally", tally, None, None, 0))
    elif size > out[0].size:
        spill = SharedMemory(create=True, size=size)
        _view(spill)[:size] = staged
        spill.close()
        conn.send(("tally", tally, None, spill.name, size))
    else:
        slot = free.pop()
        _view(out[slot])[:size] = staged
        conn.send(("tally", tally, slot, None, size))

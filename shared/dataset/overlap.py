"""Conversations a held-out test file shares with its training file: evaluated on rows it was trained on,
a gate measures nothing. Staged rows are normalized `{"messages": [...]}` lines, so equal conversations are
equal lines, whatever their original formatting; a line is known by a 16-byte digest, so memory follows the
(small) test file, never the training file.
"""

from __future__ import annotations

import hashlib

from shared.dataset.sinks import Sink


class LineDigests:
    """A sink that passes everything on to `sink` and, for each complete line, keeps its digest (`seen`) or,
    given `against`, counts the lines whose digest is there (`shared`)."""

    def __init__(self, sink: Sink, against: set[bytes] | None = None) -> None:
        self.sink = sink
        self.against = against
        self.seen: set[bytes] = set()
        self.shared = 0
        self._tail = b""

    def write(self, data: bytes | memoryview) -> None:
        """Pass the bytes on; digest the lines they complete."""
        self.sink.write(data)
        *lines, self._tail = (self._tail + bytes(data)).split(b"\n")
        for line in lines:
            self._line(line)

    def close(self) -> None:
        """Digest a last line without a newline, then commit the sink."""
        if self._tail:
            self._line(self._tail)
            self._tail = b""
        self.sink.close()

    def abort(self) -> None:
        """Discard the sink."""
        self.sink.abort()

    def _line(self, line: bytes) -> None:
        line = line.strip()
        if not line:
            return
        digest = hashlib.blake2b(line, digest_size=16).digest()
        if self.against is None:
            self.seen.add(digest)
        elif digest in self.against:
            self.shared += 1

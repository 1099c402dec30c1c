"""The cheap first pass: which lines of a chunk of raw JSON Lines could hold a sensitive value at all.

It reads the raw bytes (JSON escapes and all) with Hyperscan, a few patterns per database: each kind's
pattern in `kinds` only matches where one of these matches the raw line too, so a line it passes over holds
nothing to find, and `detect` runs on the flagged lines' messages only. A line's verdict depends on that
line alone (no pattern matches a newline), so one pass and a parallel scan flag the same lines. Without a
Hyperscan wheel for the platform, Python's `re` runs the same patterns (slower).

Hyperscan was faster with three small databases than with one (a union of unlike patterns, say the digit
runs with the secrets' literals, left its fast matchers: 4x slower here), and a pass per pattern costs a pass
each; the three together cost about 60 ms of CPU per 100 MB on this machine's cores.
"""

from __future__ import annotations

import bisect
import contextlib
import ctypes
import functools
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

from shared.dataset.screening.kinds import AT_SIGN, DIGITS, IBAN_START, KEYWORD, SECRET_MARK

Buffer = bytes | bytearray | memoryview
# One database per tuple, each pattern with the bit (kinds.py) a line it matches is flagged with. Digits count
# only after a character that is not a letter or digit (or after a JSON escape such as \n): a hex id ends in
# digits far more often than a chat holds a phone number.
GROUPS: tuple[tuple[tuple[bytes, int, bool], ...], ...] = (
    ((rb"-----BEGIN|(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_|github_pat_"
      rb"|gl(?:pat|dt|ptt|rt|cbt|imt|soat|ffct)-|xox[abposr]-|hooks\.slack\.com/|[rs]k_live_|AIza"
      rb"|AccountKey=|SharedAccessKey=|sig=|eyJ[A-Za-z0-9_\-]{10,}\.eyJ", SECRET_MARK, False),
     (rb"(?:password|passwd|pwd|secret|token|(?:api|auth|access|client|private)[_\-]?key)[a-z0-9_]{0,20}"
      rb"[\"'\\]{0,3} *[:=]", KEYWORD, True)),
    ((rb"@[A-Za-z0-9\-]+\.[A-Za-z]", AT_SIGN, False),),
    ((rb"(?:[^0-9A-Za-z_]|\\[nrtbf\"/\\]|\\u[0-9A-Fa-f]{4})\+?\(?\d[\d \-.()]{5,}\d\b", DIGITS, False),
     (rb"[A-Z]{2}\d\d ?[A-Z0-9]{4}", IBAN_START, False)),
)
Found = list[tuple[int, int]]  # (end offset, bit) of each match


class Prefilter:
    """Flags the lines of raw JSON Lines that may hold a sensitive value, with the bits saying which kinds."""

    def __init__(self, scan: Callable[[Buffer, Found], None]) -> None:
        self._scan = scan  # appends (end offset, bit) for every match in the buffer

    def lines(self, chunk: bytes | bytearray, start: int, end: int,
              ends: Sequence[int] | None = None) -> dict[int, int]:
        """{0-based index: bits} of the flagged lines among those in chunk[start:end] (whole lines; `ends`:
        where each ends, if known)."""
        found: Found = []
        self._scan(memoryview(chunk)[start:end], found)
        flagged: dict[int, int] = {}
        if not found:
            return flagged
        found.sort()
        index, counted = 0, start
        for at, bit in found:
            last = start + at - 1  # the match's last byte
            if ends is not None:
                index = bisect.bisect_left(ends, last)
            else:
                index += chunk.count(b"\n", counted, last)
                counted = last
            flagged[index] = flagged.get(index, 0) | bit
        return flagged

    def line(self, raw: Buffer) -> int:
        """The bits one raw line is flagged with (0: none)."""
        found: Found = []
        self._scan(raw, found)
        bits = 0
        for _, bit in found:
            bits |= bit
        return bits


def _hyperscan_scan() -> Callable[[Buffer, Found], None]:
    import hyperscan

    databases = []
    for group in GROUPS:
        database = hyperscan.Database()
        database.compile(expressions=[p for p, _, _ in group], ids=[bit for _, bit, _ in group],
                         elements=len(group),
                         flags=[hyperscan.HS_FLAG_CASELESS if caseless else 0 for _, _, caseless in group])
        databases.append(database)

    _return_freed_memory()
    # A scan needs scratch space no other scan is using: the Functions host runs uploads on several threads.
    local = threading.local()

    def scan(data: Buffer, found: Found) -> None:
        def matched(bit: int, _start: int, end: int, _flags: int, _context: Any) -> None:
            found.append((end, bit))

        scratches = getattr(local, "scratches", None)
        if scratches is None:
            scratches = local.scratches = [hyperscan.Scratch(database) for database in databases]
        for database, scratch in zip(databases, scratches, strict=True):
            # The stubs say bytes or str; the C code takes any buffer, so a chunk is never copied.
            database.scan(data, match_event_handler=matched, scratch=scratch)  # type: ignore[type-var]

    return scan


def _return_freed_memory() -> None:
    """Hand the compiler's freed heap back to the system: glibc keeps it (25 MB here), and every scan worker
    forked after the compile would carry it in its resident memory."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _re_scan() -> Callable[[Buffer, Found], None]:
    compiled = [(re.compile(pattern, re.IGNORECASE if caseless else 0), bit)
                for group in GROUPS for pattern, bit, caseless in group]

    def scan(data: Buffer, found: Found) -> None:
        for pattern, bit in compiled:
            # re finds non-overlapping matches, Hyperscan every end: the lines flagged are the same.
            found.extend((match.end(), bit) for match in pattern.finditer(data))

    return scan


@functools.cache
def prefilter() -> Prefilter:
    """This process's prefilter (compiled once; a forked worker inherits it)."""
    try:
        return Prefilter(_hyperscan_scan())
    except ImportError:
        return Prefilter(_re_scan())

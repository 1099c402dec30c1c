"""The cheap first pass: which lines of a chunk of raw JSON Lines could hold a sensitive value at all.

It reads the raw bytes (JSON escapes and all) with Hyperscan, a few patterns per database: each kind's
pattern in `kinds` only matches where one of these matches the raw line too, so a line it passes over holds
nothing to find, and `detect` runs on the flagged lines' messages only. A line's verdict depends on that
line alone (no pattern matches a newline), so one pass and a parallel scan flag the same lines. Without a
Hyperscan wheel for the platform, Python's `re` runs the same patterns (slower).

Hyperscan was faster with a few small databases than with one big one (bench/ingest.py measured it): each
is one pass at memory speed, and a union of unlike patterns left its fast literal matchers.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Callable, Sequence
from typing import Any

Buffer = bytes | bytearray | memoryview
# (patterns, caseless) per database.
GROUPS: tuple[tuple[tuple[bytes, ...], bool], ...] = (
    ((rb"-----BEGIN|(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_|github_pat_"
      rb"|gl(?:pat|dt|ptt|rt|cbt|imt|soat|ffct)-|xox[abposr]-|hooks\.slack\.com/|[rs]k_live_|AIza"
      rb"|AccountKey=|SharedAccessKey=|sig=|eyJ[A-Za-z0-9_\-]{10,}\.eyJ",), False),
    ((rb"(?:password|passwd|pwd|secret|api[_\-]?key|access[_\-]?key|token)[a-z0-9_]{0,20}"
      rb"[\"'\\]{0,3} *[:=]",), True),
    ((rb"@[A-Za-z0-9\-]+\.[A-Za-z]",), False),
    ((rb"\d[\d \-.()]{5,}\d\b", rb"[A-Z]{2}\d\d ?[A-Z0-9]{4}"), False),
)


class Prefilter:
    """Flags the lines of raw JSON Lines that may hold a sensitive value."""

    def __init__(self, scan: Callable[[Buffer, list[int]], None]) -> None:
        self._scan = scan  # appends the end offset of every match in the buffer

    def lines(self, chunk: bytes | bytearray, start: int, end: int,
              ends: Sequence[int] | None = None) -> list[int]:
        """The 0-based indexes of the flagged lines among those in chunk[start:end] (whole lines; `ends`:
        where each ends, if known), in order."""
        found: list[int] = []
        self._scan(memoryview(chunk)[start:end], found)
        if not found:
            return []
        flagged: list[int] = []
        if ends is not None:
            for at in sorted(found):
                index = bisect.bisect_left(ends, start + at - 1)
                if not flagged or flagged[-1] != index:
                    flagged.append(index)
            return flagged
        index, counted = 0, start
        for at in sorted(found):
            index += chunk.count(b"\n", counted, start + at - 1)
            counted = start + at - 1
            if not flagged or flagged[-1] != index:
                flagged.append(index)
        return flagged

    def line(self, raw: Buffer) -> bool:
        """Whether one raw line is flagged."""
        found: list[int] = []
        self._scan(raw, found)
        return bool(found)


def _hyperscan_scan() -> Callable[[Buffer, list[int]], None]:
    import hyperscan

    databases = []
    for patterns, caseless in GROUPS:
        database = hyperscan.Database()
        flags = hyperscan.HS_FLAG_CASELESS if caseless else 0
        database.compile(expressions=list(patterns), ids=list(range(len(patterns))), elements=len(patterns),
                         flags=[flags] * len(patterns))
        databases.append(database)

    def scan(data: Buffer, found: list[int]) -> None:
        def matched(_id: int, _start: int, end: int, _flags: int, _context: Any) -> None:
            found.append(end)

        for database in databases:
            # The stubs say bytes or str; the C code takes any buffer, so a chunk is never copied.
            database.scan(data, match_event_handler=matched)  # type: ignore[type-var]

    return scan


def _re_scan() -> Callable[[Buffer, list[int]], None]:
    compiled = [re.compile(pattern, re.IGNORECASE if caseless else 0)
                for patterns, caseless in GROUPS for pattern in patterns]

    def scan(data: Buffer, found: list[int]) -> None:
        for pattern in compiled:
            found.extend(match.end() for match in pattern.finditer(data))

    return scan


@functools.cache
def prefilter() -> Prefilter:
    """This process's prefilter (compiled once; a forked worker inherits it)."""
    try:
        return Prefilter(_hyperscan_scan())
    except ImportError:
        return Prefilter(_re_scan())

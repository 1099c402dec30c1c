"""How raw lines become rows on the fast path: the common row shape as typed structs, and a whole chunk of
lines decoded at once (no line objects) when each line is exactly one object."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import msgspec


# gc=False: these structs hold only strings, so they can never be part of a reference cycle, and leaving them
# out of the cyclic GC makes decoding ~15% faster.
class _Message(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    role: Literal["system", "user", "assistant", "tool"]
    content: str


class _Row(msgspec.Struct, gc=False):  # other top-level keys (ultrachat's prompt, prompt_id) are fine
    messages: list[_Message]
    tools: Any = None  # a row offering tools takes the general path, which stages them


TYPED = msgspec.json.Decoder(_Row)
Raw = bytes | memoryview
Entry = tuple[Any, bool, Raw | None] | None  # (row, typed, raw line) for a line with a row


def line_ends(chunk: bytes | bytearray, start: int, end: int) -> list[int] | None:
    """Where each line in chunk[start:end] ends, if every line is one `{...}` object, else None.

    The fast path's decoder reads whitespace-separated values, not lines: `{..} {..}` on one line or an object
    pretty-printed over two would pass it. A line that begins with `{` and ends with `}` cannot end inside an
    object (a `{` cannot follow a `}` within one), so if every line does and the counts agree, each line is
    exactly one object. (bytes.find is memchr; bytes.count is three times slower.)
    """
    ends, find = [], chunk.find
    at = find(b"\n", start, end)
    while at >= 0:
        last = chunk[at - 1] if chunk[at - 1] != 13 else chunk[at - 2]  # before a CR
        if chunk[start] != 123 or last != 125 or at - start < 2:  # "{", "}"
            return None
        ends.append(at)
        start = at + 1
        at = find(b"\n", start, end)
    return ends


def typed_lines(rows: list[_Row], chunk: bytes | bytearray, start: int, ends: list[int]) -> Iterator[Entry]:
    """The fast path's rows, each with its raw line (a view into the chunk)."""
    view = memoryview(chunk)
    for row, end in zip(rows, ends, strict=True):
        yield row, True, view[start:end]
        start = end + 1

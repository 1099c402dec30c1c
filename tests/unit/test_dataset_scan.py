"""The streaming pass: hash, line handling across chunk boundaries, long lines, staging, progress."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from shared.dataset import Limits, MemorySink, scan, scan_path
from shared.dataset import rules as r


def conversation(i: int) -> dict[str, object]:
    return {"prompt": f"q{i}", "prompt_id": f"{i:064x}",
            "messages": [{"content": f"question {i} é “x”\n", "role": "user"},
                         {"content": f"answer {i} " * (i % 7 + 1), "role": "assistant"}]}


def jsonl(n: int, newline: bytes = b"\n") -> bytes:
    return b"".join(orjson.dumps(conversation(i)) + newline for i in range(n))


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def test_hash_is_sha256_of_the_raw_bytes(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf" + jsonl(50, b"\r\n") + b"\n\n"
    path = tmp_path / "d.jsonl"
    path.write_bytes(data)
    report = scan_path(path)
    assert report.content_sha256 == hashlib.sha256(data).hexdigest()
    assert report.bytes == len(data)
    assert report.valid and report.rows == 50


@pytest.mark.parametrize("size", [1, 7, 64, 1000, 1 << 20])
def test_chunk_boundaries_do_not_matter(size: int) -> None:
    data = jsonl(40) + b"broken\n" + jsonl(3, b"\r\n") + b"   \n" + jsonl(2)[:-1]  # no final newline
    expected = scan([data]).to_dict()
    assert scan(pieces(data, size)).to_dict() == expected
    assert expected["rows"] == 45 and expected["errors"][0]["line"] == 41


def test_crlf_and_blank_lines_are_fine() -> None:
    data = b"\r\n" + jsonl(5, b"\r\n") + b"\n   \n\t\r\n" + jsonl(5)
    report = scan([data])
    assert report.valid and report.rows == 10


@pytest.mark.parametrize("chunk", [10, 100, 4096])
def test_long_line_is_an_error_found_while_streaming(chunk: int) -> None:
    good = jsonl(3)
    long_row = orjson.dumps({"messages": [{"role": "user", "content": "x" * 5000},
                                          {"role": "assistant", "content": "y"}]}) + b"\n"
    data = good + long_row + good + long_row + good[:-1]
    tracked: list[int] = []

    report = scan(pieces(data, chunk), Limits(max_line_bytes=1000), progress=tracked.append)
    assert [(e.line, e.code) for e in report.errors] == [(4, r.LINE_TOO_LONG), (8, r.LINE_TOO_LONG)]
    assert report.rows == 9
    assert tracked[-1] == len(data)
    assert tracked == sorted(tracked)


@pytest.mark.parametrize("chunk", [300, 600, 700, 1100, 1200])
def test_long_line_completed_by_a_later_chunk(chunk: int) -> None:
    long_row = orjson.dumps({"messages": [{"role": "user", "content": "x" * 1000},
                                          {"role": "assistant", "content": "y"}]}) + b"\n"
    data = jsonl(1) + long_row + jsonl(2)
    report = scan(pieces(data, chunk), Limits(max_line_bytes=1050))
    assert len(long_row) > 1050
    assert [(e.line, e.code) for e in report.errors] == [(2, r.LINE_TOO_LONG)]
    assert report.rows == 3


def test_long_line_is_never_buffered_whole() -> None:
    """A 64 MiB line fed in 1 MiB chunks: the carried tail never exceeds the limit."""
    from shared.dataset.scanner import Lines

    lines = Lines(Limits(max_line_bytes=2 << 20), staging=False)
    longest = 0
    for _ in range(64):
        lines.feed(b"x" * (1 << 20))
        longest = max(longest, len(lines.tail))
    lines.feed(b"\n" + jsonl(2))
    tally = lines.finish()
    assert longest <= 2 << 20
    assert [(e.line, e.code) for e in tally.errors] == [(1, r.LINE_TOO_LONG)]
    assert tally.figures.rows == 2


def test_valid_upload_is_staged_as_messages_rows_and_sinks_closed() -> None:
    train, test = MemorySink(), MemorySink()
    report = scan(pieces(jsonl(200), 333), Limits(test_fraction=0.1), train, test)
    assert report.valid
    assert train.value is not None and test.value is not None
    staged = [orjson.loads(x) for x in (train.value + test.value).splitlines()]
    assert len(staged) == 200 == report.train_rows + report.test_rows
    assert all(set(row) == {"messages"} for row in staged)
    # Same conversations, compared as data: the staged JSON may order a message's keys differently.
    def canonical(messages: object) -> bytes:
        return orjson.dumps(messages, option=orjson.OPT_SORT_KEYS)

    originals = sorted(canonical(conversation(i)["messages"]) for i in range(200))
    assert sorted(canonical(row["messages"]) for row in staged) == originals
    assert test.value.count(b"\n") == report.test_rows


def test_invalid_upload_aborts_both_sinks() -> None:
    train, test = MemorySink(), MemorySink()
    report = scan([jsonl(10) + b"{]\n"], None, train, test)
    assert not report.valid
    assert train.aborted and test.aborted and train.value is None


def test_a_failing_reader_aborts_the_sinks() -> None:
    train = MemorySink()

    def chunks() -> Iterator[bytes]:
        yield jsonl(3)
        raise OSError("connection reset")

    with pytest.raises(OSError):
        scan(chunks(), None, train)
    assert train.aborted


def test_stats(tmp_path: Path) -> None:
    report = scan([jsonl(10)])
    stats = report.stats
    assert stats["messages"] == {"min": 2, "mean": 2.0, "max": 2, "total": 20}
    assert stats["roles"] == {"system": 0, "user": 10, "assistant": 10, "tool": 0}
    assert stats["tokens"]["min"] <= stats["tokens"]["mean"] <= stats["tokens"]["max"]
    assert report.estimated_tokens > 0


def test_a_line_is_one_object_even_where_whole_chunks_decode_at_once() -> None:
    """The fast path's decoder reads a stream of values: two objects on a line, or one object over two
    lines, must still be invalid lines, as line by line (one-byte chunks never take the fast path)."""
    good = jsonl(5)
    two_on_a_line = orjson.dumps(conversation(1)) + b" " + orjson.dumps(conversation(2)) + b"\n"
    pretty = orjson.dumps(conversation(3), option=orjson.OPT_INDENT_2) + b"\n"
    padded = b"   " + good[:-1] + b"  \n"
    for bad in (two_on_a_line + pretty, pretty + two_on_a_line, two_on_a_line + b"\n", padded):
        data = good + bad + good
        report = scan([data])
        assert report.to_dict() == scan(pieces(data, 1)).to_dict()
        assert report.rows == 10 + (bad == padded) * 5

"""Uploads by name: .jsonl.gz streamed through gzip, gzip or Parquet bodies under another name refused
clearly, the byte-order mark however the first bytes are read, and Parquet over ranged reads."""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shared.dataset import Limits, MemorySink, Parallelism, scan, scan_path, scan_upload, upload_format
from shared.dataset import rules as r
from shared.dataset.parquet import HashedFile


def jsonl(n: int, start: int = 0) -> bytes:
    return b"".join(orjson.dumps({"messages": [{"role": "user", "content": f"q{i}"},
                                               {"role": "assistant", "content": f"a{i} é"}]}) + b"\n"
                    for i in range(start, start + n))


class BytesSource:
    def __init__(self, name: str, data: bytes) -> None:
        self.name, self.data, self.size = name, data, len(data)
        self.read = 0

    def read_range(self, offset: int, length: int) -> bytes:
        self.read += length
        return self.data[offset:offset + length]


def test_format_comes_from_the_name() -> None:
    assert [upload_format(n) for n in ("a.jsonl", "a.JSONL.GZ", "a.parquet", "a.pq", "a.json", "a")] == \
        ["jsonl", "jsonl.gz", "parquet", "parquet", "jsonl", "jsonl"]


@pytest.mark.parametrize("piece", [5, 64, 1 << 20])
def test_jsonl_gz_is_scanned_like_the_plain_file(tmp_path: Path, piece: int) -> None:
    data = jsonl(300) + b"{broken\n" + jsonl(20, 300)
    packed = gzip.compress(data[:5000]) + gzip.compress(data[5000:])  # two members, as `cat a.gz b.gz` makes
    path = tmp_path / "chats.jsonl.gz"
    path.write_bytes(packed)
    train, test = MemorySink(), MemorySink()
    report = scan_path(path, Limits(), train, test, parallel=Parallelism(piece_bytes=piece))
    plain = scan([data], Limits())
    assert report.format == "jsonl.gz"
    assert report.content_sha256 == hashlib.sha256(packed).hexdigest()  # stored bytes, as quarantine checks
    assert report.bytes == len(packed)
    expected = {**plain.to_dict(), "content_sha256": report.content_sha256, "bytes": len(packed),
                "format": "jsonl.gz"}
    assert report.to_dict() == expected
    assert [(e.line, e.code) for e in report.errors] == [(301, r.INVALID_JSON)]
    assert train.aborted and test.aborted


def test_a_gzip_body_under_another_name_is_reported_as_gzip(tmp_path: Path) -> None:
    packed = gzip.compress(jsonl(10))
    path = tmp_path / "chats.jsonl"
    path.write_bytes(packed)
    report = scan_path(path)
    assert not report.valid
    assert [(e.line, e.code) for e in report.errors] == [(None, r.GZIP_COMPRESSED)]
    assert ".jsonl.gz" in report.errors[0].message
    assert report.content_sha256 == hashlib.sha256(packed).hexdigest()  # hashed to the end all the same


def test_a_parquet_body_under_a_jsonl_name_is_reported_as_parquet(tmp_path: Path) -> None:
    path = tmp_path / "chats.jsonl"
    pq.write_table(pa.table({"messages": [[{"role": "user", "content": "q"}]]}), path)
    assert [e.code for e in scan_path(path).errors] == [r.PARQUET_CONTENT]


def test_a_gz_name_on_a_body_that_is_not_gzip(tmp_path: Path) -> None:
    path = tmp_path / "chats.jsonl.gz"
    path.write_bytes(jsonl(5))
    report = scan_path(path)
    assert [(e.line, e.code) for e in report.errors] == [(None, r.UNREADABLE_FILE)]
    assert "not readable gzip" in report.errors[0].message


def test_a_truncated_gzip_keeps_what_came_before_and_says_it_is_truncated() -> None:
    """In one pass here; with worker processes in tests/integration/test_dataset_parallel.py."""
    packed = gzip.compress(jsonl(2000), compresslevel=1)
    spread = Parallelism(workers=1, min_bytes=0, piece_bytes=2048)
    report = scan_upload(BytesSource("d.jsonl.gz", packed[: len(packed) // 2]), parallel=spread)
    first = report.errors[0]  # listed first, however far the workers had got when it was found
    assert (first.line, first.code) == (None, r.UNREADABLE_FILE) and "truncated" in first.message
    assert 0 < report.rows < 2000 and report.errors[1].code == r.INVALID_JSON  # the cut-off last line


def test_gzip_output_is_bounded_per_step() -> None:
    """A small body that inflates a lot (a 'zip bomb' shape) comes out a piece at a time."""
    line = jsonl(1)
    packed = zlib.compress(line * 20_000, 9, wbits=31)
    report = scan_upload(BytesSource("d.jsonl.gz", packed), parallel=Parallelism(workers=1, piece_bytes=4096))
    assert report.valid and report.rows == 20_000


@pytest.mark.parametrize("piece", [1, 2, 3, 4, 1 << 20])
def test_byte_order_mark_is_dropped_however_the_first_bytes_arrive(piece: int) -> None:
    data = b"\xef\xbb\xbf" + jsonl(3)
    report = scan_upload(BytesSource("d.jsonl", data), parallel=Parallelism(workers=1, piece_bytes=piece))
    assert report.valid and report.rows == 3


def test_a_file_that_is_only_part_of_a_byte_order_mark() -> None:
    report = scan_upload(BytesSource("d.jsonl", b"\xef\xbb"))
    assert [(e.line, e.code) for e in report.errors] == [(1, r.NOT_UTF8)]


def parquet_bytes(tmp_path: Path, n: int, **columns: list[str]) -> bytes:
    messages = [[{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]
                for i in range(n)]
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({**columns, "messages": messages}), path, row_group_size=50)
    return path.read_bytes()


def test_parquet_over_ranged_reads_reads_and_hashes_every_byte_once(tmp_path: Path) -> None:
    # A column nobody reads sits between the row groups' messages: it is read once, for the hash only.
    data = parquet_bytes(tmp_path, 400, prompt=[f"prompt {i} " * 20 for i in range(400)])
    source = BytesSource("d.parquet", data)
    train, test = MemorySink(), MemorySink()
    report = scan_upload(source, Limits(), train, test)
    assert report.valid and report.rows == 400 and report.format == "parquet"
    assert report.content_sha256 == hashlib.sha256(data).hexdigest()
    footer = int.from_bytes(data[-8:-4], "little") + 8
    assert source.read <= len(data) + footer  # the footer is read twice (pyarrow, then the hash); no more
    assert train.value is not None and train.value.count(b"\n") == report.train_rows


def test_hashed_file_reads_like_a_file_and_hashes_in_order() -> None:
    data = bytes(range(256)) * 40
    file = HashedFile(BytesSource("x.bin", data))
    file.seek(100)
    assert file.read(50) == data[100:150]
    file.seek(-10, 2)
    assert file.read() == data[-10:]
    file.seek(20)
    assert file.read(10) == data[20:30]  # a read behind what is hashed is not hashed again
    assert file.digest() == hashlib.sha256(data).hexdigest()

"""The parallel scan: for any file, ranges scanned by worker processes and merged in order give the single
pass's report, field for field, and the same staged files. (Integration tier: it starts worker processes.)"""

from __future__ import annotations

import contextlib
import gzip
import multiprocessing as mp
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from shared.dataset import FileSource, Limits, MemorySink, Parallelism, Report, scan_path, scan_upload
from shared.dataset import parallel as parallel_module
from shared.dataset import rules as r
from shared.dataset.scanner import Lines
from shared.dataset.screening import Screening
from shared.dataset.sources import SourceChanged
from shared.dataset.stream import Hasher

ONE_PASS = Parallelism(workers=1)
Scanned = tuple[Report, MemorySink, MemorySink]


class BytesSource:
    """An upload held in memory (not a local file, so ranges reach the workers through shared memory)."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name, self.data, self.size = name, data, len(data)

    def read_range(self, offset: int, length: int) -> bytes:
        return self.data[offset:offset + length]


def row(messages: list[dict[str, Any]], **extra: Any) -> bytes:
    return orjson.dumps({**extra, "messages": messages})


def chat(text: str, answer: str = "ok") -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}, {"role": "assistant", "content": answer}]


TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\n\r"), max_size=40)
# Values screening finds (and look-alikes it must not), placed anywhere in a message.
SENSITIVE = st.sampled_from(["jane.doe@contoso.com", "+44 7911 123456", "4539 1488 0343 6467", "536-22-1234",
                             "DE89 3704 0044 0532 0130 00", "AKIAZ7QW3LN4XK2PB9RT", "password=Tq7xLm2Vz9Kp",
                             "81.2.69.160", "4539 1488 0343 6468", "555-123-4567", "a@example.com"])
SCREENED = st.tuples(TEXT, SENSITIVE, TEXT).map(lambda t: f"{t[0]} {t[1]}\n{t[2]}")
LINES = st.one_of(
    TEXT.map(lambda t: row(chat(t or "x"))),  # the common shape (fast path)
    TEXT.map(lambda t: row(chat("q", "é😀中" * 12 + t), prompt="p")),  # multi-byte text, cut by small pieces
    TEXT.map(lambda t: row([{"role": "system", "content": "s"}, *chat(t or "y")])),
    TEXT.map(lambda t: row([{"role": "assistant", "content": t or "z"}])),  # warning: no user message
    TEXT.map(lambda t: row([{"role": "user", "content": "q"}, {"role": "system", "content": "s"},
                            {"role": "assistant", "content": t or "a"}])),  # warning: system not first
    st.just(row([{"role": "user", "content": "q"}, {"role": "assistant", "content": None,
                                                   "tool_calls": [{"id": "1"}]}])),  # valid, general path
    SCREENED.map(lambda t: row(chat(t, t))),  # sensitive values: findings, errors or redaction
    SCREENED.map(lambda t: row([{"role": "user", "content": t},  # the general path
                                {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]}])),
    st.just(row(chat("q", "x" * 90))),  # over the small token limit: a warning
    st.just(row(chat("q", "y" * 400))),  # longer than max_line_bytes: an error
    st.just(row([{"role": "user", "content": "   "}, {"role": "assistant", "content": "a"}])),
    st.just(row([{"role": "robot", "content": "beep"}])),
    st.just(b'{"messages": []}'),
    st.just(b"[1, 2]"),
    st.just(b"{not json"),
    st.just(b"\xff\xfe bad utf-8"),
    st.just(row(chat("a")) + b" " + row(chat("b"))),  # two objects on a line: invalid
    st.just(orjson.dumps({"messages": chat("p")}, option=orjson.OPT_INDENT_2)),  # one object, many lines
    st.sampled_from([b"", b"   ", b"\t", b"\r"]),  # blank lines are fine
)


@st.composite
def uploads(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(LINES, max_size=60))
    newline = draw(st.sampled_from([b"\n", b"\r\n"]))
    data = newline.join(lines)
    if draw(st.booleans()):
        data += newline
    return (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + data


def scanned(source: Any, limits: Limits, parallel: Parallelism) -> Scanned:
    train, test = MemorySink(), MemorySink()
    return scan_upload(source, limits, train, test, parallel=parallel), train, test


def assert_same(one: Scanned, other: Scanned) -> None:
    assert other[0].to_dict() == one[0].to_dict()
    assert (other[1].value, other[2].value) == (one[1].value, one[2].value)
    assert (other[1].aborted, other[2].aborted) == (one[1].aborted, one[2].aborted)


@settings(max_examples=60, deadline=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=uploads(), workers=st.integers(1, 3), piece=st.sampled_from([7, 16, 64, 300]),
       in_file=st.booleans(), errors_listed=st.integers(1, 4), fraction=st.sampled_from([0.05, 0.3, 0.9]),
       test_max=st.integers(1, 5), staging=st.booleans(),
       screening=st.sampled_from([None, Screening(), Screening("report", "report"),
                                  Screening("redact", "reject")]))
def test_parallel_report_equals_single_pass(data: bytes, workers: int, piece: int, in_file: bool,
                                            errors_listed: int, fraction: float, test_max: int,
                                            staging: bool, screening: Screening | None) -> None:
    limits = Limits(max_line_bytes=300, max_errors_listed=errors_listed, token_limit_per_conversation=30,
                    test_fraction=fraction, test_rows_max=test_max, screening=screening,
                    max_findings_listed=errors_listed + 1)
    spread = Parallelism(workers=workers, min_bytes=0, piece_bytes=piece)
    event(f"worker processes: {spread.workers_for(len(data), staging=True)}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload.jsonl"
        path.write_bytes(data)
        single = scanned(BytesSource("upload.jsonl", data), limits, ONE_PASS)
        source = FileSource(path) if in_file else contextlib.nullcontext(BytesSource("upload.jsonl", data))
        with source as opened:
            parallel = scanned(opened, limits, spread)
    event("findings" if single[0].sensitive.get("count") else "no findings")
    if not staging:
        single[1].value = single[2].value = parallel[1].value = parallel[2].value = None
    assert_same(single, parallel)
    assert mp.active_children() == []


def ultrachat_like(n: int) -> bytes:
    return b"".join(row(chat(f"question {i} " * (i % 9 + 1), f"answer {i} é" * (i % 13 + 1)),
                        prompt=f"question {i}", prompt_id=f"{i:064x}") + b"\n" for i in range(n))


@pytest.mark.parametrize("in_file", [False, True], ids=["stream", "file"])
@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_every_start_method_gives_the_same_report(method: str, in_file: bool, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    data = ultrachat_like(400) + b"{broken\n" + ultrachat_like(50)
    monkeypatch.setattr(parallel_module, "_context", lambda: mp.get_context(method))
    spread = Parallelism(workers=2, min_bytes=0, piece_bytes=4096)
    single = scanned(BytesSource("d.jsonl", data), Limits(), ONE_PASS)
    path = tmp_path / "d.jsonl"
    path.write_bytes(data)
    with FileSource(path) if in_file else contextlib.nullcontext(BytesSource("d.jsonl", data)) as opened:
        assert_same(single, scanned(opened, Limits(), spread))
    assert single[0].errors[0].line == 401


@pytest.mark.parametrize(("workers", "cut_from_original"), [(1, False), (2, False), (2, True)],
                         ids=["one-pass", "parallel", "parallel-worker-reads-short"])
def test_a_file_that_shrinks_while_it_is_scanned_is_a_clear_error(workers: int, cut_from_original: bool,
                                                                  tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path, data = tmp_path / "d.jsonl", ultrachat_like(3000)
    path.write_bytes(data)
    if cut_from_original:  # the parent cuts ranges from the bytes it saw first; a worker's read is short
        monkeypatch.setattr(parallel_module, "_context", lambda: mp.get_context("fork"))
        monkeypatch.setattr(parallel_module, "_past_newline", lambda _source, at: data.index(b"\n", at) + 1)
    shm_before = set(os.listdir("/dev/shm"))
    train, test = MemorySink(), MemorySink()
    with FileSource(path) as source:  # opened at its full size; then someone truncates it
        os.truncate(path, source.size // 2)
        with pytest.raises(SourceChanged, match=r"d\.jsonl changed while it was read"):
            scan_upload(source, Limits(), train, test,
                        parallel=Parallelism(workers=workers, min_bytes=0, piece_bytes=16 * 1024))
    assert train.aborted and test.aborted
    assert mp.active_children() == []
    assert set(os.listdir("/dev/shm")) <= shm_before


@pytest.mark.parametrize("workers", [1, 2])
def test_a_local_file_reports_progress_in_order_up_to_its_size(workers: int, tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(ultrachat_like(3000))
    seen: list[int] = []
    report = scan_path(path, Limits(), progress=seen.append,
                       parallel=Parallelism(workers=workers, min_bytes=0, piece_bytes=16 * 1024))
    assert report.valid and report.rows == 3000
    assert len(seen) > 10 and seen == sorted(seen) and seen[-1] == path.stat().st_size


def test_staged_rows_spill_when_a_range_stages_more_than_its_slot(tmp_path: Path) -> None:
    # One 30 kB conversation in 64-byte pieces: its range is many pieces long, its staged row larger than
    # the 3-piece slot, so it comes back through a segment of its own.
    data = ultrachat_like(3) + row(chat("long", "w" * 30_000)) + b"\n" + ultrachat_like(3)
    spread = Parallelism(workers=2, min_bytes=0, piece_bytes=64)
    single = scanned(BytesSource("d.jsonl", data), Limits(), ONE_PASS)
    parallel = scanned(BytesSource("d.jsonl", data), Limits(), spread)
    assert_same(single, parallel)
    assert parallel[0].valid and parallel[0].rows == 7


def test_a_failing_worker_fails_the_scan_and_aborts_the_sinks(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Lines, chunk: bytes) -> None:
        raise ValueError("disk on fire")

    monkeypatch.setattr(parallel_module, "_context", lambda: mp.get_context("fork"))
    monkeypatch.setattr(Lines, "feed", broken)  # forked workers inherit it; the parent never feeds
    shm_before = set(os.listdir("/dev/shm"))
    with pytest.raises(RuntimeError, match="disk on fire"):
        scanned(BytesSource("d.jsonl", ultrachat_like(200)), Limits(),
                Parallelism(workers=2, min_bytes=0, piece_bytes=1024))
    assert mp.active_children() == []
    assert set(os.listdir("/dev/shm")) <= shm_before  # no shared memory left behind


def test_workers_for_an_upload() -> None:
    mib = 1 << 20
    cores = len(os.sched_getaffinity(0))
    assert Parallelism().workers_for(10 * mib, staging=False) == 1  # small: one pass, no start-up cost
    assert Parallelism(workers=1).workers_for(1 << 30, staging=True) == 1
    assert Parallelism(workers=64).workers_for(1 << 30, staging=True) == cores
    two_ranges = Parallelism(workers=64, min_bytes=0, piece_bytes=mib)
    assert two_ranges.workers_for(mib + 1, staging=False) == min(2, cores)


def test_hashing_a_file_stops_at_the_next_block_once_asked() -> None:
    # A scan that fails (or is interrupted) closes its hasher; the hash thread must not read the rest of a
    # big file first.
    hasher, blocks = Hasher(), []

    class BigFile:  # a FileSource's shape: 1,000 blocks of 16 bytes
        name, size = "big.jsonl", 16_000

        def fill(self, buffer: bytearray, offset: int, end: int) -> Iterator[int]:
            for _ in range(1000):
                blocks.append(len(buffer))
                if len(blocks) == 3:
                    hasher.stop()
                yield len(buffer)

    hasher.read(BigFile(), block=16)  # type: ignore[arg-type]
    hasher.hexdigest()  # waits for the hash thread
    assert blocks == [16, 16, 16]


def small_chats(n: int) -> bytes:
    return b"".join(orjson.dumps({"messages": [{"role": "user", "content": f"q{i}"},
                                               {"role": "assistant", "content": f"a{i} é"}]}) + b"\n"
                    for i in range(n))


def test_jsonl_gz_on_every_core_matches_one_pass() -> None:
    packed = gzip.compress(small_chats(2000), compresslevel=1)
    spread = Parallelism(workers=2, min_bytes=0, piece_bytes=4096)
    sinks = [(MemorySink(), MemorySink()) for _ in range(2)]
    one = scan_upload(BytesSource("d.jsonl.gz", packed), Limits(), *sinks[0], parallel=Parallelism(workers=1))
    many = scan_upload(BytesSource("d.jsonl.gz", packed), Limits(), *sinks[1], parallel=spread)
    assert many.to_dict() == one.to_dict() and one.valid and one.rows == 2000
    assert [s.value for s in sinks[1]] == [s.value for s in sinks[0]]


def test_a_truncated_gzip_read_by_workers_keeps_what_came_before_and_says_it_is_truncated() -> None:
    packed = gzip.compress(small_chats(2000), compresslevel=1)
    spread = Parallelism(workers=2, min_bytes=0, piece_bytes=2048)
    report = scan_upload(BytesSource("d.jsonl.gz", packed[: len(packed) // 2]), parallel=spread)
    first = report.errors[0]  # listed first, however far the workers had got when it was found
    assert (first.line, first.code) == (None, r.UNREADABLE_FILE) and "truncated" in first.message
    assert 0 < report.rows < 2000 and report.errors[1].code == r.INVALID_JSON  # the cut-off last line

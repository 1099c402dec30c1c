"""The train/test split: deterministic, fraction-driven, at least one test row, at most the cap."""

from __future__ import annotations

import itertools

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.dataset import Limits, MemorySink, scan
from shared.dataset.split import Split


def rows(n: int, offset: int = 0) -> bytes:
    return b"".join(orjson.dumps({"messages": [{"role": "user", "content": f"q{i}"},
                                               {"role": "assistant", "content": f"a{i}"}]}) + b"\n"
                    for i in range(offset, offset + n))


def staged(data: bytes, limits: Limits) -> tuple[set[bytes], set[bytes]]:
    train, test = MemorySink(), MemorySink()
    scan([data], limits, train, test)
    assert train.value is not None and test.value is not None
    return set(train.value.splitlines()), set(test.value.splitlines())


def test_same_file_same_split_and_membership_is_per_conversation() -> None:
    limits = Limits(test_fraction=0.2)
    first = staged(rows(500), limits)
    assert first == staged(rows(500), limits)
    # A conversation's side does not depend on its neighbours: shuffle the file, same split.
    shuffled = b"".join(reversed(rows(500).splitlines(keepends=True)))
    assert staged(shuffled, limits) == first


def test_fraction_is_respected_roughly() -> None:
    train, test = staged(rows(4000), Limits(test_fraction=0.1, test_rows_max=10_000))
    assert 300 < len(test) < 500
    assert len(train) + len(test) == 4000


def test_test_rows_are_capped() -> None:
    train, test = staged(rows(2000), Limits(test_fraction=0.5, test_rows_max=25))
    assert len(test) == 25 and len(train) == 1975


def test_at_least_one_test_row_even_when_no_hash_falls_in_range() -> None:
    for n in (2, 3, 5):
        report = scan([rows(n)], Limits(test_fraction=1e-9))
        assert (report.train_rows, report.test_rows) == (n - 1, 1)


def test_at_least_one_train_row_when_everything_hashes_to_test() -> None:
    report = scan([rows(5)], Limits(test_fraction=0.999999))
    assert report.train_rows >= 1 and report.test_rows >= 1


def test_a_single_row_leaves_nothing_to_test_so_it_is_refused() -> None:
    """The deploy gate must never run zero cases: one conversation cannot be split, so it is an error."""
    report = scan([rows(1)])
    assert (report.train_rows, report.test_rows, report.valid) == (1, 0, False)
    assert [e.code for e in report.errors] == ["too_few_rows_to_split"]
    assert scan([rows(1)], Limits(split=False)).valid, "a file that is all train (a test file named) is fine"


def test_fewer_training_rows_than_the_minimum_are_refused_naming_the_setting() -> None:
    short = scan([rows(10)], Limits(min_training_rows=10))  # 9 train + 1 test
    assert (short.train_rows, short.test_rows, short.valid) == (9, 1, False)
    (error,) = short.errors
    assert error.code == "too_few_training_rows" and "MIN_TRAINING_ROWS" in error.message
    assert "9 training conversation(s) (1 more held out" in error.message
    assert scan([rows(11)], Limits(min_training_rows=10)).valid
    assert not scan([rows(9)], Limits(min_training_rows=10, split=False)).valid


@settings(max_examples=300, deadline=None, print_blob=True)
@given(rows=st.lists(st.tuples(st.integers(0, (1 << 32) - 1), st.integers(0, 50)), max_size=80),
       cuts=st.lists(st.integers(0, 80), max_size=6), fraction=st.sampled_from([1e-9, 0.05, 0.5, 0.999]),
       test_max=st.integers(1, 6))
def test_take_routes_a_run_exactly_as_route_does_row_by_row(rows: list[tuple[int, int]], cuts: list[int],
                                                             fraction: float, test_max: int) -> None:
    """`take` adds rows in bulk and hands only some to `route`: same sides, counts, tokens and order."""
    one_by_one, in_runs = Split(fraction, test_max), Split(fraction, test_max)
    staged = [f"row {i}".encode() for i in range(len(rows))]
    for (key, tokens), line in zip(rows, staged, strict=True):
        one_by_one.route(key, line, tokens)
    bounds = [0, *sorted(c for c in cuts if c < len(rows)), len(rows)]
    for a, b in itertools.pairwise(bounds):
        run = b"".join(staged[a:b])  # a tally's staged rows: one buffer, each row's end recorded
        ends = list(itertools.accumulate(len(line) for line in staged[a:b]))
        in_runs.take([k for k, _ in rows[a:b]], [t for _, t in rows[a:b]], memoryview(run), ends)
    for split in (one_by_one, in_runs):
        split.finish()
    # A run of train rows comes back as one view: compare the bytes each side would be written as.
    assert [b"".join(side) for side in (in_runs.train, in_runs.test)] == \
        [b"".join(side) for side in (one_by_one.train, one_by_one.test)]
    assert (in_runs.train_rows, in_runs.test_rows, in_runs.train_tokens) == \
        (one_by_one.train_rows, one_by_one.test_rows, one_by_one.train_tokens)

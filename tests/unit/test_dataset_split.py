"""The train/test split: deterministic, fraction-driven, at least one test row, at most the cap."""

from __future__ import annotations

import orjson

from shared.dataset import Limits, MemorySink, scan


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


def test_single_row_trains_and_warns() -> None:
    report = scan([rows(1)])
    assert (report.train_rows, report.test_rows) == (1, 0)
    assert [w.code for w in report.warnings] == ["too_few_rows_to_split"]

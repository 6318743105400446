"""Log entry data: lone requests stay as they are, a turn's requests share a batch entry."""

from __future__ import annotations

import msgpack  # type: ignore[import-untyped]
import pytest

from kvstore.errors import CorruptError
from kvstore.proposals import BATCH_TAG, batch_entries, entry_requests, request_count


def req(i: int, size: int = 10) -> bytes:
    return i.to_bytes(8, "big") + bytes([i % 251]) * size


def test_a_lone_request_is_its_own_entry() -> None:
    assert batch_entries([req(1)]) == [req(1)]
    assert batch_entries([]) == []


def test_requests_share_batches_bounded_in_bytes_and_in_order() -> None:
    requests = [req(i, 100) for i in range(1, 40)]
    entries = batch_entries(requests, max_bytes=1000)
    assert all(e[:8] == BATCH_TAG for e in entries)
    unpacked = [entry_requests(e) for e in entries]
    assert [r for batch in unpacked for r in batch] == requests
    assert all(sum(map(len, batch)) <= 1000 for batch in unpacked)
    # A request larger than the bound is not held back: it goes alone.
    big = req(99, 5000)
    assert batch_entries([req(1), big, req(2)], max_bytes=1000) == [req(1), big, req(2)]


@pytest.mark.parametrize(
    "data",
    [
        BATCH_TAG + b"\xc1",  # never used in msgpack
        BATCH_TAG + msgpack.packb({"a": 1}),
        BATCH_TAG + msgpack.packb([b"short"]),
        BATCH_TAG + msgpack.packb([req(1), "text"]),
        BATCH_TAG + msgpack.packb([req(1)]) + b"extra",
    ],
)
def test_a_damaged_batch_is_a_corrupt_error(data: bytes) -> None:
    with pytest.raises(CorruptError, match="batch"):
        entry_requests(data)


@pytest.mark.parametrize("n", [1, 2, 15, 16, 300, 70_000])
def test_request_count_reads_the_batch_header(n: int) -> None:
    requests = [req(i % 200 + 1, 1) for i in range(n)]
    (entry,) = batch_entries(requests, max_bytes=1 << 30)
    assert request_count(entry) == n
    if n > 1:
        assert len(entry_requests(entry)) == n
    assert request_count(b"") == 0

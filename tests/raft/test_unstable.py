"""Unstable: the tail of the log (and a snapshot) not yet on stable storage."""

from __future__ import annotations

import pytest

from kvstore.errors import InvariantError
from kvstore.raft.messages import Entry, Snapshot, SnapshotMetadata
from kvstore.raft.unstable import Unstable


def ents(*pairs: tuple[int, int]) -> list[Entry]:
    """Entries from ``(term, index)`` pairs."""
    return [Entry(term=t, index=i) for t, i in pairs]


def snap(index: int, term: int) -> Snapshot:
    return Snapshot(metadata=SnapshotMetadata(index=index, term=term))


def unstable(offset: int, entries: list[Entry], snapshot: Snapshot | None = None) -> Unstable:
    u = Unstable(offset)
    u.entries = list(entries)
    u.snapshot = snapshot
    return u


@pytest.mark.parametrize(
    "u, first, last",
    [
        (unstable(5, []), None, None),
        (unstable(5, ents((1, 5))), None, 5),
        (unstable(5, [], snap(4, 1)), 5, 4),
        (unstable(5, ents((1, 5), (1, 6)), snap(4, 1)), 5, 6),
    ],
)
def test_first_and_last_index(u: Unstable, first: int | None, last: int | None) -> None:
    assert u.maybe_first_index() == first
    assert u.maybe_last_index() == last


@pytest.mark.parametrize(
    "u, index, want",
    [
        (unstable(5, ents((1, 5))), 5, 1),
        (unstable(5, ents((1, 5))), 6, None),
        (unstable(5, ents((1, 5))), 4, None),
        (unstable(5, ents((2, 5)), snap(4, 1)), 4, 1),
        (unstable(5, ents((2, 5)), snap(4, 1)), 3, None),
        (unstable(5, [], snap(4, 1)), 5, None),
    ],
)
def test_maybe_term(u: Unstable, index: int, want: int | None) -> None:
    assert u.maybe_term(index) == want


@pytest.mark.parametrize(
    "index, term, want_offset, want_len",
    [
        (5, 1, 6, 1),  # the first entry became durable
        (6, 1, 7, 0),  # all of them
        (6, 2, 5, 2),  # the term differs: the entry was replaced since; keep it
        (4, 1, 5, 2),  # below the tail: nothing to forget
        (7, 1, 5, 2),  # beyond the tail: nothing to forget
    ],
)
def test_stable_to(index: int, term: int, want_offset: int, want_len: int) -> None:
    u = unstable(5, ents((1, 5), (1, 6)))
    u.stable_to(index, term)
    assert (u.offset, len(u.entries)) == (want_offset, want_len)


def test_stable_snap_to_only_the_pending_snapshot() -> None:
    u = unstable(5, [], snap(4, 1))
    u.stable_snap_to(3)
    assert u.snapshot is not None
    u.stable_snap_to(4)
    assert u.snapshot is None


def test_restore_replaces_everything() -> None:
    u = unstable(5, ents((1, 5), (1, 6)))
    s = snap(10, 3)
    u.restore(s)
    assert (u.offset, u.entries, u.snapshot) == (11, [], s)
    assert u.maybe_last_index() == 10


@pytest.mark.parametrize(
    "offset, before, append, want_offset, want",
    [
        # Directly after the tail: append.
        (5, ents((1, 5)), ents((1, 6), (1, 7)), 5, ents((1, 5), (1, 6), (1, 7))),
        # Replacing the whole tail.
        (5, ents((1, 5)), ents((2, 5), (2, 6)), 5, ents((2, 5), (2, 6))),
        # Before the tail: the stable log is overwritten too.
        (5, ents((1, 5)), ents((2, 4), (2, 5)), 4, ents((2, 4), (2, 5))),
        # Within the tail: truncate then append.
        (5, ents((1, 5), (1, 6), (1, 7)), ents((2, 6)), 5, ents((1, 5), (2, 6))),
    ],
)
def test_truncate_and_append(
    offset: int, before: list[Entry], append: list[Entry], want_offset: int, want: list[Entry]
) -> None:
    u = unstable(offset, before)
    u.truncate_and_append(append)
    assert (u.offset, u.entries) == (want_offset, want)


def test_slice() -> None:
    u = unstable(5, ents((1, 5), (1, 6), (2, 7)))
    assert u.slice(6, 8) == ents((1, 6), (2, 7))
    assert u.slice(5, 5) == []
    for lo, hi in [(4, 6), (6, 9), (7, 6)]:
        with pytest.raises(InvariantError):
            u.slice(lo, hi)

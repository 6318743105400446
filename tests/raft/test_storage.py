"""MemoryLogStorage: the reference LogStorage the driver writes to."""

from __future__ import annotations

import pytest

from kvstore.errors import InvariantError
from kvstore.raft.messages import ConfState, Entry, HardState, NodeId, Snapshot, SnapshotMetadata
from kvstore.raft.storage import (
    LogCompactedError,
    LogUnavailableError,
    MemoryLogStorage,
    SnapshotOutOfDateError,
    limit_size,
)

VOTERS = ConfState(voters=(NodeId(1), NodeId(2), NodeId(3)))


def ents(*pairs: tuple[int, int]) -> list[Entry]:
    return [Entry(term=t, index=i) for t, i in pairs]


def storage(*pairs: tuple[int, int], compact_to: int = 0) -> MemoryLogStorage:
    """A storage holding ``pairs``, compacted up to ``compact_to``."""
    s = MemoryLogStorage(VOTERS)
    s.append(ents(*pairs))
    if compact_to:
        s.compact(compact_to)
    return s


def terms(s: MemoryLogStorage) -> list[tuple[int, int]]:
    return [(e.term, e.index) for e in s.entries(s.first_index(), s.last_index() + 1, 1 << 40)]


def test_empty_storage() -> None:
    s = MemoryLogStorage(VOTERS)
    assert (s.first_index(), s.last_index(), s.term(0)) == (1, 0, 0)
    assert s.initial_state() == (HardState(), VOTERS)
    assert s.snapshot().is_empty()
    with pytest.raises(LogUnavailableError):
        s.term(1)


def test_hard_state_is_what_was_set() -> None:
    s = MemoryLogStorage(VOTERS)
    hs = HardState(term=3, vote=NodeId(2), commit=1)
    s.set_hard_state(hs)
    assert s.hard_state == hs
    assert s.initial_state()[0] == hs


@pytest.mark.parametrize(
    "append, want",
    [
        # Extends the log.
        (ents((3, 6), (3, 7)), [(3, 4), (3, 5), (3, 6), (3, 7)]),
        # Same entries again: unchanged.
        (ents((3, 4), (3, 5)), [(3, 4), (3, 5)]),
        # A conflicting tail is replaced from the first new entry on.
        (ents((4, 5), (4, 6)), [(3, 4), (4, 5), (4, 6)]),
        (ents((5, 4)), [(5, 4)]),
        # Entries at or below the snapshot are skipped.
        (ents((3, 2), (3, 3), (3, 4), (5, 5)), [(3, 4), (5, 5)]),
        # Entirely compacted: nothing happens.
        (ents((3, 1), (3, 2)), [(3, 4), (3, 5)]),
        ([], [(3, 4), (3, 5)]),
    ],
)
def test_append(append: list[Entry], want: list[tuple[int, int]]) -> None:
    s = storage((3, 1), (3, 2), (3, 3), (3, 4), (3, 5), compact_to=3)
    s.append(append)
    assert terms(s) == want


def test_append_with_a_gap_raises() -> None:
    s = storage((1, 1), (1, 2))
    with pytest.raises(InvariantError):
        s.append(ents((1, 4)))


def test_compact_keeps_the_term_of_the_compacted_index() -> None:
    s = storage((1, 1), (2, 2), (3, 3), (3, 4))
    s.compact(2)
    assert (s.first_index(), s.last_index(), s.term(2)) == (3, 4, 2)
    with pytest.raises(LogCompactedError):
        s.term(1)
    with pytest.raises(LogCompactedError):
        s.entries(2, 4, 1 << 20)
    with pytest.raises(LogCompactedError):
        s.compact(2)
    with pytest.raises(InvariantError):
        s.compact(5)


def test_entries_bounds_and_size_limit() -> None:
    s = MemoryLogStorage(VOTERS)
    s.append([Entry(term=1, index=i, data=b"x" * 10) for i in range(1, 6)])
    assert len(s.entries(1, 6, 1 << 20)) == 5
    # Each entry is 26 bytes (10 of data + 16): 60 bytes hold two.
    assert [e.index for e in s.entries(1, 6, 60)] == [1, 2]
    # At least one entry, however small the limit.
    assert [e.index for e in s.entries(2, 6, 1)] == [2]
    with pytest.raises(InvariantError):
        s.entries(1, 7, 1 << 20)


def test_entries_of_an_empty_log_is_unavailable() -> None:
    with pytest.raises(LogUnavailableError):
        MemoryLogStorage(VOTERS).entries(1, 1, 100)


def test_create_snapshot() -> None:
    s = storage((1, 1), (2, 2), (2, 3))
    snap = s.create_snapshot(2, b"state")
    assert snap.metadata == SnapshotMetadata(index=2, term=2, conf_state=VOTERS)
    assert s.snapshot() == snap
    # Creating does not compact: the entries are still there.
    assert s.first_index() == 1
    with pytest.raises(SnapshotOutOfDateError):
        s.create_snapshot(2, b"again")
    with pytest.raises(SnapshotOutOfDateError):
        s.create_snapshot(1, b"older")
    with pytest.raises(InvariantError):
        s.create_snapshot(4, b"future")
    other = ConfState(voters=(NodeId(1),))
    assert s.create_snapshot(3, b"", other).metadata.conf_state == other


def test_apply_snapshot_replaces_the_log() -> None:
    s = storage((1, 1), (1, 2))
    snap = Snapshot(SnapshotMetadata(index=10, term=4, conf_state=VOTERS), b"data")
    s.apply_snapshot(snap)
    assert (s.first_index(), s.last_index(), s.term(10), s.snapshot()) == (11, 10, 4, snap)
    s.append(ents((4, 11)))
    assert terms(s) == [(4, 11)]
    with pytest.raises(SnapshotOutOfDateError):
        s.apply_snapshot(Snapshot(SnapshotMetadata(index=10, term=4)))
    with pytest.raises(SnapshotOutOfDateError):
        s.apply_snapshot(Snapshot(SnapshotMetadata(index=5, term=4)))


@pytest.mark.parametrize(
    "sizes, limit, want",
    [
        ([], 10, 0),
        ([0, 0, 0], 48, 3),
        ([0, 0, 0], 47, 2),
        ([100], 1, 1),
        ([0, 100, 0], 20, 1),
    ],
)
def test_limit_size(sizes: list[int], limit: int, want: int) -> None:
    entries = [Entry(term=1, index=i + 1, data=b"d" * n) for i, n in enumerate(sizes)]
    assert len(limit_size(entries, limit)) == want

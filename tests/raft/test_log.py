"""RaftLog: stable storage plus the unstable tail (Raft §5.3, §5.4)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from kvstore.errors import InvariantError
from kvstore.raft.log import RaftLog
from kvstore.raft.messages import ConfState, Entry, NodeId, Snapshot, SnapshotMetadata
from kvstore.raft.storage import LogCompactedError, LogUnavailableError, MemoryLogStorage

VOTERS = ConfState(voters=(NodeId(1), NodeId(2), NodeId(3)))


def ents(*pairs: tuple[int, int]) -> list[Entry]:
    """Entries from ``(term, index)`` pairs."""
    return [Entry(term=t, index=i) for t, i in pairs]


def by_terms(*terms: int, start: int = 1) -> list[Entry]:
    """Consecutive entries from ``start`` with the given terms."""
    return [Entry(term=t, index=start + i) for i, t in enumerate(terms)]


def raft_log(
    stable: Sequence[Entry] = (),
    unstable: Sequence[Entry] = (),
    *,
    compact_to: int = 0,
    committed: int = 0,
    max_size: int = 1 << 30,
) -> RaftLog:
    st = MemoryLogStorage(VOTERS)
    st.append(list(stable))
    if compact_to:
        st.create_snapshot(compact_to, b"")
        st.compact(compact_to)
    log = RaftLog(st, max_size)
    if unstable:
        log.append(list(unstable))
    log.committed = max(log.committed, committed)
    return log


def pairs(entries: list[Entry]) -> list[tuple[int, int]]:
    return [(e.term, e.index) for e in entries]


# -- appending -------------------------------------------------------------


@pytest.mark.parametrize(
    "index, log_term, committed, entries, want_last, want_commit, want_log",
    [
        # The previous entry does not match: rejected, nothing changes.
        (3, 2, 3, ents((4, 4)), None, 1, [(1, 1), (2, 2), (3, 3)]),
        (4, 3, 3, ents((4, 5)), None, 1, [(1, 1), (2, 2), (3, 3)]),
        # A plain append; commit follows the leader but not past the new entries.
        (3, 3, 3, ents((4, 4)), 4, 3, [(1, 1), (2, 2), (3, 3), (4, 4)]),
        (3, 3, 9, ents((4, 4)), 4, 4, [(1, 1), (2, 2), (3, 3), (4, 4)]),
        (3, 3, 9, [], 3, 3, [(1, 1), (2, 2), (3, 3)]),
        # Entries we already have: nothing to append, commit still moves.
        (1, 1, 2, ents((2, 2)), 2, 2, [(1, 1), (2, 2), (3, 3)]),
        # A heartbeat-like append never lowers the commit index.
        (1, 1, 0, [], 1, 1, [(1, 1), (2, 2), (3, 3)]),
        # A conflicting uncommitted tail is replaced.
        (1, 1, 1, ents((4, 2)), 2, 1, [(1, 1), (4, 2)]),
        (2, 2, 1, ents((4, 3), (4, 4)), 4, 1, [(1, 1), (2, 2), (4, 3), (4, 4)]),
    ],
)
def test_maybe_append(
    index: int,
    log_term: int,
    committed: int,
    entries: list[Entry],
    want_last: int | None,
    want_commit: int,
    want_log: list[tuple[int, int]],
) -> None:
    log = raft_log(by_terms(1, 2, 3), committed=1)
    assert log.maybe_append(index, log_term, committed, entries) == want_last
    assert log.committed == want_commit
    assert pairs(log.all_entries()) == want_log


def test_maybe_append_never_overwrites_a_committed_entry() -> None:
    log = raft_log(by_terms(1, 2, 3), committed=2)
    with pytest.raises(InvariantError):
        log.maybe_append(1, 1, 3, ents((4, 2)))


def test_append_below_commit_raises() -> None:
    log = raft_log(by_terms(1, 1, 1), committed=2)
    with pytest.raises(InvariantError):
        log.append(ents((2, 2)))
    assert log.append([]) == 3


@pytest.mark.parametrize(
    "entries, want",
    [
        ([], 0),
        (ents((1, 1), (2, 2), (3, 3)), 0),
        (ents((2, 2), (3, 3)), 0),
        (ents((3, 3)), 0),
        # New entries past the end.
        (ents((3, 3), (4, 4)), 4),
        (ents((4, 4), (4, 5)), 4),
        # Term conflicts.
        (ents((4, 1), (4, 2)), 1),
        (ents((1, 1), (4, 2)), 2),
        (ents((1, 1), (2, 2), (4, 3), (4, 4)), 3),
    ],
)
def test_find_conflict(entries: list[Entry], want: int) -> None:
    assert raft_log(by_terms(1, 2, 3)).find_conflict(entries) == want


@pytest.mark.parametrize(
    "index, term, want",
    [
        # Log terms: 1 1 2 2 2 5 5 (indexes 1..7).
        (7, 5, (7, 5)),
        (7, 4, (5, 2)),
        (7, 2, (5, 2)),
        (7, 1, (2, 1)),
        (7, 0, (0, 0)),
        (4, 9, (4, 2)),
        (2, 1, (2, 1)),
        (0, 3, (0, 0)),
        # An index past the end has no known term: stop there.
        (9, 3, (9, 0)),
    ],
)
def test_find_conflict_by_term(index: int, term: int, want: tuple[int, int]) -> None:
    log = raft_log(by_terms(1, 1, 2, 2, 2), by_terms(5, 5, start=6))
    assert log.find_conflict_by_term(index, term) == want


def test_find_conflict_by_term_stops_at_the_snapshot() -> None:
    log = raft_log(by_terms(1, 1, 2, 3, 3), compact_to=3)
    assert log.find_conflict_by_term(5, 2) == (3, 2)
    assert log.find_conflict_by_term(5, 1) == (2, 0)


# -- committing --------------------------------------------------------------


def test_commit_to_never_decreases_nor_passes_the_log() -> None:
    log = raft_log(by_terms(1, 1, 1), committed=2)
    log.commit_to(1)
    assert log.committed == 2
    log.commit_to(3)
    assert log.committed == 3
    with pytest.raises(InvariantError):
        log.commit_to(4)


@pytest.mark.parametrize(
    "max_index, term, want, want_commit",
    [
        (3, 2, True, 3),
        # An entry of an earlier term is never committed by counting (§5.4.2).
        (2, 2, False, 1),
        (3, 1, False, 1),
        # Not past the commit index, nor past the log.
        (1, 1, False, 1),
        (9, 2, False, 1),
    ],
)
def test_maybe_commit_only_counts_the_current_term(
    max_index: int, term: int, want: bool, want_commit: int
) -> None:
    log = raft_log(by_terms(1, 1, 2), committed=1)
    assert log.maybe_commit(max_index, term) == want
    assert log.committed == want_commit


def test_next_committed_entries_and_applied() -> None:
    data = [Entry(term=1, index=i, data=b"x" * 4) for i in range(1, 6)]
    log = raft_log(data, committed=4, max_size=2 * 20)
    assert [e.index for e in log.next_committed_ents()] == [1, 2]
    log.applied_to(2)
    assert [e.index for e in log.next_committed_ents()] == [3, 4]
    log.applied_to(4)
    assert not log.has_next_committed_ents()
    assert log.next_committed_ents() == []
    with pytest.raises(InvariantError):
        log.applied_to(5)  # past the commit index
    with pytest.raises(InvariantError):
        log.applied_to(3)  # backwards


def test_no_committed_entries_while_a_snapshot_is_pending() -> None:
    log = raft_log(by_terms(1, 1), committed=2)
    log.restore(Snapshot(SnapshotMetadata(index=5, term=2)))
    assert log.committed == 5
    assert not log.has_next_committed_ents()
    assert (log.first_index(), log.last_index(), log.term(5)) == (6, 5, 2)
    assert log.stable_last_index() == 0
    log.stable_snap_to(5)
    assert log.unstable.snapshot is None


# -- reading ------------------------------------------------------------------


@pytest.mark.parametrize(
    "last_index, term, want",
    [
        # Our log ends at 3/2.
        (2, 3, True),
        (3, 3, True),
        (2, 2, False),
        (3, 2, True),
        (4, 2, True),
        (9, 1, False),
    ],
)
def test_is_up_to_date(last_index: int, term: int, want: bool) -> None:
    assert raft_log(by_terms(1, 2, 2)).is_up_to_date(last_index, term) == want


def test_slices_span_storage_and_unstable() -> None:
    log = raft_log(by_terms(1, 1, 2), by_terms(3, 3, start=4))
    assert pairs(log.slice(2, 6, 1 << 20)) == [(1, 2), (2, 3), (3, 4), (3, 5)]
    assert pairs(log.slice(4, 6, 1 << 20)) == [(3, 4), (3, 5)]
    assert pairs(log.slice(2, 6, 40)) == [(1, 2), (2, 3)]
    assert log.slice(3, 3, 1) == []
    assert pairs(log.entries(5, 1 << 20)) == [(3, 5)]
    assert log.entries(6, 1 << 20) == []
    with pytest.raises(InvariantError):
        log.slice(2, 7, 1 << 20)
    with pytest.raises(InvariantError):
        log.slice(4, 3, 1 << 20)


def test_term_errors_and_zero_term() -> None:
    log = raft_log(by_terms(1, 1, 2, 2), compact_to=2)
    assert log.term(2) == 1  # the snapshot's own index still has a term
    with pytest.raises(LogCompactedError):
        log.term(1)
    with pytest.raises(LogUnavailableError):
        log.term(5)
    assert (log.zero_term_on_err(1), log.zero_term_on_err(5)) == (0, 0)
    assert log.match_term(4, 2) and not log.match_term(4, 1) and not log.match_term(1, 1)
    with pytest.raises(LogCompactedError):
        log.slice(1, 3, 1 << 20)


def test_stable_to_moves_entries_from_unstable() -> None:
    log = raft_log(by_terms(1), by_terms(2, 2, start=2))
    assert log.stable_last_index() == 1
    log.stable_to(3, 1)  # wrong term: the entry was replaced; keep it unstable
    assert log.stable_last_index() == 1
    log.stable_to(2, 2)
    assert log.stable_last_index() == 2
    assert len(log.unstable.entries) == 1


def test_a_restart_resumes_from_storage() -> None:
    log = raft_log(by_terms(1, 1, 2, 2), compact_to=2)
    assert (log.first_index(), log.last_index(), log.committed, log.applied) == (3, 4, 2, 2)
    assert log.snapshot().metadata.index == 2

"""Majority quorums: commit index and election outcome, against brute force."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvstore.raft.messages import NodeId
from kvstore.raft.quorum import VoteResult, committed_index, quorum_size, vote_result


def ids(*xs: int) -> tuple[NodeId, ...]:
    return tuple(NodeId(x) for x in xs)


@pytest.mark.parametrize("n, q", [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4), (7, 4)])
def test_quorum_size(n: int, q: int) -> None:
    assert quorum_size(n) == q


@pytest.mark.parametrize(
    "voters, match, want",
    [
        (ids(1), {1: 5}, 5),
        (ids(1, 2, 3), {1: 5, 2: 3, 3: 1}, 3),
        (ids(1, 2, 3), {1: 5, 2: 5, 3: 1}, 5),
        (ids(1, 2, 3), {1: 5}, 0),
        (ids(1, 2, 3, 4), {1: 4, 2: 3, 3: 2, 4: 1}, 2),
        (ids(1, 2, 3, 4, 5), {1: 9, 2: 9, 3: 2, 4: 2, 5: 2}, 2),
        (ids(1, 2, 3, 4, 5), {1: 9, 2: 9, 3: 9, 4: 2, 5: 2}, 9),
        # Acknowledgements from non-voters do not count.
        (ids(1, 2, 3), {1: 7, 4: 7, 5: 7}, 0),
    ],
)
def test_committed_index_table(
    voters: tuple[NodeId, ...], match: dict[int, int], want: int
) -> None:
    assert committed_index(voters, {NodeId(k): v for k, v in match.items()}) == want


def test_committed_index_of_no_voters_commits_everything() -> None:
    assert committed_index((), {}) >= 1 << 62


def brute_committed(voters: tuple[NodeId, ...], match: dict[NodeId, int]) -> int:
    """The largest index that a majority of voters has reached."""
    best = 0
    for candidate in {0, *match.values()}:
        reached = sum(1 for v in voters if match.get(v, 0) >= candidate)
        if reached > len(voters) // 2:
            best = max(best, candidate)
    return best


@given(
    st.lists(st.integers(1, 9), min_size=1, max_size=7, unique=True),
    st.dictionaries(st.integers(1, 12), st.integers(0, 20)),
)
def test_committed_index_matches_brute_force(voters: list[int], match: dict[int, int]) -> None:
    vs = tuple(NodeId(v) for v in voters)
    m = {NodeId(k): v for k, v in match.items()}
    assert committed_index(vs, m) == brute_committed(vs, m)


def brute_vote(voters: tuple[NodeId, ...], votes: dict[NodeId, bool]) -> VoteResult:
    """Try every way the missing voters could still answer."""
    missing = [v for v in voters if v not in votes]
    outcomes = set()
    for answers in itertools.product([True, False], repeat=len(missing)):
        full = {v: votes[v] for v in voters if v in votes} | dict(zip(missing, answers))
        outcomes.add(sum(full.values()) > len(voters) // 2)
    if outcomes == {True}:
        return VoteResult.WON
    if outcomes == {False}:
        return VoteResult.LOST
    return VoteResult.PENDING


@pytest.mark.parametrize(
    "voters, votes, want",
    [
        (ids(1), {}, VoteResult.PENDING),
        (ids(1), {1: True}, VoteResult.WON),
        (ids(1), {1: False}, VoteResult.LOST),
        (ids(1, 2, 3), {1: True}, VoteResult.PENDING),
        (ids(1, 2, 3), {1: True, 2: True}, VoteResult.WON),
        (ids(1, 2, 3), {1: True, 2: False}, VoteResult.PENDING),
        (ids(1, 2, 3), {1: True, 2: False, 3: False}, VoteResult.LOST),
        (ids(1, 2, 3, 4), {1: True, 2: True, 3: False}, VoteResult.PENDING),
        (ids(1, 2, 3, 4), {1: True, 2: True, 3: False, 4: False}, VoteResult.LOST),
        (ids(1, 2, 3), {1: True, 7: True, 8: True}, VoteResult.PENDING),
    ],
)
def test_vote_result_table(
    voters: tuple[NodeId, ...], votes: dict[int, bool], want: VoteResult
) -> None:
    assert vote_result(voters, {NodeId(k): v for k, v in votes.items()}) == want


def test_vote_result_of_no_voters_is_won() -> None:
    assert vote_result((), {}) == VoteResult.WON


@given(
    st.lists(st.integers(1, 9), min_size=1, max_size=7, unique=True),
    st.dictionaries(st.integers(1, 12), st.booleans()),
)
def test_vote_result_matches_brute_force(voters: list[int], votes: dict[int, bool]) -> None:
    vs = tuple(NodeId(v) for v in voters)
    vm = {NodeId(k): v for k, v in votes.items()}
    assert vote_result(vs, vm) == brute_vote(vs, vm)

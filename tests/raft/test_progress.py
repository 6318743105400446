"""Progress: the leader's view of one follower, and its state machine."""

from __future__ import annotations

import pytest

from kvstore.raft.inflights import Inflights
from kvstore.raft.progress import Progress, ProgressState

PROBE, REPLICATE, SNAPSHOT = ProgressState.PROBE, ProgressState.REPLICATE, ProgressState.SNAPSHOT


def progress(
    state: ProgressState = PROBE, *, match: int = 0, next_index: int = 1, size: int = 4
) -> Progress:
    pr = Progress(next_index=next_index, match=match, inflights=Inflights(size))
    if state == REPLICATE:
        pr.become_replicate()
    elif state == SNAPSHOT:
        pr.become_snapshot(10)
    pr.next = next_index
    return pr


def test_new_progress_probes() -> None:
    pr = progress(match=3, next_index=5)
    assert (pr.state, pr.match, pr.next, pr.is_paused()) == (PROBE, 3, 5, False)


def test_become_replicate_resumes_after_match() -> None:
    pr = progress(match=3, next_index=9)
    pr.become_replicate()
    assert (pr.state, pr.next) == (REPLICATE, 4)


@pytest.mark.parametrize("state", [PROBE, REPLICATE])
def test_become_probe_from_probe_or_replicate(state: ProgressState) -> None:
    pr = progress(state, match=3, next_index=9)
    pr.inflights.add(9, 1)
    pr.become_probe()
    assert (pr.state, pr.next, pr.inflights.count()) == (PROBE, 4, 0)


@pytest.mark.parametrize("match, pending, want_next", [(1, 10, 11), (12, 10, 13)])
def test_become_probe_from_snapshot_resumes_after_it(
    match: int, pending: int, want_next: int
) -> None:
    pr = progress(match=match, next_index=match + 1)
    pr.become_snapshot(pending)
    assert (pr.state, pr.pending_snapshot) == (SNAPSHOT, pending)
    pr.become_probe()
    assert (pr.state, pr.next, pr.pending_snapshot) == (PROBE, want_next, 0)


def test_probe_pauses_after_one_append_until_an_answer() -> None:
    pr = progress(match=0, next_index=1)
    pr.update_on_entries_send(3, 30)
    assert pr.is_paused()
    assert pr.next == 1  # probing never moves next optimistically
    assert pr.maybe_update(3)
    assert not pr.is_paused()
    assert (pr.match, pr.next) == (3, 4)


def test_replicate_streams_until_inflights_fill() -> None:
    pr = progress(REPLICATE, match=0, next_index=1, size=2)
    pr.update_on_entries_send(2, 20)
    assert (pr.next, pr.is_paused()) == (3, False)
    pr.update_on_entries_send(1, 10)
    assert (pr.next, pr.is_paused()) == (4, True)
    # An acknowledgement reopens the window.
    pr.maybe_update(2)
    pr.inflights.free_le(2)
    assert not pr.is_paused()
    pr.update_on_entries_send(0, 0)  # an empty append takes no slot
    assert (pr.next, pr.inflights.count()) == (4, 1)


def test_a_full_window_lets_one_empty_append_through_after_a_heartbeat() -> None:
    # Every append in the window may have been lost: the leader must still be
    # able to send something whose answer clears the window (etcd does the same).
    pr = progress(REPLICATE, match=0, next_index=1, size=1)
    pr.update_on_entries_send(1, 10)
    assert pr.is_paused()
    pr.msg_app_flow_paused = False  # what a heartbeat response does
    assert not pr.is_paused()
    pr.update_on_entries_send(0, 0)  # the empty append
    assert pr.is_paused() and pr.inflights.count() == 1


def test_snapshot_state_is_always_paused() -> None:
    assert progress(SNAPSHOT).is_paused()


def test_maybe_update_ignores_old_news() -> None:
    pr = progress(REPLICATE, match=5, next_index=8)
    assert not pr.maybe_update(4)
    assert (pr.match, pr.next) == (5, 8)
    assert pr.maybe_update(9)
    assert (pr.match, pr.next) == (9, 10)


@pytest.mark.parametrize(
    "match, next_index, rejected, hint, want, want_next",
    [
        # Replicate: a rejection at or below match is stale.
        (5, 10, 5, 0, False, 10),
        (5, 10, 3, 0, False, 10),
        # Replicate: fall back to just after match, whatever the hint.
        (5, 10, 9, 7, True, 6),
    ],
)
def test_maybe_decr_to_in_replicate(
    match: int, next_index: int, rejected: int, hint: int, want: bool, want_next: int
) -> None:
    pr = progress(REPLICATE, match=match, next_index=next_index)
    assert pr.maybe_decr_to(rejected, hint) == want
    assert pr.next == want_next


@pytest.mark.parametrize(
    "match, next_index, rejected, hint, want, want_next",
    [
        # Probe: only the rejection of the last probe (next - 1) counts.
        (0, 10, 5, 0, False, 10),
        # Probe: jump back to just after the hint ...
        (0, 10, 9, 4, True, 5),
        # ... but never past the rejected index ...
        (0, 10, 9, 20, True, 9),
        # ... nor at or below match.
        (3, 10, 9, 1, True, 4),
    ],
)
def test_maybe_decr_to_in_probe(
    match: int, next_index: int, rejected: int, hint: int, want: bool, want_next: int
) -> None:
    pr = progress(PROBE, match=match, next_index=next_index)
    pr.msg_app_flow_paused = True
    assert pr.maybe_decr_to(rejected, hint) == want
    assert pr.next == want_next
    assert pr.is_paused() != want  # a counted rejection unpauses the probe


def test_repr_names_state() -> None:
    assert "REPLICATE" in repr(progress(REPLICATE, match=2, next_index=3))

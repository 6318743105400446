"""Deliberately broken variants of the Raft core and of the driver.

The simulator must be able to fail: each variant breaks one rule by replacing
one small method for the duration of a ``with apply_variant(name):`` block,
and the tests show that the simulator catches every one of them within the
CI seed budget. ``python -m kvstore.testing.simulate --variant NAME`` runs
them from the command line.

- ``commit-old-term``: a leader commits whatever a quorum matches, even an
  entry of an earlier term (breaks Raft §5.4.2; the Figure 8 scenario).
- ``double-vote``: a member grants its vote to any up-to-date candidate of
  the term, even after voting for another (breaks §5.2).
- ``skip-log-check``: a follower accepts an append whose previous entry it
  holds with a different term (breaks the consistency check of §5.3).
- ``leader-ignores-higher-term``: a leader ignores messages of a later term
  instead of stepping down (breaks §5.1).
- ``send-before-sync``: the driver sends the messages that must wait for the
  disk as soon as it gets the ready batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from kvstore.errors import InvariantError
from kvstore.raft.core import Raft
from kvstore.raft.log import RaftLog
from kvstore.raft.messages import NONE, Entry, Message, MessageType, StateType
from kvstore.raft.rawnode import RawNode
from kvstore.testing.cluster import Cluster, Member

__all__ = ["VARIANTS", "apply_variant"]

_original_handle_higher_term = Raft._handle_higher_term
_original_take_ready = Cluster._take_ready


def _maybe_commit_any_term(self: Raft) -> bool:
    index = self.prs.committed()
    if index > self.raft_log.committed:
        self.raft_log.commit_to(index)
        return True
    return False


def _can_grant_vote_twice(self: Raft, m: Message) -> bool:
    can_vote = self.lead == NONE or self.vote == m.from_ or (
        m.type == MessageType.PRE_VOTE and m.term > self.term)
    return can_vote and self.raft_log.is_up_to_date(m.index, m.log_term)


def _maybe_append_unchecked(
    self: RaftLog, index: int, log_term: int, committed: int, entries: Sequence[Entry]
) -> int | None:
    if index > self.last_index():
        return None
    last_new = index + len(entries)
    ci = self.find_conflict(entries)
    if ci != 0:
        if ci <= self.committed:
            raise InvariantError(f"entry {ci} conflicts with committed entry")
        self.append(entries[ci - (index + 1):])
    self.commit_to(min(committed, last_new))
    return last_new


def _leader_ignores_higher_term(self: Raft, m: Message) -> bool:
    if self.state == StateType.LEADER:
        return False
    return _original_handle_higher_term(self, m)


def _take_ready_sending_everything(self: Cluster, m: Member, node: RawNode) -> None:
    _original_take_ready(self, m, node)
    rd = m.inflight
    if rd is not None and not m.synced:
        for msg in rd.persisted_messages:
            self._send(m, msg, persisted=True)


VARIANTS: dict[str, tuple[type, str, Callable[..., Any]]] = {
    "commit-old-term": (Raft, "maybe_commit", _maybe_commit_any_term),
    "double-vote": (Raft, "can_grant_vote", _can_grant_vote_twice),
    "skip-log-check": (RaftLog, "maybe_append", _maybe_append_unchecked),
    "leader-ignores-higher-term": (Raft, "_handle_higher_term", _leader_ignores_higher_term),
    "send-before-sync": (Cluster, "_take_ready", _take_ready_sending_everything),
}
"""Variant name -> (class, method name, replacement)."""


@contextlib.contextmanager
def apply_variant(name: str | None) -> Iterator[None]:
    """Run the block with variant ``name`` in place (``None``: the real code)."""
    if name is None:
        yield
        return
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; known: {', '.join(sorted(VARIANTS))}")
    cls, attr, replacement = VARIANTS[name]
    original = cls.__dict__[attr]
    setattr(cls, attr, replacement)
    try:
        yield
    finally:
        setattr(cls, attr, original)

"""Raft's safety properties, checked incrementally while the simulator runs.

The cluster calls a hook after each thing it does to a member; each hook
checks only what that event could have changed and raises
``SafetyViolation`` at the first broken property:

- Election Safety (Raft §5.2): at most one leader per term.
- Log Matching (§5.3): entries with the same index and term carry the same
  data and follow an entry of the same term. Every entry reaches a log
  through some ready batch's ``entries``, so checking each batch against one
  global ``(index, term) -> (previous term, data)`` map covers every log.
- Leader Completeness (§5.4): a member that becomes leader holds every entry
  committed so far (the canonical committed terms).
- The commit rule (§5.4.2): a leader moves its commit index only onto an
  entry of its own term; earlier entries are committed only with it.
- State Machine Safety (§5.4.3): members apply the same entries at the same
  indexes and reach the same value; one canonical applied history is kept
  (TigerBeetle's state checker) and every member must match it or extend it by
  exactly the next entry. Snapshots must agree with it too.
- Term and commit index never go backwards: in memory within one life of a
  member, and on its disk across crashes.
- Durability before sending: no message of a batch's ``persisted_messages``
  leaves before the batch is synced, and every granted vote and every
  accepted append that leaves is backed by what is on the sender's disk.
- No acknowledged write is lost: each stays in the canonical history and is
  in the state of every member at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

from kvstore.raft.messages import Entry, Message, MessageType, NodeId, StateType
from kvstore.raft.rawnode import RawNode, Ready
from kvstore.raft.storage import MemoryLogStorage
from kvstore.testing.statemachine import Command, StateMachine, encode_command

__all__ = ["SafetyChecker", "SafetyViolation", "Violation"]


@dataclass(frozen=True, slots=True)
class Violation:
    tick: int
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} at tick {self.tick}: {self.detail}"


class SafetyViolation(Exception):
    """A property was broken; the run stops here."""

    def __init__(self, violation: Violation) -> None:
        super().__init__(str(violation))
        self.violation = violation


class _View:
    """What the checker last saw of one member."""

    __slots__ = ("term", "commit", "durable_term", "durable_commit", "checked_commit", "led")

    def __init__(self) -> None:
        self.term = 0
        self.commit = 0
        self.durable_term = 0
        self.durable_commit = 0
        # Highest index whose committed term this member's log was compared with.
        self.checked_commit = 0
        # The term in which this member was last seen leading (0: never).
        self.led = 0


class SafetyChecker:
    """One run's global view of what every member did."""

    def __init__(self, initial_value: int | None = None) -> None:
        self.now = 0
        self._views: dict[NodeId, _View] = {}
        self._leaders: dict[int, NodeId] = {}
        self._entries: dict[tuple[int, int], tuple[int, bytes]] = {}
        self._committed_terms: dict[int, int] = {}
        self._commit = 0
        # Canonical applied history; element 0 stands for the empty log.
        self._applied: list[tuple[int, bytes]] = [(0, b"")]
        self._values: list[int | None] = [initial_value]
        self._snapshots: dict[int, bytes] = {}
        self._acked: list[tuple[Command, int]] = []

    def fail(self, kind: str, detail: str) -> NoReturn:
        raise SafetyViolation(Violation(self.now, kind, detail))

    @property
    def applied_length(self) -> int:
        """The last index of the canonical applied history."""
        return len(self._applied) - 1

    def has_applied(self, index: int, data: bytes) -> bool:
        """Whether the canonical history holds ``data`` at ``index``."""
        return index < len(self._applied) and self._applied[index][1] == data

    @property
    def leaders(self) -> dict[int, NodeId]:
        return dict(self._leaders)

    # -- member lifecycle -------------------------------------------------
    def on_start(self, member: NodeId, node: RawNode, storage: MemoryLogStorage) -> None:
        """A member (re)started from ``storage``."""
        view = self._views.get(member)
        if view is None:
            view = self._views[member] = _View()
        hs = storage.hard_state
        r = node.raft
        if r.term != hs.term or r.raft_log.committed != hs.commit:
            self.fail("restart", f"member {member} restarted at term {r.term} commit "
                      f"{r.raft_log.committed}, but its disk says {hs}")
        if hs.term < view.durable_term or hs.commit < view.durable_commit:
            self.fail("durable-monotonic", f"member {member} restarted with {hs}, below "
                      f"term {view.durable_term} commit {view.durable_commit} it had synced")
        view.durable_term = hs.term
        view.durable_commit = hs.commit
        view.term = r.term
        view.commit = r.raft_log.committed
        view.checked_commit = r.raft_log.committed
        view.led = 0

    def after_event(self, member: NodeId, node: RawNode) -> None:
        """Anything happened to ``member`` (tick, message, ready, advance)."""
        view = self._views[member]
        r = node.raft
        term = r.term
        if term != view.term:
            if term < view.term:
                self.fail("term-monotonic", f"member {member} went from term {view.term} to {term}")
            view.term = term
        committed = r.raft_log.committed
        if committed != view.commit:
            if committed < view.commit:
                self.fail("commit-monotonic",
                          f"member {member} commit went from {view.commit} to {committed}")
            if r.state == StateType.LEADER and r.raft_log.zero_term_on_err(committed) != term:
                self.fail("commit-rule", f"member {member}, leader of term {term}, advanced its "
                          f"commit index to {committed}, an entry of term "
                          f"{r.raft_log.zero_term_on_err(committed)}")
            view.commit = committed
        if committed > view.checked_commit:
            self._check_committed(member, node, view)
        if r.state == StateType.LEADER and view.led != term:
            view.led = term
            holder = self._leaders.setdefault(term, member)
            if holder != member:
                self.fail("election-safety", f"members {holder} and {member} both lead term {term}")
            self._check_leader_completeness(member, node)

    def _check_committed(self, member: NodeId, node: RawNode, view: _View) -> None:
        log = node.raft.raft_log
        committed_terms = self._committed_terms
        for i in range(view.checked_commit + 1, log.committed + 1):
            t = log.zero_term_on_err(i)
            if t == 0:
                continue  # below the member's snapshot: checked through the snapshot
            known = committed_terms.get(i)
            if known is None:
                committed_terms[i] = t
            elif known != t:
                self.fail("commit-safety", f"member {member} committed index {i} at term {t}, "
                          f"but term {known} was committed there before")
        view.checked_commit = log.committed
        if log.committed > self._commit:
            self._commit = log.committed

    def _check_leader_completeness(self, member: NodeId, node: RawNode) -> None:
        log = node.raft.raft_log
        if log.last_index() < self._commit:
            self.fail("leader-completeness", f"member {member} leads term {node.raft.term} with "
                      f"last index {log.last_index()} < commit index {self._commit}")
        for i in range(max(log.first_index(), 1), self._commit + 1):
            want = self._committed_terms.get(i)
            if want is not None and log.zero_term_on_err(i) != want:
                self.fail("leader-completeness",
                          f"member {member} leads term {node.raft.term} but holds term "
                          f"{log.zero_term_on_err(i)} at index {i}, committed at term {want}")

    # -- ready batches ----------------------------------------------------
    def on_ready(self, member: NodeId, node: RawNode, rd: Ready) -> None:
        """``member`` handed out ``rd``: its entries are now in its log."""
        if not rd.entries:
            return
        known = self._entries
        prev = node.raft.raft_log.zero_term_on_err(rd.entries[0].index - 1)
        prev_known = prev != 0 or rd.entries[0].index == 1
        for e in rd.entries:
            key = (e.index, e.term)
            seen = known.get(key)
            if seen is None:
                if prev_known:
                    known[key] = (prev, e.data)
            else:
                if seen[1] != e.data:
                    self.fail("log-matching", f"member {member} holds {e.term}/{e.index} "
                              f"{e.data!r}, elsewhere {seen[1]!r}")
                if prev_known and seen[0] != prev:
                    self.fail("log-matching", f"member {member} holds {e.term}/{e.index} after "
                              f"an entry of term {prev}, elsewhere after term {seen[0]}")
            prev = e.term
            prev_known = True

    def on_synced(self, member: NodeId, storage: MemoryLogStorage) -> None:
        view = self._views[member]
        hs = storage.hard_state
        if hs.term < view.durable_term or hs.commit < view.durable_commit:
            self.fail("durable-monotonic", f"member {member} synced {hs} after term "
                      f"{view.durable_term} commit {view.durable_commit}")
        view.durable_term = hs.term
        view.durable_commit = hs.commit

    def on_send(self, member: NodeId, msg: Message, *, persisted: bool, synced: bool,
                storage: MemoryLogStorage) -> None:
        """``member`` puts ``msg`` on the wire."""
        if persisted and not synced:
            self.fail("send-before-sync", f"member {member} sent {msg.type.name} to {msg.to} "
                      f"before its ready batch was synced")
        if msg.reject:
            return
        if msg.type == MessageType.VOTE_RESP:
            hs = storage.hard_state
            if hs.term < msg.term or (hs.term == msg.term and hs.vote != msg.to):
                self.fail("send-before-sync", f"member {member} granted its vote in term "
                          f"{msg.term} to {msg.to}, but its disk says {hs}")
        elif msg.type == MessageType.APP_RESP and msg.index > storage.last_index():
            self.fail("send-before-sync", f"member {member} acknowledged index {msg.index} "
                      f"with only {storage.last_index()} on disk")

    # -- state machines ---------------------------------------------------
    def on_apply(self, member: NodeId, entry: Entry, value: int | None) -> None:
        """``member`` applied ``entry`` and its state machine now holds ``value``."""
        i = entry.index
        applied = self._applied
        if i < len(applied):
            if applied[i] != (entry.term, entry.data):
                t, data = applied[i]
                self.fail("state-machine-safety", f"member {member} applied {entry.term}/{i} "
                          f"{entry.data!r}, but {t}/{i} {data!r} was applied there before")
            if self._values[i] != value:
                self.fail("state-machine-safety", f"member {member} reached {value!r} at {i}, "
                          f"others {self._values[i]!r}")
        elif i == len(applied):
            applied.append((entry.term, entry.data))
            self._values.append(value)
        else:
            self.fail("state-machine-safety", f"member {member} applied index {i} before "
                      f"anyone applied {len(applied)}")

    def on_snapshot(self, member: NodeId, index: int, data: bytes, value: int | None) -> None:
        """``member`` took or installed a snapshot of its state machine at ``index``."""
        if index >= len(self._applied):
            self.fail("state-machine-safety", f"member {member} has a snapshot at {index}, "
                      f"past the canonical history ({self.applied_length})")
        if self._values[index] != value:
            self.fail("state-machine-safety", f"member {member}'s snapshot at {index} holds "
                      f"{value!r}, the canonical history {self._values[index]!r}")
        seen = self._snapshots.setdefault(index, data)
        if seen != data:
            self.fail("state-machine-safety", f"member {member}'s snapshot at {index} differs "
                      f"from another member's")

    def on_ack(self, command: Command, index: int) -> None:
        """A client was told its write at ``index`` succeeded."""
        if index >= len(self._applied) or self._applied[index][1] != encode_command(command):
            self.fail("lost-write", f"write {command} acknowledged at {index} is not in the "
                      f"canonical history there")
        self._acked.append((command, index))

    def check_final(self, machines: dict[NodeId, StateMachine]) -> None:
        """At the end: every acknowledged write is in the state of every member past it."""
        for command, index in self._acked:
            if self._applied[index][1] != encode_command(command):
                self.fail("lost-write", f"write {command} at {index} left the canonical history")
            for member, sm in machines.items():
                if sm.applied >= index and sm.sessions.get(command.client, 0) < command.seq:
                    self.fail("lost-write", f"member {member} applied {sm.applied} entries "
                              f"but not the acknowledged write {command} at {index}")

"""One-line descriptions of entries, messages and ready batches.

The same text appears in logs, in the scenario tests' expected output and in
simulator traces, in the spirit of etcd-io/raft's ``DescribeMessage``::

    1->2 APP Term:2 Log:1/3 Commit:3 Entries:[2/4 'x=1']
    2->1 APP_RESP Term:2 Log:0/3 Rejected (Hint: 2/1)
"""

from __future__ import annotations

from collections.abc import Iterable

from kvstore.raft.messages import Entry, HardState, Message, ReadState, Snapshot, SoftState
from kvstore.raft.rawnode import Ready

__all__ = [
    "describe_entries",
    "describe_entry",
    "describe_hard_state",
    "describe_message",
    "describe_ready",
    "describe_snapshot",
    "describe_soft_state",
]

_MAX_DATA = 24


def _data(data: bytes) -> str:
    if not data:
        return ""
    shown = data[:_MAX_DATA]
    try:
        text = shown.decode("ascii")
        if not text.isprintable():
            raise ValueError
        body = repr(text)
    except (UnicodeDecodeError, ValueError):
        body = "0x" + shown.hex()
    if len(data) > _MAX_DATA:
        body += f"...(+{len(data) - _MAX_DATA}B)"
    return " " + body


def describe_entry(e: Entry) -> str:
    """``term/index`` followed by the data, if any."""
    return f"{e.term}/{e.index}{_data(e.data)}"


def describe_entries(entries: Iterable[Entry]) -> str:
    return "[" + ", ".join(describe_entry(e) for e in entries) + "]"


def describe_snapshot(s: Snapshot) -> str:
    m = s.metadata
    voters = ",".join(str(v) for v in m.conf_state.voters)
    return f"Index:{m.index} Term:{m.term} Voters:({voters}) Data:{len(s.data)}B"


def describe_hard_state(hs: HardState) -> str:
    out = f"Term:{hs.term}"
    if hs.vote:
        out += f" Vote:{hs.vote}"
    return out + f" Commit:{hs.commit}"


def describe_soft_state(ss: SoftState) -> str:
    return f"Lead:{ss.lead} State:{ss.raft_state.name}"


def describe_message(m: Message) -> str:
    """A message on one line: ``from->to TYPE Term:T Log:term/index ...``."""
    out = f"{m.from_}->{m.to} {m.type.name} Term:{m.term} Log:{m.log_term}/{m.index}"
    if m.reject:
        out += f" Rejected (Hint: {m.reject_hint})"
    if m.commit:
        out += f" Commit:{m.commit}"
    if m.entries:
        out += " Entries:" + describe_entries(m.entries)
    if m.snapshot is not None:
        out += " Snapshot: " + describe_snapshot(m.snapshot)
    if m.context:
        out += f" Ctx:{_data(m.context).strip()}"
    return out


def describe_read_state(rs: ReadState) -> str:
    return f"Index:{rs.index} Ctx:{_data(rs.request_ctx).strip()}"


def describe_ready(rd: Ready) -> str:
    """A ready batch on one line; empty parts are left out."""
    parts: list[str] = []
    if rd.soft_state is not None:
        parts.append(describe_soft_state(rd.soft_state))
    if rd.hard_state is not None:
        parts.append("HardState " + describe_hard_state(rd.hard_state))
    if rd.read_states:
        parts.append("ReadStates:[" + ", ".join(describe_read_state(r) for r in rd.read_states) + "]")
    if rd.entries:
        parts.append("Entries:" + describe_entries(rd.entries))
    if rd.snapshot is not None:
        parts.append("Snapshot " + describe_snapshot(rd.snapshot))
    if rd.committed_entries:
        parts.append("Committed:" + describe_entries(rd.committed_entries))
    if rd.messages:
        parts.append("Messages:[" + "; ".join(describe_message(m) for m in rd.messages) + "]")
    if rd.persisted_messages:
        parts.append(
            "AfterPersist:[" + "; ".join(describe_message(m) for m in rd.persisted_messages) + "]"
        )
    head = "Ready MustSync" if rd.must_sync else "Ready"
    return head + (": " + " ".join(parts) if parts else ": (empty)")

"""The replicated state machine of the simulator: a register or a counter, with client sessions.

Entries carry readable commands so traces show what each one does::

    b"c3.17 w 300017"   client 3, request 17: write 300017 to the register
    b"c2.5 add 4"       client 2, request 5: add 4 to the counter
    b"probe 2"          the liveness phase's probe (no effect on the value)
    b""                 a new leader's no-op

Each client has one request outstanding at a time and numbers them upward,
so the machine keeps, per client, the last request number it applied and
skips any command at or below it: a proposal the network duplicated (a
follower forwards it twice) takes effect once (Raft dissertation §6.3).

The state is deterministic: every member applying the same entries reaches
the same value and the same snapshot bytes.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

from kvstore.errors import InvariantError
from kvstore.raft.messages import Entry

__all__ = ["Applied", "Command", "MachineKind", "StateMachine", "decode_command", "encode_command"]


class MachineKind(enum.Enum):
    REGISTER = "register"
    COUNTER = "counter"


@dataclass(frozen=True, slots=True)
class Command:
    """A client's write: ``op`` is ``"w"`` (register write) or ``"add"`` (counter add)."""

    client: int
    seq: int
    op: str
    arg: int


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying one command did: ``result`` is the value the client is told."""

    command: Command
    index: int
    result: int | None


def encode_command(command: Command) -> bytes:
    return f"c{command.client}.{command.seq} {command.op} {command.arg}".encode("ascii")


def decode_command(data: bytes) -> Command | None:
    """The command in ``data``, or None for a no-op or a probe."""
    if not data.startswith(b"c"):
        return None
    ident, op, arg = data.decode("ascii").split(" ")
    client, seq = ident[1:].split(".")
    return Command(int(client), int(seq), op, int(arg))


class StateMachine:
    """One member's copy of the replicated object; volatile (rebuilt on restart)."""

    def __init__(self, kind: MachineKind) -> None:
        self.kind = kind
        self.value: int | None = 0 if kind is MachineKind.COUNTER else None
        # client -> last request number applied
        self.sessions: dict[int, int] = {}
        self.applied = 0

    def apply(self, entry: Entry) -> Applied | None:
        """Apply the next committed entry; returns the command's effect if it had one.

        Raises ``InvariantError`` when ``entry`` does not follow the last one applied.
        """
        if entry.index != self.applied + 1:
            raise InvariantError(
                f"state machine at {self.applied} asked to apply entry {entry.index}"
            )
        self.applied = entry.index
        command = decode_command(entry.data)
        if command is None:
            return None
        if self.sessions.get(command.client, 0) >= command.seq:
            return None
        self.sessions[command.client] = command.seq
        if command.op == "w" and self.kind is MachineKind.REGISTER:
            self.value = command.arg
            return Applied(command, entry.index, None)
        if command.op == "add" and self.kind is MachineKind.COUNTER:
            value = self.value if self.value is not None else 0
            self.value = value + command.arg
            return Applied(command, entry.index, self.value)
        raise InvariantError(f"{self.kind.value} cannot apply {entry.data!r}")

    def snapshot(self) -> bytes:
        """The state as bytes; equal states give equal bytes."""
        sessions = sorted(self.sessions.items())
        return json.dumps([self.kind.value, self.value, sessions]).encode("ascii")

    @classmethod
    def restore(cls, data: bytes, index: int) -> StateMachine:
        """The machine a snapshot at ``index`` describes."""
        kind, value, sessions = json.loads(data)
        sm = cls(MachineKind(kind))
        sm.value = value
        sm.sessions = {int(c): int(s) for c, s in sessions}
        sm.applied = index
        return sm

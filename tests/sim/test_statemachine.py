"""The simulator's replicated state machine: commands, sessions, snapshots."""

from __future__ import annotations

import pytest

from kvstore.errors import InvariantError
from kvstore.raft.messages import Entry
from kvstore.testing.statemachine import (
    Command,
    MachineKind,
    StateMachine,
    decode_command,
    encode_command,
)


def test_commands_round_trip_and_read_well() -> None:
    c = Command(3, 17, "w", 3000017)
    assert encode_command(c) == b"c3.17 w 3000017"
    assert decode_command(encode_command(c)) == c
    assert decode_command(b"") is None
    assert decode_command(b"probe 2") is None


def test_register_applies_writes_and_skips_noops() -> None:
    sm = StateMachine(MachineKind.REGISTER)
    assert sm.value is None
    assert sm.apply(Entry(1, 1)) is None
    done = sm.apply(Entry(1, 2, encode_command(Command(1, 1, "w", 10))))
    assert done is not None and done.index == 2 and done.result is None
    assert sm.value == 10 and sm.applied == 2


def test_counter_answers_the_new_value() -> None:
    sm = StateMachine(MachineKind.COUNTER)
    assert sm.value == 0
    sm.apply(Entry(1, 1, encode_command(Command(1, 1, "add", 4))))
    done = sm.apply(Entry(1, 2, encode_command(Command(2, 1, "add", 5))))
    assert done is not None and done.result == 9 and sm.value == 9


def test_duplicate_and_old_commands_take_effect_once() -> None:
    sm = StateMachine(MachineKind.COUNTER)
    data = encode_command(Command(1, 2, "add", 4))
    assert sm.apply(Entry(1, 1, data)) is not None
    assert sm.apply(Entry(1, 2, data)) is None
    assert sm.apply(Entry(1, 3, encode_command(Command(1, 1, "add", 100)))) is None
    assert sm.value == 4 and sm.applied == 3


def test_gap_or_wrong_kind_is_an_invariant_error() -> None:
    sm = StateMachine(MachineKind.REGISTER)
    with pytest.raises(InvariantError):
        sm.apply(Entry(1, 2))
    with pytest.raises(InvariantError):
        sm.apply(Entry(1, 1, encode_command(Command(1, 1, "add", 1))))


def test_snapshot_restore_gives_the_same_state_and_bytes() -> None:
    sm = StateMachine(MachineKind.REGISTER)
    for i, client in enumerate([2, 1, 3, 1], start=1):
        sm.apply(Entry(1, i, encode_command(Command(client, i, "w", 100 + i))))
    data = sm.snapshot()
    back = StateMachine.restore(data, sm.applied)
    assert (back.kind, back.value, back.sessions, back.applied) == (
        sm.kind, sm.value, sm.sessions, sm.applied)
    assert back.snapshot() == data
    other = StateMachine(MachineKind.REGISTER)
    for i, client in enumerate([2, 1, 3, 1], start=1):
        other.apply(Entry(1, i, encode_command(Command(client, i, "w", 100 + i))))
    assert other.snapshot() == data

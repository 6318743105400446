"""The scripted cluster behind the scenario files checks what it is shown."""

from __future__ import annotations

import pytest

from kvstore.errors import InvariantError
from kvstore.raft.messages import NodeId
from tests.support.datadriven import parse
from tests.support.interaction import InteractionEnv


def run(env: InteractionEnv, script: str) -> str:
    """Run commands (one per line, no expected output) and return the last output."""
    text = "".join(f"{line}\n----\n\n" for line in script.strip().splitlines())
    out = ""
    for td in parse(text, "script"):
        out = env.handle(td)
    return out


def test_a_conflicting_application_is_caught() -> None:
    env = InteractionEnv()
    # Pretend some member applied another entry at index 1.
    env.committed[1] = (7, b"other")
    with pytest.raises(InvariantError, match="state machine safety"):
        run(env, "add-nodes 1\ncampaign 1\nstabilize")


def test_unknown_commands_and_members_are_errors() -> None:
    env = InteractionEnv()
    with pytest.raises(ValueError, match="unknown command"):
        run(env, "frobnicate 1")
    with pytest.raises(ValueError, match="no node"):
        run(env, "add-nodes 1\ncampaign 2")
    with pytest.raises(ValueError, match="unknown add-nodes option"):
        run(env, "add-nodes 1 colour=blue")


def test_partitions() -> None:
    env = InteractionEnv()
    run(env, "add-nodes 4\npartition (1,2) (3)")
    one, two, three, four = (NodeId(i) for i in (1, 2, 3, 4))
    assert env.connected(one, two) and not env.connected(one, three)
    assert not env.connected(four, one) and not env.connected(four, three)
    run(env, "isolate 2")
    assert not env.connected(one, two)
    run(env, "heal")
    assert env.connected(one, four)


def test_crash_drops_messages_in_flight_and_restart_keeps_storage() -> None:
    env = InteractionEnv()
    run(env, "add-nodes 3\nlog-level none\ncampaign 1\nstabilize\npropose 1 a\nprocess-ready 1")
    out = run(env, "crash 2")
    assert "dropped: 1->2 APP" in out and "(2 is down)" in out
    assert [m.to for _, m in env.network] == [3]
    assert "1/2 'a'" in run(env, "raft-log 1")
    assert "down" in run(env, "raft-state").splitlines()[1]
    with pytest.raises(ValueError, match="is down"):
        run(env, "propose 2 b")
    run(env, "restart 2\nstabilize")
    assert run(env, "state-machine 2") == "applied up to 2: [a]\n"


def test_compact_refuses_to_pass_the_applied_index() -> None:
    env = InteractionEnv()
    run(env, "add-nodes 1\ncampaign 1\nstabilize")
    with pytest.raises(ValueError, match="past applied"):
        run(env, "compact 1 5")


def test_log_levels_filter_core_logs() -> None:
    env = InteractionEnv()
    assert "DEBUG" in run(env, "add-nodes 1")
    assert run(env, "log-level info\ncampaign 1") == ""
    env2 = InteractionEnv()
    run(env2, "add-nodes 1")
    assert "became candidate" in run(env2, "campaign 1")

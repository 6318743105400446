"""Config.validate refuses configurations that cannot work."""

from __future__ import annotations

from typing import Any

import pytest

from kvstore.raft.config import Config
from kvstore.raft.messages import NodeId


def test_defaults_are_valid() -> None:
    Config(id=NodeId(1)).validate()


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"id": NodeId(0)}, "cannot use 0"),
        ({"heartbeat_tick": 0}, "heartbeat_tick"),
        ({"heartbeat_tick": -1}, "heartbeat_tick"),
        ({"election_tick": 3, "heartbeat_tick": 3}, "election_tick"),
        ({"election_tick": 2, "heartbeat_tick": 3}, "election_tick"),
        ({"max_inflight_msgs": 0}, "max_inflight_msgs"),
        ({"max_inflight_bytes": -1}, "negative"),
        ({"max_uncommitted_entries_size": -1}, "negative"),
        ({"max_size_per_msg": 0}, "greater than 0"),
        ({"max_committed_size_per_ready": 0}, "greater than 0"),
        ({"applied": -1}, "applied"),
    ],
)
def test_invalid(changes: dict[str, Any], message: str) -> None:
    cfg = Config(**{"id": NodeId(1), **changes})
    with pytest.raises(ValueError, match=message):
        cfg.validate()


@pytest.mark.parametrize(
    "changes",
    [
        {"election_tick": 2, "heartbeat_tick": 1},
        {"max_inflight_bytes": 0, "max_uncommitted_entries_size": 0},
        {"max_size_per_msg": 1, "max_inflight_msgs": 1},
    ],
)
def test_edge_values_are_valid(changes: dict[str, Any]) -> None:
    Config(**{"id": NodeId(1), **changes}).validate()

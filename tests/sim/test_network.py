"""SimNetwork: loss, delay, duplication, partitions, determinism."""

from __future__ import annotations

import random

import pytest

from kvstore.raft.messages import Message, MessageType, NodeId
from kvstore.testing.network import Fate, NetworkConfig, SimNetwork


def msg(frm: int, to: int, index: int = 0) -> Message:
    return Message(MessageType.HEARTBEAT, to=NodeId(to), from_=NodeId(frm), index=index)


def drain(net: SimNetwork, until: int) -> list[tuple[int, Message, Fate]]:
    out = []
    for now in range(until + 1):
        out += [(now, m, f) for m, f in net.due(now)]
    return out


def test_calm_network_delivers_everything_one_tick_later_in_order() -> None:
    net = SimNetwork(random.Random(1))
    sent = [msg(1, 2, i) for i in range(5)]
    for m in sent:
        assert net.send(m, 10) == 1
    assert net.due(10) == []
    assert [(m, f) for m, f in net.due(11)] == [(m, Fate.DELIVERED) for m in sent]
    assert net.in_flight() == 0
    assert net.sent == 5 and net.delivered == 5


def test_delays_stay_in_range_and_reorder() -> None:
    net = SimNetwork(random.Random(2), NetworkConfig(min_delay=2, max_delay=6))
    for i in range(200):
        net.send(msg(1, 2, i), 0)
    got = drain(net, 10)
    assert len(got) == 200
    assert {t for t, _, _ in got} == {2, 3, 4, 5, 6}
    order = [m.index for _, m, _ in got]
    assert order != sorted(order)


def test_drop_rate_one_loses_everything() -> None:
    net = SimNetwork(random.Random(3), NetworkConfig(drop_rate=1.0))
    for i in range(10):
        assert net.send(msg(1, 2, i), 0) == 0
    got = drain(net, 5)
    assert [f for _, _, f in got] == [Fate.DROPPED] * 10
    assert net.delivered == 0


def test_drop_and_duplicate_rates_are_roughly_honoured() -> None:
    net = SimNetwork(random.Random(4), NetworkConfig(drop_rate=0.2, duplicate_rate=0.3))
    copies = [net.send(msg(1, 2, i), 0) for i in range(2000)]
    assert 300 < copies.count(0) < 500
    assert 400 < copies.count(2) < 600
    got = drain(net, 3)
    assert sum(f is Fate.DELIVERED for _, _, f in got) == sum(copies)


def test_symmetric_partition_blocks_both_ways_and_eats_messages_in_flight() -> None:
    net = SimNetwork(random.Random(5), NetworkConfig(min_delay=3, max_delay=3))
    net.send(msg(1, 2), 0)
    net.send(msg(3, 1), 0)
    net.partition([[NodeId(1)], [NodeId(2), NodeId(3)]])
    net.send(msg(2, 3), 0)
    got = drain(net, 3)
    fates = {(m.from_, m.to): f for _, m, f in got}
    assert fates == {(1, 2): Fate.BLOCKED, (3, 1): Fate.BLOCKED, (2, 3): Fate.DELIVERED}
    assert net.is_blocked(NodeId(2), NodeId(1)) and not net.is_blocked(NodeId(2), NodeId(3))
    net.heal()
    net.send(msg(1, 2), 4)
    assert [f for _, f in net.due(7)] == [Fate.DELIVERED]


def test_one_way_block_is_asymmetric() -> None:
    net = SimNetwork(random.Random(6))
    net.block(NodeId(1), NodeId(2))
    net.send(msg(1, 2), 0)
    net.send(msg(2, 1), 0)
    assert [(m.from_, f) for m, f in net.due(1)] == [(1, Fate.BLOCKED), (2, Fate.DELIVERED)]
    assert net.blocked_links() == [(1, 2)]


def test_same_seed_same_fates() -> None:
    def run(seed: int) -> list[tuple[int, int, str]]:
        net = SimNetwork(random.Random(seed), NetworkConfig(0.1, 0.1, 1, 5))
        for i in range(300):
            net.send(msg(1 + i % 3, 1 + (i + 1) % 3, i), i // 10)
        return [(t, m.index, f.value) for t, m, f in drain(net, 40)]

    assert run(7) == run(7)
    assert run(7) != run(8)


@pytest.mark.parametrize("config", [
    dict(min_delay=0, max_delay=1),
    dict(min_delay=3, max_delay=2),
    dict(drop_rate=1.5),
    dict(duplicate_rate=-0.1),
])
def test_bad_config_is_refused(config: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        NetworkConfig(**config)  # type: ignore[arg-type]

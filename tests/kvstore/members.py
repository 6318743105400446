"""Several members in one process: ``Node``s on loopback, each with its client port.

``InProcessCluster`` starts N members whose peers talk over real TCP on
127.0.0.1 and serves each member's client protocol with a ``ClientServer``,
so ``kvstore.connect`` reaches them exactly as it reaches member processes.
Members can be stopped and restarted from their data dirs; waiting is done on
the members' own events, never on fixed delays.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kvstore.node import MemberInfo, Node, NodeOptions
from kvstore.transport.server import ClientServer
from tests.kvstore.ports import free_port_block

__all__ = ["InProcessCluster", "eventually"]

HOST = "127.0.0.1"

FAST = NodeOptions(cluster_id="in-process", tick_interval=0.02, election_tick=10)
"""Short timings: an election timeout of 0.2-0.4 s."""


async def eventually(cond: Callable[[], bool], *, timeout: float = 10.0, what: str = "") -> None:
    """Poll ``cond`` every few milliseconds until it holds; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.005)


@dataclass
class _Member:
    info: MemberInfo
    data_dir: str
    node: Node | None = None
    server: ClientServer | None = None


class InProcessCluster:
    """N members on loopback in the running event loop."""

    def __init__(self, root: str, size: int = 3, *, options: NodeOptions = FAST) -> None:
        self.options = options
        base = free_port_block(2 * size)
        self._members: dict[int, _Member] = {}
        for i in range(1, size + 1):
            client = base + 2 * (i - 1)
            info = MemberInfo(i, (HOST, client + 1), (HOST, client))
            self._members[i] = _Member(info, os.path.join(root, f"member-{i}"))

    @property
    def ids(self) -> list[int]:
        return sorted(self._members)

    def endpoint(self, member_id: int) -> str:
        addr = self._members[member_id].info.client_addr
        if addr is None:
            raise ValueError(f"member {member_id} has no client address")
        return f"{addr[0]}:{addr[1]}"

    def endpoints(self, first: int | None = None) -> list[str]:
        """Every client endpoint, ``first``'s in front if given."""
        ids = self.ids if first is None else [first] + [i for i in self.ids if i != first]
        return [self.endpoint(i) for i in ids]

    def node(self, member_id: int) -> Node:
        node = self._members[member_id].node
        if node is None:
            raise KeyError(f"member {member_id} is not running")
        return node

    def client_connections(self, member_id: int) -> int:
        """How many client connections member ``member_id`` has open right now."""
        server = self._members[member_id].server
        return 0 if server is None else len(server._connections)  # noqa: SLF001

    def running(self) -> list[int]:
        return [i for i in self.ids if self._members[i].node is not None]

    async def start(self) -> None:
        """Start every member that is not running."""
        for i in self.ids:
            if self._members[i].node is None:
                await self.start_member(i)

    async def start_member(self, member_id: int) -> Node:
        m = self._members[member_id]
        node = await Node.start(
            member_id=member_id,
            data_dir=m.data_dir,
            members=[x.info for x in self._members.values()],
            options=self.options,
        )
        server = ClientServer(node)
        addr = m.info.client_addr
        if addr is None:
            raise ValueError(f"member {member_id} has no client address")
        await server.start(*addr)
        m.node, m.server = node, server
        return node

    async def stop_member(self, member_id: int) -> None:
        """Stop one member: its client port closes, then the member itself."""
        m = self._members[member_id]
        if m.server is not None:
            await m.server.close()
        if m.node is not None:
            await m.node.stop()
        m.node, m.server = None, None

    async def close(self) -> None:
        for i in self.ids:
            await self.stop_member(i)

    def leader(self, among: Iterable[int] | None = None) -> int:
        """The member a majority of the running ones follow, or 0."""
        ids = list(among) if among is not None else self.running()
        nodes = [self.node(i) for i in ids]
        for n in nodes:
            if n.is_leader:
                followers = sum(1 for x in nodes if x.leader_id == n.member_id)
                if 2 * followers > len(self._members):
                    return int(n.member_id)
        return 0

    async def wait_for_leader(self, *, timeout: float = 10.0) -> int:
        """Wait on the members' leader-change events until a majority agrees on a leader."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            events = [self.node(i).leader_changed for i in self.running()]
            leader = self.leader()
            if leader:
                return leader
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError("no leader elected in time")
            waiters = [asyncio.ensure_future(e.wait()) for e in events]
            try:
                await asyncio.wait(waiters, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
                await asyncio.gather(*waiters, return_exceptions=True)

    async def wait_converged(self, *, timeout: float = 10.0) -> int:
        """Wait until every running member has applied the leader's commit index."""
        leader = self.node(await self.wait_for_leader(timeout=timeout))
        target = (await leader.status()).commit_index
        for i in self.running():
            await asyncio.wait_for(self.node(i).wait_applied(target), timeout)
        return target

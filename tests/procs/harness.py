"""Member processes on loopback for the real-process tests, and what the tests ask of them.

``ProcCluster`` drives ``runtime.cluster.LocalCluster`` with short timings
(a 50 ms tick, an election timeout of 0.5-1 s): start, ``kill -9``, restart,
and per-member questions asked through a client pinned to that member
(``follow_leader=False``): status, serializable ranges, ``hash_kv``.
Waiting polls the members every few tens of milliseconds until a condition
holds or a generous deadline passes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable

import kvstore
from kvstore.errors import KvError
from kvstore.node import NodeStatus
from runtime.cluster import LocalCluster
from runtime.clusterfile import ClusterFile, MemberEntry
from tests.kvstore.ports import free_port_block

__all__ = ["ELECTION_TIMEOUT", "FAST_ARGS", "ProcCluster", "poll_until"]

TICK = 0.05
ELECTION_TICKS = 10
ELECTION_TIMEOUT = TICK * ELECTION_TICKS
FAST_ARGS = ["--tick-interval", str(TICK), "--election-ticks", str(ELECTION_TICKS),
             "--no-control-plane"]


async def poll_until(
    cond: Callable[[], Awaitable[bool]], *, timeout: float, what: str, every: float = 0.05
) -> None:
    """Ask ``cond`` every ``every`` seconds until it is true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not await cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(every)


class ProcCluster:
    """N member processes under ``root`` (see the module docstring)."""

    def __init__(self, root: str, nodes: int = 3) -> None:
        self.root = root
        self.nodes = nodes
        self.extra_args = list(FAST_ARGS)
        self.local = LocalCluster(os.path.join(root, "steer"))
        self.file: ClusterFile | None = None

    # -- lifecycle ---------------------------------------------------------
    async def up(self, *, extra_args: list[str] | None = None) -> int:
        """Start every member (with ``extra_args`` for ``runtime.host`` too); returns the
        leader once a majority agrees on one."""
        self.extra_args = FAST_ARGS + list(extra_args or [])
        self.file, _ = self.local.up(self.nodes, free_port_block(2 * self.nodes),
                                     extra_args=self.extra_args)
        return await self.wait_for_leader()

    def down(self) -> None:
        self.local.down(grace=5.0)

    def kill(self, member_id: int) -> None:
        """``kill -9`` one member."""
        self.local.kill(member_id, signal.SIGKILL)

    def restart(self, member_id: int) -> None:
        self.local.start_member(self.member(member_id), extra_args=self.extra_args)

    async def wait_for_leader(self, *, timeout: float = 20 * ELECTION_TIMEOUT + 10) -> int:
        state = await self.local.wait_for_leader(timeout)
        if state is None:
            raise AssertionError(f"no leader within {timeout:g} s: {await self.local.status()}")
        return state.id

    # -- where things are ----------------------------------------------------
    def member(self, member_id: int) -> MemberEntry:
        if self.file is None:
            raise RuntimeError("the cluster is not up")
        return self.file.member(member_id)

    @property
    def ids(self) -> list[int]:
        if self.file is None:
            raise RuntimeError("the cluster is not up")
        return [m.id for m in self.file.members]

    @property
    def cluster_id(self) -> str:
        if self.file is None:
            raise RuntimeError("the cluster is not up")
        return self.file.cluster_id

    def endpoints(self, first: int | None = None) -> list[str]:
        """Every client endpoint, member ``first``'s in front if given."""
        ids = self.ids if first is None else [first] + [i for i in self.ids if i != first]
        return [self.member(i).client for i in ids]

    def log(self, member_id: int) -> str:
        with open(self.member(member_id).log_file, encoding="utf-8", errors="replace") as f:
            return f.read()

    # -- asking one member -------------------------------------------------------
    def pinned(self, member_id: int, *, timeout: float = 5.0) -> kvstore.Client:
        """A client that talks to ``member_id`` only."""
        return kvstore.connect([self.member(member_id).client], timeout=timeout,
                               follow_leader=False)

    async def status(self, member_id: int) -> NodeStatus | None:
        """The member's status, or ``None`` if it does not answer."""
        try:
            async with self.pinned(member_id, timeout=2.0) as c:
                return await c.status()
        except (KvError, OSError, asyncio.TimeoutError):
            return None

    async def wait_applied(self, revision: int, members: list[int], *, timeout: float = 30.0
                           ) -> None:
        """Wait until every one of ``members`` is at ``revision`` or later."""

        async def caught_up() -> bool:
            for i in members:
                st = await self.status(i)
                if st is None or st.revision < revision:
                    return False
            return True

        await poll_until(caught_up, timeout=timeout,
                         what=f"members {members} to reach revision {revision}")

    async def wait_log(self, member_id: int, text: str, *, timeout: float = 10.0) -> None:
        async def logged() -> bool:
            return text in self.log(member_id)

        await poll_until(logged, timeout=timeout, what=f"{text!r} in member {member_id}'s log")

"""A local cluster: N member processes on loopback, started, found and stopped.

``LocalCluster.up`` starts every member that is not running (a running one is
left alone), records pids in each member's folder, and waits until a leader
is elected. ``down`` stops them (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import kvstore
from kvstore.errors import KvError
from runtime.clusterfile import ClusterFile, MemberEntry

__all__ = ["LocalCluster", "MemberState"]


@dataclass(frozen=True, slots=True)
class MemberState:
    """What ``status`` learns of one member."""

    id: int
    pid: int | None
    client: str
    peer: str
    running: bool
    role: str = "-"
    term: int = 0
    leader: int = 0
    commit_index: int = 0
    applied_index: int = 0
    revision: int = 0
    healthy: bool = False
    error: str = ""


def read_pid(member: MemberEntry) -> int | None:
    try:
        with open(member.pid_file, encoding="ascii") as f:
            pid = int(f.read().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child is not running.
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


class LocalCluster:
    """The members recorded under ``data_dir``."""

    def __init__(self, data_dir: str = ".steer") -> None:
        self.data_dir = data_dir
        # Children started by this object, reaped when they stop.
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    def load(self) -> ClusterFile | None:
        return ClusterFile.load(self.data_dir)

    def ensure(self, nodes: int, base_port: int) -> ClusterFile:
        """The existing cluster file, or a new one for ``nodes`` members."""
        cf = self.load()
        if cf is None:
            cf = ClusterFile.new(self.data_dir, nodes, base_port)
            cf.save(self.data_dir)
        return cf

    def start_member(self, member: MemberEntry, *, extra_args: list[str] | None = None) -> int:
        """Start one member process in the background; returns its pid."""
        os.makedirs(member.data_dir, exist_ok=True)
        log = open(member.log_file, "ab")  # noqa: SIM115 - handed to the child
        cmd = [sys.executable, "-m", "runtime.host", "--data-dir", self.data_dir,
               "--id", str(member.id), *(extra_args or [])]
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self._procs[member.id] = proc
        with open(member.pid_file, "w", encoding="ascii") as f:
            f.write(str(proc.pid))
        return proc.pid

    def up(self, nodes: int = 3, base_port: int = 2379, *, extra_args: list[str] | None = None
           ) -> tuple[ClusterFile, list[int]]:
        """Start every member that is not running; returns the file and the ids started."""
        cf = self.ensure(nodes, base_port)
        started = []
        for m in cf.members:
            if read_pid(m) is None:
                self.start_member(m, extra_args=extra_args)
                started.append(m.id)
        return cf, started

    def down(self, *, grace: float = 10.0) -> list[int]:
        """Stop every member; returns the ids that were running."""
        cf = self.load()
        if cf is None:
            return []
        stopped = []
        for m in cf.members:
            pid = read_pid(m)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                stopped.append((m, pid))
        deadline = time.monotonic() + grace
        for m, pid in stopped:
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(FileNotFoundError):
                os.remove(m.pid_file)
            self._reap(m.id)
        return [m.id for m, _ in stopped]

    def _reap(self, member_id: int) -> None:
        proc = self._procs.pop(member_id, None)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)

    def kill(self, member_id: int, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to one member (tests use SIGKILL)."""
        cf = self.load()
        if cf is None:
            raise KeyError("no cluster")
        pid = read_pid(cf.member(member_id))
        if pid is not None:
            os.kill(pid, sig)
            if sig == signal.SIGKILL:
                self._reap(member_id)

    async def member_status(self, member: MemberEntry, *, timeout: float = 2.0) -> MemberState:
        pid = read_pid(member)
        base = MemberState(member.id, pid, member.client, member.peer, pid is not None)
        if pid is None:
            return base
        try:
            client = kvstore.Client([member.client], timeout=timeout, follow_leader=False)
            async with client:
                st = await client.status()
        except (KvError, OSError, asyncio.TimeoutError) as e:
            return MemberState(member.id, pid, member.client, member.peer, True, error=str(e))
        return MemberState(
            member.id, pid, member.client, member.peer, True, role=st.role, term=st.term,
            leader=st.leader, commit_index=st.commit_index, applied_index=st.applied_index,
            revision=st.revision, healthy=st.leader != 0,
        )

    async def status(self) -> list[MemberState]:
        cf = self.load()
        if cf is None:
            return []
        return list(await asyncio.gather(*(self.member_status(m) for m in cf.members)))

    async def wait_for_leader(self, timeout: float = 30.0) -> MemberState | None:
        """Wait until a majority agrees on a leader; returns the leader's state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = await self.status()
            leaders = [s for s in states if s.role == "leader"]
            if leaders:
                lead = leaders[0]
                agree = sum(1 for s in states if s.leader == lead.id)
                if agree * 2 > len(states):
                    return lead
            await asyncio.sleep(0.1)
        return None

"""The lock across OS processes on a real three-member cluster, and a holder killed with -9."""

from __future__ import annotations

import asyncio
import random
import signal
import socket
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import kvstore
from runtime.cluster import LocalCluster

pytestmark = [
    pytest.mark.slow,
    # LocalCluster.start_member drops its Popen handles while the members run.
    pytest.mark.filterwarnings("ignore:subprocess .* is still running:ResourceWarning"),
]

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 10
TIMEOUT = 30.0

WORKER = textwrap.dedent(
    """
    import asyncio, sys
    import kvstore
    from kvstore.recipes import Mutex, Session

    async def main(endpoints, rounds):
        async with kvstore.connect(endpoints, timeout=20) as kv:
            async with Session(kv, ttl=5) as session:
                mutex = Mutex(session, "/procs/lock")
                for _ in range(rounds):
                    async with mutex:
                        current = await kv.get("/procs/counter")
                        value = int(current.value) if current else 0
                        await kv.put("/procs/counter", str(value + 1))
                print("counted", flush=True)
                await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
                await mutex.lock()
                print("holding", mutex.key.decode(), flush=True)
                await asyncio.Event().wait()

    asyncio.run(main(sys.argv[1].split(","), int(sys.argv[2])))
    """
)


def _free_base_port() -> int:
    """A base port with the 6 consecutive ports a three-member cluster needs all free."""
    rng = random.Random()
    for _ in range(100):
        base = rng.randrange(20000, 60000, 2)
        sockets = []
        try:
            for port in range(base, base + 6):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free port range found")


@pytest.fixture
async def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[str]]:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.chdir(ROOT)
    local = LocalCluster(str(tmp_path / "cluster"))
    try:
        cf, _ = local.up(
            3, _free_base_port(),
            extra_args=["--tick-interval", "0.05", "--election-ticks", "10", "--unsafe-no-fsync",
                        "--no-control-plane"],
        )
        assert await local.wait_for_leader(timeout=TIMEOUT) is not None
        yield [m.client for m in cf.members]
    finally:
        local.down(grace=5.0)


async def _line(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
    if not line:
        raise AssertionError(f"worker {proc.pid} exited with {await proc.wait()}")
    return line.decode().strip()


async def test_a_killed_holder_loses_the_lock_to_the_next_process(cluster: list[str]) -> None:
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", WORKER, ",".join(cluster), str(ROUNDS),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(3)
    ]
    try:
        # Contention: three processes, ROUNDS locked read-modify-writes each.
        assert [await _line(w) for w in workers] == ["counted"] * 3
        async with kvstore.connect(cluster, timeout=TIMEOUT) as kv:
            counter = await kv.get("/procs/counter")
            assert counter is not None and int(counter.value) == 3 * ROUNDS

            # All three queue for the lock, which they then hold forever.
            for w in workers:
                assert w.stdin is not None
                w.stdin.write(b"go\n")
                await w.stdin.drain()
            reads = {asyncio.ensure_future(_line(w)): w for w in workers}
            done, _ = await asyncio.wait(reads, timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
            assert len(done) == 1, "one holder at a time"
            first = done.pop()
            holder = reads.pop(first)
            held_key = first.result().split()[1].encode()
            # The other two join the line on their own schedule: wait for them.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + TIMEOUT
            while True:
                owner = await kv.range("/procs/lock/", prefix=True,
                                       sort_target=kvstore.mvcc.types.SortTarget.CREATE)
                if len(owner.kvs) == 3 or loop.time() > deadline:
                    break
                await asyncio.sleep(0.05)
            assert [k.key for k in owner.kvs][0] == held_key and len(owner.kvs) == 3

            # kill -9: the holder's lease stops being renewed and expires after its TTL.
            holder.send_signal(signal.SIGKILL)
            await holder.wait()
            done, _ = await asyncio.wait(reads, timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
            assert len(done) == 1, "the lock passed to exactly one process"
            second = done.pop()
            new_key = second.result().split()[1].encode()
            assert new_key != held_key
            line = await kv.range("/procs/lock/", prefix=True, sort_target=kvstore.mvcc.types.SortTarget.CREATE)
            assert [k.key for k in line.kvs][0] == new_key and len(line.kvs) == 2
            assert int(held_key.rsplit(b"/", 1)[1], 16) not in await kv.lease_list()
            for task in reads:
                task.cancel()
    finally:
        for w in workers:
            if w.returncode is None:
                w.kill()
                await w.wait()

"""A follower killed with kill -9 while the others write on, snapshot and compact,
comes back and catches up by snapshot."""

from __future__ import annotations

import pytest

import kvstore
from tests.procs.harness import ProcCluster

pytestmark = pytest.mark.slow

SNAPSHOT_ARGS = ["--snapshot-count", "200", "--catch-up-entries", "50"]


async def test_killed_follower_catches_up_by_snapshot(procs: ProcCluster) -> None:
    leader = await procs.up(extra_args=SNAPSHOT_ARGS)
    follower = next(i for i in procs.ids if i != leader)
    async with kvstore.connect(procs.endpoints(), timeout=10) as kv:
        for i in range(50):
            await kv.put(f"/snap/{i:04d}", f"before-{i}")
        procs.kill(follower)
        # Well over --snapshot-count requests while it is down, one entry
        # each (puts made together would share entries): the leader
        # snapshots and drops the log the follower would need.
        for i in range(700):
            await kv.put(f"/snap/{i:04d}", f"v{i}")
        deleted = await kv.delete("/snap/00", prefix=True)  # keys 0000..0099
        assert deleted.deleted == 100
        compact_at = deleted.header_revision - 10
        await kv.compact(compact_at)
        lease = await kv.lease_grant(600)
        final = (await kv.put("/snap/leased", b"x", lease=lease.id)).header_revision
        assert "saved a snapshot" in procs.log(leader)

        procs.restart(follower)
        await procs.wait_applied(final, [follower])
        await procs.wait_log(follower, "installed snapshot")

        async with procs.pinned(leader) as lc, procs.pinned(follower) as fc:
            assert await fc.hash_kv(final) == await lc.hash_kv(final)
            f_status, l_status = await fc.status(), await lc.status()
            assert f_status.compact_revision == l_status.compact_revision == compact_at
            stored = await fc.range("/snap/", prefix=True, serializable=True)
            assert stored.count == 601
            values = {x.key.decode(): x.value.decode() for x in stored.kvs}
            assert values["/snap/0100"] == "v100" and values["/snap/0699"] == "v699"
            assert "/snap/0042" not in values
            assert values["/snap/leased"] == "x"
            assert lease.id in await fc.lease_list()
        # The follower's restored state takes part in new writes like any other.
        after = await kv.put("/snap/after", b"1")
    await procs.wait_applied(after.header_revision, procs.ids)

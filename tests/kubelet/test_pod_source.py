"""Many simulated kubelets fed by one ``SharedPodSource``."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import kvstore
from controllers.api import Clientset
from controllers.clock import FakeClock
from runtime.kubelet import Kubelet, SharedPodSource
from tests.kubelet.support import FAST, WALL_START, eventually, pod, pod_status


async def test_kubelets_sharing_one_pod_watch(tmp_path: Path) -> None:
    clock = FakeClock(WALL_START)
    async with kvstore.open(str(tmp_path / "store"), options=FAST) as kv:
        api = Clientset(kv, clock=clock, rng=random.Random(1))
        source = SharedPodSource(api, clock=clock)
        # A pod bound before its kubelet exists: the late subscriber still gets it.
        await api.resource("pods").create(pod("early", node="node-7"))

        def kubelet(i: int) -> Kubelet:
            return Kubelet(Clientset(kv, clock=clock), f"node-{i}", root_dir=tmp_path,
                           simulated=True, clock=clock, pod_source=source,
                           capacity={"cpu": "1", "memory": "1Gi", "pods": "10"})

        kubelets = [kubelet(i) for i in range(7)]
        for k in kubelets:
            k.start()
        for k in kubelets:
            await asyncio.wait_for(k.wait_ready(), 10)
        for i in range(7):
            await api.resource("pods").create(pod(f"p{i}", node=f"node-{i}"))

        async def running(name: str) -> bool:
            st = await pod_status(api, name) or {}
            return st.get("phase") == "Running"

        for i in range(7):
            await eventually(lambda i=i: running(f"p{i}"), f"p{i} running")
            assert [w.name for w in kubelets[i].workers()] == [f"p{i}"]
        assert await pod_status(api, "early") == {"phase": "Pending"}

        late = kubelet(7)
        late.start()
        await asyncio.wait_for(late.wait_ready(), 10)
        await eventually(lambda: running("early"), "early running")

        await api.resource("pods").delete("p3", "default")
        await eventually(lambda: kubelets[3].workers() == [], "p3 deleted and forgotten")
        assert await pod_status(api, "p3") is None
        await asyncio.gather(*(k.stop() for k in [*kubelets, late]))
        await source.stop()

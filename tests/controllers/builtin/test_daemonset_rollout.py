"""DaemonSet updates under a Manager: RollingUpdate bounds at every write, OnDelete, history."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Self

from controllers.api import Clientset
from controllers.api.objects import Obj
from controllers.api.watch import ResourceWatch, WatchEventType
from controllers.builtin.daemonset import CONTROLLER_REVISION_HASH_LABEL
from controllers.builtin.podutil import is_pod_ready
from tests.controllers.builtin.test_daemonset_controller import (
    Cluster,
    cluster,
    daemonset,
    settled,
)

__all__ = ["cluster"]

NODES = ["n1", "n2", "n3", "n4"]


class PodStates:
    """Every state of the pods of the default namespace, one per write."""

    def __init__(self, api: Clientset) -> None:
        self.api = api
        self.current: dict[str, Obj] = {}
        self.states: list[dict[str, Obj]] = []
        self._watch: ResourceWatch | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        client = self.api.resource("pods")
        listed = await client.list("default")
        self.current = {p["metadata"]["name"]: p for p in listed["items"]}
        self.states.append(dict(self.current))
        self._watch = await client.watch("default",
                                         resource_version=listed["metadata"]["resourceVersion"])
        self._task = asyncio.ensure_future(self._run(self._watch))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._watch is not None:
            await self._watch.aclose()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self, watch: ResourceWatch) -> None:
        async for ev in watch:
            if ev.type == WatchEventType.BOOKMARK:
                continue
            name = ev.object["metadata"]["name"]
            if ev.type == WatchEventType.DELETED:
                self.current.pop(name, None)
            else:
                self.current[name] = ev.object
            self.states.append(dict(self.current))


def unavailable_nodes(state: dict[str, Obj]) -> int:
    """Nodes of ``NODES`` without a ready pod that is not being deleted."""
    up = {p["spec"].get("nodeName") for p in state.values()
          if is_pod_ready(p) and not p["metadata"].get("deletionTimestamp")}
    return sum(1 for n in NODES if n not in up)


async def revisions(cluster: Cluster) -> list[Obj]:
    items = (await cluster.api.resource("controllerrevisions").list("default"))["items"]
    return sorted(items, key=lambda r: r["revision"])


async def set_image(cluster: Cluster, image: str, name: str = "agent") -> None:
    await cluster.api.resource("daemonsets").patch(name, "default", {"spec": {"template": {
        "spec": {"containers": [{"name": "c", "image": image}]}}}})


def rolled_out(cluster: Cluster, image: str) -> Callable[[], Any]:
    """A check: one ready pod per node, all of ``image``, and the status says so."""
    async def check() -> bool:
        if not await settled(cluster, NODES)():
            return False
        pods = await cluster.pods()
        status = await cluster.status()
        return (all(p["spec"]["containers"][0]["image"] == image for p in pods)
                and status.get("updatedNumberScheduled") == len(NODES)
                and status.get("numberAvailable") == len(NODES))
    return check


async def start_settled(cluster: Cluster, **spec: Any) -> None:
    await cluster.add_nodes(*NODES)
    await cluster.start()
    await cluster.api.resource("daemonsets").create(daemonset(**spec))
    await cluster.until(settled(cluster, NODES), "4 pods")


async def test_rolling_update_never_exceeds_max_unavailable(cluster: Cluster) -> None:
    await start_settled(cluster)
    async with PodStates(cluster.api) as watched:
        await set_image(cluster, "agent:2")
        await cluster.until(rolled_out(cluster, "agent:2"), "rolled out")
    worst = max(unavailable_nodes(s) for s in watched.states)
    assert worst == 1, worst
    current = (await revisions(cluster))[-1]
    assert all(p["metadata"]["labels"][CONTROLLER_REVISION_HASH_LABEL]
               == current["metadata"]["labels"][CONTROLLER_REVISION_HASH_LABEL]
               for p in await cluster.pods())


async def test_rolling_update_with_a_percentage_uses_its_whole_budget(cluster: Cluster) -> None:
    await start_settled(cluster, updateStrategy={"type": "RollingUpdate",
                                                 "rollingUpdate": {"maxUnavailable": "50%"}})
    async with PodStates(cluster.api) as watched:
        await set_image(cluster, "agent:2")
        await cluster.until(rolled_out(cluster, "agent:2"), "rolled out")
    assert max(unavailable_nodes(s) for s in watched.states) == 2


async def test_surge_keeps_every_node_available(cluster: Cluster) -> None:
    await start_settled(cluster, updateStrategy={"type": "RollingUpdate", "rollingUpdate": {
        "maxUnavailable": 0, "maxSurge": 1}})
    async with PodStates(cluster.api) as watched:
        await set_image(cluster, "agent:2")
        await cluster.until(rolled_out(cluster, "agent:2"), "rolled out")
    assert max(unavailable_nodes(s) for s in watched.states) == 0
    live = [[p for p in s.values() if not p["metadata"].get("deletionTimestamp")]
            for s in watched.states]
    assert max(len(pods) for pods in live) == len(NODES) + 1


async def test_on_delete_replaces_only_deleted_pods(cluster: Cluster) -> None:
    await start_settled(cluster, updateStrategy={"type": "OnDelete"})
    before = {p["metadata"]["name"] for p in await cluster.pods()}
    await set_image(cluster, "agent:2")

    async def observed() -> bool:
        status = await cluster.status()
        return status.get("observedGeneration") == 2 and len(await revisions(cluster)) == 2
    await cluster.until(observed, "the new template observed")
    assert {p["metadata"]["name"] for p in await cluster.pods()} == before
    assert (await cluster.status())["updatedNumberScheduled"] == 0

    victim = (await cluster.pods())[0]
    await cluster.api.resource("pods").delete(victim["metadata"]["name"], "default")

    async def replaced() -> bool:
        if not await settled(cluster, NODES)():
            return False
        return (await cluster.status()).get("updatedNumberScheduled") == 1
    await cluster.until(replaced, "the deleted pod replaced by the new template")
    images = sorted((p["spec"]["nodeName"], p["spec"]["containers"][0]["image"])
                    for p in await cluster.pods())
    assert images == sorted([(victim["spec"]["nodeName"], "agent:2")]
                            + [(n, "agent:1") for n in NODES
                               if n != victim["spec"]["nodeName"]])


async def test_history_is_recorded_trimmed_and_renumbered(cluster: Cluster) -> None:
    await start_settled(cluster, revisionHistoryLimit=2)
    first = await revisions(cluster)
    assert len(first) == 1 and first[0]["revision"] == 1
    rev = first[0]
    hash_ = rev["metadata"]["labels"][CONTROLLER_REVISION_HASH_LABEL]
    assert rev["metadata"]["name"] == f"agent-{hash_}"
    assert rev["metadata"]["labels"]["app"] == "agent"
    assert rev["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    assert rev["data"]["spec"]["template"]["$patch"] == "replace"
    assert rev["data"]["spec"]["template"]["spec"]["containers"][0]["image"] == "agent:1"

    for version in range(2, 6):
        await set_image(cluster, f"agent:{version}")
        await cluster.until(rolled_out(cluster, f"agent:{version}"), f"agent:{version}")

    async def trimmed() -> bool:
        return [r["revision"] for r in await revisions(cluster)] == [3, 4, 5]
    await cluster.until(trimmed, "the two newest old revisions kept")

    # Back to an earlier template: its revision becomes the newest, no new one is made.
    await set_image(cluster, "agent:4")
    await cluster.until(rolled_out(cluster, "agent:4"), "rolled back")

    async def renumbered() -> bool:
        found = [(r["revision"], r["data"]["spec"]["template"]["spec"]["containers"][0]["image"])
                 for r in await revisions(cluster)]
        return found == [(3, "agent:3"), (5, "agent:5"), (6, "agent:4")]
    await cluster.until(renumbered, "revision 4 renumbered 6")
    newest = (await revisions(cluster))[-1]
    assert {p["metadata"]["labels"][CONTROLLER_REVISION_HASH_LABEL]
            for p in await cluster.pods()} == {
        newest["metadata"]["labels"][CONTROLLER_REVISION_HASH_LABEL]}

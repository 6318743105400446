"""The Endpoints controller under a Manager, on an embedded one-member store.

The manager's clock is fake; ``eventually`` moves it on while it polls, so
rate-limited requeues come round. Informers hand out frozen objects, so any
mutation of a cached object would fail loudly.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import kvstore
from controllers.api import Clientset, NotFound
from controllers.api.objects import Obj
from controllers.builtin.endpoints import (
    CONTROLLER_NAME,
    MANAGED_BY_LABEL,
    OVER_CAPACITY_ANNOTATION,
    EndpointsController,
)
from controllers.clock import FakeClock
from controllers.informers.reflector import ListWatch
from controllers.informers.shared_informer import SharedInformer
from controllers.manager import Manager
from kvstore.clock import FakeClock as WallFakeClock
from kvstore.node import NodeOptions

T0 = 1_700_000_000.0
DEADLINE = 10.0


class Env:
    """A store, fake clocks, and a running manager with one Endpoints controller."""

    def __init__(self, api: Clientset, wall: WallFakeClock) -> None:
        self.api = api
        self.wall = wall
        self.clock = FakeClock()
        self.task: asyncio.Task[None] | None = None

    async def start(self, **options: Any) -> None:
        informers = {name: SharedInformer(ListWatch(self.api.resource(name)), clock=self.clock,
                                          freeze_objects=True, resource=name)
                     for name in ("services", "pods", "endpoints")}
        manager = Manager(self.api, [EndpointsController(**options)], clock=self.clock,
                          cache_sync_poll=0.01, informer_factory=informers.__getitem__)
        self.task = asyncio.ensure_future(manager.run())
        await self.eventually(lambda: all(i.has_synced() for i in informers.values()), "sync")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.wait({self.task})

    async def eventually(self, check: Callable[[], Any], what: str) -> None:
        """Poll ``check`` until true, moving the manager's clock on; real-time deadline."""
        deadline = time.monotonic() + DEADLINE
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"never happened: {what}")
            self.clock.advance(0.05)
            await asyncio.sleep(0.01)

    async def endpoints(self, name: str = "web") -> Obj | None:
        try:
            return await self.api.resource("endpoints").get(name, "default")
        except NotFound:
            return None

    def endpoints_exists(self, name: str) -> Callable[[], Any]:
        async def check() -> bool:
            return await self.endpoints(name) is not None
        return check

    async def wait_subsets(self, want: list[dict[str, Any]], name: str = "web") -> Obj:
        async def check() -> bool:
            ep = await self.endpoints(name)
            return ep is not None and ep.get("subsets") == want
        await self.eventually(check, f"endpoints {name} == {want}")
        ep = await self.endpoints(name)
        assert ep is not None
        return ep

    async def wait_gone(self, name: str = "web") -> None:
        async def check() -> bool:
            return await self.endpoints(name) is None
        await self.eventually(check, f"endpoints {name} deleted")

    async def pod(self, name: str, ip: str = "", *, ready: bool = True,
                  labels: dict[str, str] | None = None) -> Obj:
        created = await self.api.resource("pods").create({
            "metadata": {"name": name, "namespace": "default",
                         "labels": {"app": "web"} if labels is None else labels},
            "spec": {"nodeName": "n1", "containers": [{
                "name": "main", "image": "nginx:1.25",
                "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": status(ip, ready)})
        return created

    async def set_status(self, name: str, ip: str, ready: bool) -> None:
        current = await self.api.resource("pods").get(name, "default")
        await self.api.resource("pods").update_status({**current, "status": status(ip, ready)})


def status(ip: str, ready: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"phase": "Running" if ip else "Pending", "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}
    if ip:
        out["podIP"] = ip
    return out


def service(name: str = "web", selector: dict[str, str] | None = None, **spec: Any) -> Obj:
    body: dict[str, Any] = {"ports": [{"name": "web", "port": 80, "targetPort": "http"}],
                            "selector": {"app": "web"} if selector is None else selector}
    body.update(spec)
    return {"metadata": {"name": name, "namespace": "default", "labels": {"tier": "fe"}},
            "spec": body}


def addr(pod: Obj) -> dict[str, Any]:
    m = pod["metadata"]
    return {"ip": pod["status"]["podIP"], "nodeName": "n1",
            "targetRef": {"kind": "Pod", "namespace": "default", "name": m["name"],
                          "uid": m["uid"]}}


PORTS = [{"name": "web", "port": 8080, "protocol": "TCP"}]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with kvstore.open(str(tmp_path / "s"),
                            options=NodeOptions(tick_interval=0.01, unsafe_no_fsync=True)) as n:
        wall = WallFakeClock(T0)
        api = Clientset(n, clock=wall, rng=random.Random(5))
        await api.ensure_default_namespaces()
        e = Env(api, wall)
        try:
            yield e
        finally:
            await e.stop()


async def test_endpoints_follow_pods_through_readiness_ip_changes_and_deletion(
        env: Env) -> None:
    # A Service and pods that exist before the controller starts.
    await env.api.resource("services").create(service())
    a = await env.pod("a", "10.244.0.5")
    b = await env.pod("b", "10.244.0.6", ready=False)
    await env.pod("pending")                          # no IP: not listed
    await env.pod("other", "10.244.0.9", labels={"app": "db"})
    await env.start()
    ep = await env.wait_subsets([{"addresses": [addr(a)], "notReadyAddresses": [addr(b)],
                                  "ports": PORTS}])
    assert ep["metadata"]["labels"] == {"tier": "fe", MANAGED_BY_LABEL: CONTROLLER_NAME}
    assert "ownerReferences" not in ep["metadata"]

    # b becomes ready, a stops being ready.
    await env.set_status("b", "10.244.0.6", True)
    await env.set_status("a", "10.244.0.5", False)
    b = await env.api.resource("pods").get("b")
    a = await env.api.resource("pods").get("a")
    await env.wait_subsets([{"addresses": [addr(b)], "notReadyAddresses": [addr(a)],
                             "ports": PORTS}])

    # a comes back ready with another IP.
    await env.set_status("a", "10.244.0.50", True)
    a = await env.api.resource("pods").get("a")
    await env.wait_subsets([{"addresses": [addr(b), addr(a)], "ports": PORTS}])

    # A new pod gets its IP and is ready.
    c = await env.pod("c")
    await env.set_status("c", "10.244.0.7", True)
    c = await env.api.resource("pods").get("c")
    await env.wait_subsets([{"addresses": [addr(b), addr(c), addr(a)], "ports": PORTS}])

    # b is being deleted (a grace period on a scheduled pod): it is dropped at once.
    await env.api.resource("pods").delete("b", "default")
    assert (await env.api.resource("pods").get("b"))["metadata"].get("deletionTimestamp")
    await env.wait_subsets([{"addresses": [addr(c), addr(a)], "ports": PORTS}])
    # c is removed outright; a's labels change so the Service no longer selects it.
    await env.api.resource("pods").delete("c", "default", grace_period_seconds=0)
    a["metadata"]["labels"] = {"app": "elsewhere"}
    await env.api.resource("pods").update(a)
    await env.wait_subsets([])


async def test_endpoints_go_away_with_the_service_and_come_back_when_deleted(env: Env) -> None:
    await env.start()
    a = await env.pod("a", "10.244.0.5")
    await env.api.resource("services").create(service())
    await env.wait_subsets([{"addresses": [addr(a)], "ports": PORTS}])
    # Someone deletes the Endpoints: it is written again.
    await env.api.resource("endpoints").delete("web", "default")
    await env.wait_subsets([{"addresses": [addr(a)], "ports": PORTS}])
    # Someone edits it: the edit is undone.
    ep = await env.endpoints()
    assert ep is not None
    await env.api.resource("endpoints").update({**ep, "subsets": []})
    await env.wait_subsets([{"addresses": [addr(a)], "ports": PORTS}])
    await env.api.resource("services").delete("web", "default")
    await env.wait_gone()


async def test_selector_removal_deletes_only_endpoints_the_controller_manages(env: Env) -> None:
    await env.start()
    a = await env.pod("a", "10.244.0.5")
    await env.api.resource("services").create(service())
    await env.wait_subsets([{"addresses": [addr(a)], "ports": PORTS}])
    svc = await env.api.resource("services").get("web")
    del svc["spec"]["selector"]
    await env.api.resource("services").update(svc)
    await env.wait_gone()

    # A selector-less Service with Endpoints written by hand: left alone, even
    # as pods come and go and the Service changes.
    manual = [{"addresses": [{"ip": "192.168.1.10"}],
               "ports": [{"name": "web", "port": 8080, "protocol": "TCP"}]}]
    await env.api.resource("services").create(service("ext", selector={}))
    await env.api.resource("endpoints").create(
        {"metadata": {"name": "ext", "namespace": "default"}, "subsets": manual})
    await env.pod("b", "10.244.0.6")
    svc = await env.api.resource("services").get("ext")
    svc["metadata"]["labels"] = {"tier": "changed"}
    await env.api.resource("services").update(svc)
    # A marker Service created after those changes: once its Endpoints exists,
    # the controller has handled everything before it.
    await env.api.resource("services").create(service("marker"))
    await env.eventually(env.endpoints_exists("marker"), "marker endpoints")
    ep = await env.endpoints("ext")
    assert ep is not None and ep["subsets"] == manual
    assert MANAGED_BY_LABEL not in (ep["metadata"].get("labels") or {})


async def test_headless_service_without_ports_lists_addresses_without_ports(env: Env) -> None:
    await env.start()
    a = await env.pod("a", "10.244.0.5")
    await env.api.resource("services").create(service("db", ports=[], clusterIP="None"))
    ep = await env.wait_subsets([{"addresses": [addr(a)]}], name="db")
    assert ep["metadata"]["labels"]["service.kubernetes.io/headless"] == ""


async def test_over_capacity_endpoints_are_cut_and_annotated_until_they_fit(env: Env) -> None:
    await env.start(max_capacity=2)
    a = await env.pod("a", "10.244.0.5")
    b = await env.pod("b", "10.244.0.6")
    await env.pod("c", "10.244.0.7", ready=False)
    await env.api.resource("services").create(service())
    ep = await env.wait_subsets([{"addresses": [addr(a), addr(b)], "ports": PORTS}])
    assert ep["metadata"]["annotations"][OVER_CAPACITY_ANNOTATION] == "truncated"
    await env.api.resource("pods").delete("c", "default", grace_period_seconds=0)

    async def fits() -> bool:
        ep = await env.endpoints()
        return ep is not None and OVER_CAPACITY_ANNOTATION not in (
            ep["metadata"].get("annotations") or {})
    await env.eventually(fits, "over-capacity annotation removed")
    await env.wait_subsets([{"addresses": [addr(a), addr(b)], "ports": PORTS}])


async def test_endpoints_left_over_from_a_service_deleted_while_stopped_are_removed(
        env: Env) -> None:
    await env.start()
    a = await env.pod("a", "10.244.0.5")
    await env.api.resource("services").create(service())
    await env.wait_subsets([{"addresses": [addr(a)], "ports": PORTS}])
    await env.stop()
    await env.api.resource("services").delete("web", "default")
    # Endpoints nobody manages, with no Service either: not the controller's business.
    manual = {"metadata": {"name": "by-hand", "namespace": "default"},
              "subsets": [{"addresses": [{"ip": "192.168.1.10"}], "ports": [{"port": 80}]}]}
    await env.api.resource("endpoints").create(manual)
    assert await env.endpoints() is not None
    await env.start()
    await env.wait_gone()
    assert await env.endpoints("by-hand") is not None

"""The namespace controller: pure summaries and conditions, and deletion on an embedded store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import kvstore
from controllers.api import Clientset, Forbidden, NotFound
from controllers.api.objects import Obj, format_timestamp
from controllers.builtin.garbagecollector import GarbageCollector
from controllers.builtin.namespace import (
    CONDITION_TYPES,
    ContentSummary,
    NamespaceController,
    deletion_conditions,
    requeue_seconds,
    summarize,
    without_kubernetes_finalizer,
)
from controllers.clock import FakeClock
from controllers.informers import FREEZE_ENV
from controllers.informers.store import freeze
from controllers.manager import Manager
from kvstore.clock import FakeClock as WallFakeClock
from kvstore.node import NodeOptions

NOW = 1_700_000_000.0
DEADLINE = 20.0  # real seconds; a test reaching it has failed

# -- pure -----------------------------------------------------------------------------------


def item(name: str, *, finalizers: tuple[str, ...] = (), deleting_at: float | None = None,
         grace: int | None = None) -> Obj:
    m: dict[str, Any] = {"name": name}
    if finalizers:
        m["finalizers"] = list(finalizers)
    if deleting_at is not None:
        m["deletionTimestamp"] = format_timestamp(deleting_at)
    spec = {"terminationGracePeriodSeconds": grace} if grace is not None else {}
    return {"metadata": m, "spec": spec}


def test_summarize_counts_what_remains_and_estimates_the_wait() -> None:
    assert summarize({}, now=NOW) == ContentSummary()
    assert summarize({"pods": [], "configmaps": []}, now=NOW).estimate_seconds == 0
    s = summarize({"pods": [item("p", deleting_at=NOW + 30), item("q", grace=10)],
                   "configmaps": [item("a", finalizers=("x/y", "a/b")),
                                  item("b", finalizers=("x/y",))],
                   "secrets": []}, now=NOW)
    assert s.remaining == (("pods", 2), ("configmaps", 2))
    assert s.finalizers == (("a/b", 1), ("x/y", 2))
    assert s.estimate_seconds == 30  # the longest grace left beats the finalizer estimate
    assert requeue_seconds(s) == 16.0
    held = summarize({"configmaps": [item("a", finalizers=("x/y",))]}, now=NOW)
    assert held.estimate_seconds == 15 and requeue_seconds(held) == 8.0
    plain = summarize({"configmaps": [item("a")]}, now=NOW)
    assert plain.estimate_seconds == 1 and requeue_seconds(plain) == 1.0
    failed = summarize({}, now=NOW, failures=["pods: boom"])
    assert failed.failures == ("pods: boom",) and failed.estimate_seconds == 1
    assert not failed.is_empty and ContentSummary().is_empty


def by_type(conditions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in conditions}


def test_deletion_conditions_say_what_remains_and_keep_transition_times() -> None:
    other = {"type": "Custom", "status": "True"}
    s = summarize({"configmaps": [item("a", finalizers=("x/y",))]}, now=NOW,
                  failures=["secrets: nope"])
    first = deletion_conditions(freeze([other]), s, now=NOW)
    assert [c["type"] for c in first] == ["Custom", *CONDITION_TYPES]
    got = by_type(first)
    assert got["NamespaceDeletionDiscoveryFailure"]["status"] == "False"
    assert got["NamespaceDeletionDiscoveryFailure"]["reason"] == "ResourcesDiscovered"
    assert got["NamespaceDeletionContentFailure"]["status"] == "True"
    assert got["NamespaceDeletionContentFailure"]["reason"] == "ContentDeletionFailed"
    assert "secrets: nope" in got["NamespaceDeletionContentFailure"]["message"]
    assert got["NamespaceContentRemaining"] == {
        "type": "NamespaceContentRemaining", "status": "True",
        "lastTransitionTime": format_timestamp(NOW), "reason": "SomeResourcesRemain",
        "message": "Some resources are remaining: configmaps has 1 resource instances"}
    assert got["NamespaceFinalizersRemaining"]["reason"] == "SomeFinalizersRemain"
    assert got["NamespaceFinalizersRemaining"]["message"] == (
        "Some content in the namespace has finalizers remaining: x/y in 1 resource instances")
    # Later: still remaining (time kept), failure gone (time moves).
    later = by_type(deletion_conditions(first, summarize(
        {"configmaps": [item("a", finalizers=("x/y",))]}, now=NOW), now=NOW + 60))
    assert later["NamespaceContentRemaining"]["lastTransitionTime"] == format_timestamp(NOW)
    assert later["NamespaceDeletionContentFailure"]["status"] == "False"
    assert later["NamespaceDeletionContentFailure"]["lastTransitionTime"] == \
        format_timestamp(NOW + 60)
    empty = by_type(deletion_conditions(first, ContentSummary(), now=NOW + 90))
    assert all(c["status"] == "False" for c in empty.values() if c["type"] != "Custom")
    assert empty["NamespaceContentRemaining"]["reason"] == "ContentRemoved"
    assert empty["NamespaceFinalizersRemaining"]["reason"] == "ContentHasNoFinalizers"


def test_without_kubernetes_finalizer_leaves_an_explicit_list() -> None:
    ns = freeze({"metadata": {"name": "x"}, "spec": {"finalizers": ["kubernetes", "other.io/f"]}})
    new = without_kubernetes_finalizer(ns)
    assert new is not None and new["spec"]["finalizers"] == ["other.io/f"]
    assert without_kubernetes_finalizer(new) is None
    alone = without_kubernetes_finalizer({"spec": {"finalizers": ["kubernetes"]}})
    assert alone is not None and alone["spec"]["finalizers"] == []


# -- on a store -----------------------------------------------------------------------------


@dataclass
class Env:
    api: Clientset
    clock: FakeClock
    wall: WallFakeClock

    async def eventually(self, check: Callable[[], Awaitable[bool]], what: str,
                         step: float = 0.05) -> None:
        """Move both clocks ``step`` at a time until ``check()`` holds."""
        give_up = time.monotonic() + DEADLINE
        while not await check():
            if time.monotonic() > give_up:
                raise AssertionError(f"never happened: {what}")
            self.clock.advance(step)
            self.wall.advance(step)
            await asyncio.sleep(0.005)

    async def idle(self, turns: int = 40) -> None:
        """Let the loop run for a while without moving either clock."""
        for _ in range(turns):
            await asyncio.sleep(0.005)


@pytest.fixture
async def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Env]:
    monkeypatch.setenv(FREEZE_ENV, "1")
    async with kvstore.open(str(tmp_path / "s"),
                            options=NodeOptions(tick_interval=0.01, unsafe_no_fsync=True)) as n:
        wall = WallFakeClock(NOW)
        api = Clientset(n, clock=wall)
        await api.ensure_default_namespaces()
        yield Env(api, FakeClock(), wall)


@pytest.fixture
async def manager(env: Env) -> AsyncIterator[Manager]:
    m = Manager(env.api, [NamespaceController()], clock=env.clock)
    task = asyncio.ensure_future(m.run())
    yield m
    task.cancel()
    await asyncio.wait({task})


async def fill(api: Clientset, ns: str) -> None:
    await api.resource("namespaces").create({"metadata": {"name": ns}})
    container = {"name": "main", "image": "busybox:1.36"}
    for i in range(2):
        await api.resource("pods").create({"metadata": {"name": f"p{i}", "namespace": ns},
                                           "spec": {"containers": [container]}})
    await api.resource("configmaps").create({"metadata": {"name": "cm", "namespace": ns}})
    await api.resource("secrets").create({"metadata": {"name": "s", "namespace": ns}})
    await api.resource("services").create({"metadata": {"name": "svc", "namespace": ns},
                                           "spec": {"ports": [{"port": 80}]}})
    await api.resource("deployments").create({
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [container]}}}})


async def content(api: Clientset, ns: str) -> list[str]:
    out = []
    for kind in api.registry.kinds():
        if kind.namespaced:
            items = (await api.resource(kind.resource).list(ns))["items"]
            out += [f"{kind.resource}/{o['metadata']['name']}" for o in items]
    return sorted(out)


async def gone(api: Clientset, ns: str) -> bool:
    try:
        await api.resource("namespaces").get(ns)
    except NotFound:
        return True
    return False


async def test_deleting_a_namespace_empties_it_then_removes_it(env: Env,
                                                               manager: Manager) -> None:
    api = env.api
    await fill(api, "team")
    await fill(api, "bystander")
    marked = await api.resource("namespaces").delete("team")
    assert marked["status"]["phase"] == "Terminating"
    assert marked["spec"]["finalizers"] == ["kubernetes"]
    await env.eventually(lambda: gone(api, "team"), "namespace team removed")
    assert await content(api, "team") == []
    assert len(await content(api, "bystander")) == 6
    assert not await gone(api, "bystander")


async def test_content_with_finalizers_holds_the_namespace_until_released(
        env: Env, manager: Manager) -> None:
    api = env.api
    await fill(api, "team")
    await api.resource("configmaps").create({"metadata": {
        "name": "held", "namespace": "team", "finalizers": ["example.com/hold"]}})
    await api.resource("namespaces").delete("team")

    async def only_the_held_one_left() -> bool:
        ns = await api.resource("namespaces").get("team")
        conditions = {c["type"]: c for c in ns["status"].get("conditions") or []}
        return (await content(api, "team") == ["configmaps/held"]
                and conditions.get("NamespaceFinalizersRemaining", {}).get("status") == "True")

    await env.eventually(only_the_held_one_left, "everything but the held configmap gone")
    ns = await api.resource("namespaces").get("team")
    conditions = {c["type"]: c for c in ns["status"]["conditions"]}
    assert conditions["NamespaceContentRemaining"]["message"] == (
        "Some resources are remaining: configmaps has 1 resource instances")
    assert conditions["NamespaceFinalizersRemaining"]["message"] == (
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 "
        "resource instances")
    assert conditions["NamespaceDeletionContentFailure"]["status"] == "False"
    assert ns["spec"]["finalizers"] == ["kubernetes"]

    # Nothing new may be created in a terminating namespace.
    with pytest.raises(Forbidden):
        await api.resource("configmaps").create({"metadata": {"name": "late",
                                                              "namespace": "team"}})

    # Released: the controller looks again after its estimate (15 // 2 + 1 = 8 s), not before.
    await env.idle()  # the reconcile of its own status write ends first
    held = await api.resource("configmaps").get("held", "team")
    held["metadata"]["finalizers"] = []
    await api.resource("configmaps").update(held)
    await env.idle()
    assert not await gone(api, "team")
    env.clock.advance(7.0)
    env.wall.advance(7.0)
    await env.idle()
    assert not await gone(api, "team")
    await env.eventually(lambda: gone(api, "team"), "namespace removed once released")


async def test_other_spec_finalizers_keep_the_empty_namespace(env: Env,
                                                              manager: Manager) -> None:
    api = env.api
    await api.resource("namespaces").create({"metadata": {"name": "team"},
                                             "spec": {"finalizers": ["kubernetes",
                                                                     "example.com/ns"]}})
    await api.resource("configmaps").create({"metadata": {"name": "cm", "namespace": "team"}})
    await api.resource("namespaces").delete("team")

    async def kubernetes_finalizer_removed() -> bool:
        ns = await api.resource("namespaces").get("team")
        return bool(ns["spec"]["finalizers"] == ["example.com/ns"])

    await env.eventually(kubernetes_finalizer_removed, "the kubernetes finalizer removed")
    assert await content(api, "team") == []
    ns = await api.resource("namespaces").get("team")
    ns["spec"]["finalizers"] = []
    await api.resource("namespaces").update(ns)
    assert await gone(api, "team")


async def test_with_the_garbage_collector_in_the_same_manager(env: Env) -> None:
    api = env.api
    await fill(api, "team")
    web = await api.resource("deployments").get("web", "team")
    ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
           "uid": web["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
    await api.resource("configmaps").create({"metadata": {
        "name": "owned", "namespace": "team", "ownerReferences": [ref]}})
    m = Manager(api, [GarbageCollector(), NamespaceController()], clock=env.clock)
    task = asyncio.ensure_future(m.run())
    try:
        # Deleted in the foreground, the namespace waits for the collector as well.
        marked = await api.resource("namespaces").delete("team", propagation_policy="Foreground")
        assert marked["metadata"]["finalizers"] == ["foregroundDeletion"]
        await env.eventually(lambda: gone(api, "team"), "namespace removed")
        assert await content(api, "team") == []
    finally:
        task.cancel()
        await asyncio.wait({task})

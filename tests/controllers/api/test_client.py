"""The resource client against an embedded store: create, get, list, update, status, patch."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from controllers.api import (
    AlreadyExists,
    BadRequest,
    Clientset,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    ResourceClient,
)
from controllers.api.objects import decode
from kvstore.clock import FakeClock
from kvstore.mvcc.request import Compare, RequestOp
from kvstore.mvcc.types import TxnResult
from kvstore.node import Node
from tests.controllers.api.samples import deployment, pod


async def test_create_sets_metadata_and_get_reads_it_back(api: Clientset, kv: Node) -> None:
    created = await api.resource("deploy").create(deployment("web"))
    m = created["metadata"]
    assert m["namespace"] == "default"
    assert m["generation"] == 1
    assert m["creationTimestamp"] == "2023-11-14T22:13:20Z"
    assert len(m["uid"]) == 36 and m["uid"][14] == "4"
    entry = await kv.get("/registry/deployments/default/web")
    assert entry is not None and m["resourceVersion"] == str(entry.mod_revision)
    assert created["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == "25%"
    assert await api.resource("deployments.apps").get("web", "default") == created
    # The default namespace was created on demand.
    assert (await api.resource("ns").get("default"))["status"]["phase"] == "Active"


async def test_create_refuses_duplicates_and_bad_objects(api: Clientset) -> None:
    pods = api.resource("pods")
    await pods.create(pod("p"))
    with pytest.raises(AlreadyExists, match='pods "p" already exists'):
        await pods.create(pod("p"))
    bad = pod("Bad_Name")
    bad["spec"]["containers"] = []
    with pytest.raises(Invalid) as info:
        await pods.create(bad)
    assert info.value.fields() == ["metadata.name", "spec.containers"]
    with pytest.raises(BadRequest):
        await pods.create({**pod("q"), "kind": "Service"})
    with pytest.raises(BadRequest):
        await pods.create({**pod("q"), "metadata": {"name": "q", "resourceVersion": "3"}})
    with pytest.raises(NotFound):
        await pods.get("q")


async def test_generate_name_retries_on_collision(kv: Node, clock: FakeClock) -> None:
    first = ResourceClient(kv, "pods", clock=clock, rng=random.Random(1))
    p = pod("")
    p["metadata"] = {"generateName": "web-"}
    a = await first.create(p)
    assert a["metadata"]["name"].startswith("web-") and len(a["metadata"]["name"]) == 9
    # A second client with the same seed draws the same suffix first, and must retry.
    second = ResourceClient(kv, "pods", clock=clock, rng=random.Random(1))
    b = await second.create(p)
    assert b["metadata"]["name"] != a["metadata"]["name"]
    assert b["metadata"]["name"].startswith("web-")


async def test_namespace_must_exist_and_not_be_terminating(api: Clientset) -> None:
    pods, namespaces = api.resource("pods"), api.resource("ns")
    with pytest.raises(NotFound, match='namespaces "team" not found'):
        await pods.create(pod("p", namespace="team"))
    await namespaces.create({"metadata": {"name": "team"}})
    await pods.create(pod("p", namespace="team"))
    await pods.create(pod("s", namespace="kube-system"))
    await namespaces.delete("team")
    assert (await namespaces.get("team"))["status"]["phase"] == "Terminating"
    with pytest.raises(Forbidden, match="being terminated"):
        await pods.create(pod("q", namespace="team"))


def names(lst: dict[str, Any]) -> list[str]:
    return [i["metadata"]["name"] for i in lst["items"]]


async def test_list_with_selectors_all_namespaces_and_header_revision(api: Clientset, kv: Node
                                                                      ) -> None:
    pods = api.resource("pods")
    await api.resource("ns").create({"metadata": {"name": "other"}})
    await pods.create(pod("a", labels={"app": "web", "tier": "front"}))
    await pods.create(pod("b", labels={"app": "web", "tier": "db"}, nodeName="n1"))
    await pods.create(pod("c", labels={"app": "db"}))
    await pods.create(pod("d", labels={"app": "web"}, namespace="other"))
    everything = await pods.list()
    assert names(everything) == ["a", "b", "c", "d"]
    assert everything["kind"] == "PodList" and everything["apiVersion"] == "v1"
    assert everything["metadata"]["resourceVersion"] == str((await kv.status()).revision)
    assert names(await pods.list("default")) == ["a", "b", "c"]
    assert names(await pods.list(label_selector="app=web")) == ["a", "b", "d"]
    assert names(await pods.list("default", label_selector="app=web,tier!=db")) == ["a"]
    assert names(await pods.list(label_selector="tier in (db,front),app")) == ["a", "b"]
    assert names(await pods.list(field_selector="spec.nodeName=n1")) == ["b"]
    assert names(await pods.list(field_selector="metadata.namespace!=default")) == ["d"]
    with pytest.raises(BadRequest):
        await pods.list(label_selector="app in web")
    with pytest.raises(BadRequest):
        await pods.list(field_selector="spec.image=x")


async def test_pagination_is_one_snapshot(api: Clientset) -> None:
    cms = api.resource("cm")
    for i in range(7):
        await cms.create({"metadata": {"name": f"c{i}", "labels": {"odd": str(i % 2)}}})
    page = await cms.list(limit=3)
    assert [i["metadata"]["name"] for i in page["items"]] == ["c0", "c1", "c2"]
    assert page["metadata"]["remainingItemCount"] == 4
    rv = page["metadata"]["resourceVersion"]
    # Changes after the first page are not seen by the later pages.
    await cms.create({"metadata": {"name": "c35"}})
    await cms.delete("c5")
    seen = [i["metadata"]["name"] for i in page["items"]]
    while page["metadata"].get("continue"):
        page = await cms.list(limit=3, continue_token=page["metadata"]["continue"])
        assert page["metadata"]["resourceVersion"] == rv
        seen += [i["metadata"]["name"] for i in page["items"]]
    assert seen == [f"c{i}" for i in range(7)]
    # With a selector, each page holds up to `limit` matching items.
    odd = await cms.list(label_selector="odd=1", limit=2)
    assert [i["metadata"]["name"] for i in odd["items"]] == ["c1", "c3"]
    rest = await cms.list(label_selector="odd=1", limit=2, continue_token=odd["metadata"]["continue"])
    assert [i["metadata"]["name"] for i in rest["items"]] == []
    assert "continue" not in rest["metadata"]
    with pytest.raises(BadRequest):
        await cms.list(continue_token="not-a-token")


async def test_list_at_a_revision_and_gone_after_compaction(api: Clientset, kv: Node) -> None:
    cms = api.resource("cm")
    a = await cms.create({"metadata": {"name": "a"}})
    await cms.create({"metadata": {"name": "b"}})
    old = await cms.list(resource_version=a["metadata"]["resourceVersion"])
    assert [i["metadata"]["name"] for i in old["items"]] == ["a"]
    page = await cms.list(limit=1)
    await cms.create({"metadata": {"name": "c"}})
    await kv.compact((await kv.status()).revision)
    with pytest.raises(Gone, match="too old resource version"):
        await cms.list(limit=1, continue_token=page["metadata"]["continue"])
    with pytest.raises(Gone):
        await cms.list(resource_version=a["metadata"]["resourceVersion"])
    with pytest.raises(BadRequest):
        await cms.list(resource_version="10000")


async def test_update_cas_generation_and_status_rules(api: Clientset, kv: Node) -> None:
    deps = api.resource("deploy")
    d1 = await deps.create(deployment("web"))
    d1["spec"]["replicas"] = 3
    d1["status"] = {"replicas": 99}
    d1["metadata"]["labels"]["team"] = "a"
    d1["metadata"]["creationTimestamp"] = "1999-01-01T00:00:00Z"
    d2 = await deps.update(d1)
    assert d2["metadata"]["generation"] == 2
    assert "status" not in d2
    assert d2["metadata"]["creationTimestamp"] == "2023-11-14T22:13:20Z"
    assert int(d2["metadata"]["resourceVersion"]) > int(d1["metadata"]["resourceVersion"])
    # A stale resourceVersion is refused.
    with pytest.raises(Conflict):
        await deps.update(d1)
    # Label-only changes do not bump the generation; an update changing nothing writes nothing.
    d2["metadata"]["labels"]["team"] = "b"
    d3 = await deps.update(d2)
    assert d3["metadata"]["generation"] == 2
    before = (await kv.status()).revision
    d4 = await deps.update(d3)
    assert d4["metadata"]["resourceVersion"] == d3["metadata"]["resourceVersion"]
    # Key order does not count as a change; neither does leaving out server-set fields.
    reordered = {k: d3[k] for k in reversed(list(d3))}
    reordered["metadata"] = {k: v for k, v in reversed(list(d3["metadata"].items()))
                             if k not in ("uid", "generation")}
    assert (await deps.update(reordered))["metadata"] == d3["metadata"]
    assert (await kv.status()).revision == before
    # Immutable selector; missing resourceVersion; wrong uid; missing object.
    d4["spec"]["selector"] = {"matchLabels": {"app": "web", "x": "y"}}
    d4["spec"]["template"]["metadata"]["labels"]["x"] = "y"
    with pytest.raises(Invalid) as info:
        await deps.update(d4)
    assert info.value.fields() == ["spec.selector"]
    no_rv = await deps.get("web")
    del no_rv["metadata"]["resourceVersion"]
    with pytest.raises(Invalid):
        await deps.update(no_rv)
    wrong_uid = await deps.get("web")
    wrong_uid["metadata"]["uid"] = "other"
    with pytest.raises(Conflict, match="UID"):
        await deps.update(wrong_uid)
    ghost = await deps.get("web")
    ghost["metadata"]["name"] = "ghost"
    with pytest.raises(NotFound):
        await deps.update(ghost)


async def test_update_status_changes_only_status(api: Clientset) -> None:
    deps = api.resource("deploy")
    d = await deps.create(deployment("web"))
    d["status"] = {"replicas": 1, "readyReplicas": 1}
    d["spec"]["replicas"] = 5
    d["metadata"]["labels"]["ignored"] = "yes"
    s = await deps.update_status(d)
    assert s["status"] == {"replicas": 1, "readyReplicas": 1}
    assert s["spec"]["replicas"] == 1
    assert "ignored" not in s["metadata"]["labels"]
    assert s["metadata"]["generation"] == 1
    with pytest.raises(Conflict):
        await deps.update_status(d)
    with pytest.raises(BadRequest):
        await api.resource("cm").update_status({"metadata": {"name": "x", "resourceVersion": "1"}})
    # Pods validate their status phase.
    pods = api.resource("pods")
    p = await pods.create(pod("p"))
    assert p["status"]["phase"] == "Pending"
    p["status"]["phase"] = "Sleeping"
    with pytest.raises(Invalid):
        await pods.update_status(p)


async def test_merge_and_strategic_patch(api: Clientset) -> None:
    deps = api.resource("deploy")
    await deps.create(deployment("web"))
    out = await deps.patch("web", "default", {"spec": {"replicas": 4},
                                              "metadata": {"labels": {"tier": "front"}}})
    assert out["spec"]["replicas"] == 4 and out["metadata"]["generation"] == 2
    assert out["metadata"]["labels"] == {"app": "web", "tier": "front"}
    sidecar = {"spec": {"template": {"spec": {"containers": [{"name": "log", "image": "fluent:1"}]}}}}
    out = await deps.patch("web", "default", sidecar, "strategic")
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["web", "log"]
    assert out["spec"]["template"]["spec"]["containers"][1]["imagePullPolicy"] == "IfNotPresent"
    out = await deps.patch("web", "default", sidecar, "merge")
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["log"]
    out = await deps.patch("web", "default", {"status": {"replicas": 4}}, subresource="status")
    assert out["status"] == {"replicas": 4}
    with pytest.raises(BadRequest):
        await deps.patch("web", "default", {"spec": {}}, "json")
    with pytest.raises(BadRequest):
        await deps.patch("web", "default", {"metadata": {"name": "other"}})
    with pytest.raises(Conflict):
        await deps.patch("web", "default", {"metadata": {"resourceVersion": "1"}, "spec": {"paused": True}})
    with pytest.raises(Invalid):
        await deps.patch("web", "default", {"spec": {"replicas": -1}})
    with pytest.raises(NotFound):
        await deps.patch("nope", "default", {"spec": {"replicas": 1}})


class RacingKV:
    """A store wrapper that runs ``race`` just before the first ``txn`` that it sees."""

    def __init__(self, kv: Node, race: Callable[[], Awaitable[None]]) -> None:
        self.kv = kv
        self.race: Callable[[], Awaitable[None]] | None = race
        self.txns = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.kv, name)

    async def txn(self, compare: Sequence[Compare] = (), success: Sequence[RequestOp] = (),
                  failure: Sequence[RequestOp] = ()) -> TxnResult:
        self.txns += 1
        race, self.race = self.race, None
        if race is not None:
            await race()
        return await self.kv.txn(compare, success, failure)


async def test_patch_retries_after_a_concurrent_write(api: Clientset, kv: Node, clock: FakeClock
                                                      ) -> None:
    deps = api.resource("deploy")
    await deps.create(deployment("web"))

    async def other_writer() -> None:
        await deps.patch("web", "default", {"metadata": {"labels": {"other": "1"}}})

    racing = RacingKV(kv, other_writer)
    client = ResourceClient(racing, "deploy", clock=clock)
    out = await client.patch("web", "default", {"spec": {"replicas": 2}})
    assert out["spec"]["replicas"] == 2
    assert out["metadata"]["labels"]["other"] == "1"
    assert racing.txns == 2
    entry = await kv.get("/registry/deployments/default/web")
    assert entry is not None and decode(entry) == out

"""ControllerRevisions of a DaemonSet: pure helpers, and ``History`` against a real store."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import kvstore
from controllers.api import Clientset
from controllers.api.errors import AlreadyExists
from controllers.api.objects import Obj
from controllers.builtin.daemonset.history import (
    History,
    matches_template,
    new_revision,
    revision_hash,
    revision_number,
    revision_patch,
    revisions_to_trim,
    template_hash,
)
from controllers.builtin.daemonset.placement import CONTROLLER_REVISION_HASH_LABEL
from controllers.informers.store import freeze
from kvstore.clock import FakeClock as WallFakeClock
from kvstore.node import NodeOptions
from tests.controllers.builtin.test_daemonset_controller import T0, daemonset


def rev(name: str, number: int, hash_: str | None = None) -> Obj:
    labels = {} if hash_ is None else {CONTROLLER_REVISION_HASH_LABEL: hash_}
    return {"metadata": {"name": name, "labels": labels}, "revision": number}


def test_patch_replaces_the_whole_template_and_matches_only_it() -> None:
    ds = freeze(daemonset())
    patch = revision_patch(ds)
    assert patch == {"spec": {"template": {**daemonset()["spec"]["template"],
                                           "$patch": "replace"}}}
    assert matches_template(ds, {"data": patch})
    assert not matches_template(freeze(daemonset(image="agent:2")), {"data": patch})


def test_hash_depends_on_template_and_collision_count() -> None:
    plain = daemonset()
    bumped = {**daemonset(), "status": {"collisionCount": 1}}
    assert template_hash(plain) == template_hash(daemonset())
    assert template_hash(plain) != template_hash(daemonset(image="agent:2"))
    assert template_hash(plain) != template_hash(bumped)


def test_new_revision_is_named_labelled_and_owned() -> None:
    ds = daemonset()
    ds["metadata"].update(uid="u1", annotations={"note": "x"})
    made = new_revision(freeze(ds), 7)
    hash_ = template_hash(ds)
    assert made["metadata"]["name"] == f"agent-{hash_}"
    assert made["metadata"]["labels"] == {"app": "agent", CONTROLLER_REVISION_HASH_LABEL: hash_}
    assert made["metadata"]["annotations"] == {"note": "x"}
    assert made["metadata"]["ownerReferences"][0]["uid"] == "u1"
    assert made["revision"] == 7 and revision_number(made) == 7
    assert revision_hash(made) == hash_ and revision_hash(rev("plain", 1)) == "plain"


def test_trimming_drops_the_oldest_not_live_beyond_the_limit() -> None:
    old = [rev("r3", 3, "c"), rev("r1", 1, "a"), rev("r2", 2, "b"), rev("r4", 4, "d")]
    names = [r["metadata"]["name"] for r in revisions_to_trim(old, 2, set())]
    assert names == ["r1", "r2"]
    names = [r["metadata"]["name"] for r in revisions_to_trim(old, 2, {"a"})]
    assert names == ["r2", "r3"]
    assert revisions_to_trim(old, 10, set()) == []
    assert len(revisions_to_trim(old, 0, {"a", "b", "c"})) == 1


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Clientset]:
    async with kvstore.open(str(tmp_path / "s"),
                            options=NodeOptions(tick_interval=0.01, unsafe_no_fsync=True)) as n:
        clientset = Clientset(n, clock=WallFakeClock(T0), rng=random.Random(3))
        await clientset.ensure_default_namespaces()
        yield clientset


async def test_a_hash_collision_bumps_the_collision_count(api: Clientset) -> None:
    ds = await api.resource("daemonsets").create(daemonset())
    squatter = new_revision(await api.resource("daemonsets").create(daemonset("other")), 1)
    squatter["metadata"]["name"] = f"agent-{template_hash(ds)}"
    await api.resource("controllerrevisions").create(squatter)
    with pytest.raises(AlreadyExists):
        await History(api, ds).construct([], [])
    fresh = await api.resource("daemonsets").get("agent", "default")
    assert fresh["status"]["collisionCount"] == 1
    current, old = await History(api, fresh).construct([], [])
    assert current["metadata"]["name"] == f"agent-{template_hash(fresh)}" != squatter[
        "metadata"]["name"]
    assert current["revision"] == 1 and old == []
    # Made already (a retried sync): the existing revision is taken as is.
    again, _ = await History(api, fresh).construct([], [])
    assert again["metadata"]["uid"] == current["metadata"]["uid"]


async def test_duplicates_are_merged_into_the_newest(api: Clientset) -> None:
    ds = await api.resource("daemonsets").create(daemonset())
    client = api.resource("controllerrevisions")
    low = new_revision(ds, 1)
    low["metadata"]["name"] = "agent-low"
    high = new_revision(ds, 2)
    high["metadata"]["name"] = "agent-high"
    del high["metadata"]["labels"][CONTROLLER_REVISION_HASH_LABEL]
    older = new_revision(await api.resource("daemonsets").get("agent", "default"), 5)
    older["metadata"]["name"] = "agent-older"
    older["data"] = {"spec": {"template": {"$patch": "replace"}}}
    made = [await client.create(r) for r in (low, high, older)]
    pod = await api.resource("pods").create({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default",
                     "labels": {"app": "agent", CONTROLLER_REVISION_HASH_LABEL: "stale"}},
        "spec": {"containers": [{"name": "c", "image": "agent:1"}]}})
    current, old = await History(api, ds).construct(made, [pod])
    # The unlabelled one got its name as hash; it had the higher number, so it stays,
    # renumbered above the old revision; the pod follows it.
    assert current["metadata"]["name"] == "agent-high"
    assert current["metadata"]["labels"][CONTROLLER_REVISION_HASH_LABEL] == "agent-high"
    assert current["revision"] == 6
    assert [r["metadata"]["name"] for r in old] == ["agent-older"]
    names = sorted(r["metadata"]["name"] for r in (await client.list("default"))["items"])
    assert names == ["agent-high", "agent-older"]
    relabelled = await api.resource("pods").get("p", "default")
    assert relabelled["metadata"]["labels"][CONTROLLER_REVISION_HASH_LABEL] == "agent-high"
    assert await History(api, ds).cleanup(old, [relabelled]) == []

"""The ReplicaSet controller reads only its own pods and its namespace's orphans.

Pods are found through the pods informer's controller-uid index: a pod
controlled by anything else, or an orphan of another namespace, is never
claimed, counted or written, while orphans of the ReplicaSet's namespace are
still adopted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from controllers.api.objects import Obj
from controllers.api.selectors import LabelSelector
from controllers.builtin import replicaset as replicaset_module
from controllers.builtin.podutil import (
    ORPHAN_POD_INDEX_KEY,
    POD_CONTROLLER_UID_INDEX,
    orphan_pod_index_key,
    pod_controller_uid_index,
)
from controllers.informers.indexer import IndexFunc
from tests.controllers.builtin.support import eventually
from tests.controllers.builtin.test_replicaset import Env, env, pod, replicaset

__all__ = ["env"]  # the fixture, shared with the controller's main tests


def _owned(obj: Obj, uid: str, *, controller: bool = True) -> Obj:
    obj["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "someone", "uid": uid,
         "controller": controller, "blockOwnerDeletion": True}]
    return obj


def test_the_index_files_pods_under_their_controller_or_their_namespace_orphans() -> None:
    ours = _owned(pod("a", labels={}), "u-1")
    orphan = pod("b", labels={})
    not_controller = _owned(pod("c", labels={}), "u-2", controller=False)
    cluster_scoped: Obj = {"metadata": {"name": "d"}}
    assert pod_controller_uid_index(ours) == ["u-1"]
    assert pod_controller_uid_index(orphan) == [orphan_pod_index_key("default")]
    assert pod_controller_uid_index(not_controller) == [orphan_pod_index_key("default")]
    assert pod_controller_uid_index(cluster_scoped) == [orphan_pod_index_key("")]
    assert orphan_pod_index_key("default").startswith(ORPHAN_POD_INDEX_KEY)
    assert orphan_pod_index_key("a") != orphan_pod_index_key("b")


async def _converged(env: Env, uid: str, **status: Any) -> bool:
    found = await env.pods()
    mine = [p for p in found
            if (p["metadata"].get("ownerReferences") or [{}])[0].get("uid") == uid]
    current = await env.status()
    return len(mine) == status["replicas"] and all(current.get(k) == v
                                                   for k, v in status.items())


async def _scenario(env: Env, indexers: dict[str, IndexFunc] | None) -> None:
    pods = env.api.resource("pods")
    await env.api.resource("namespaces").create(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "elsewhere"}})
    # Matching labels, but controlled by another ReplicaSet: never web's.
    foreign = await pods.create(_owned(
        pod("foreign", labels={"app": "web", "tier": "fe"}, phase="Running", ready=True),
        "another-uid"))
    # A matching orphan of web's namespace: adopted.
    await pods.create(pod("orphan", labels={"app": "web", "tier": "fe"}, phase="Running",
                          ready=True))
    # A matching orphan of another namespace: never web's.
    stranger = pod("stranger", labels={"app": "web", "tier": "fe"})
    stranger["metadata"]["namespace"] = "elsewhere"
    stranger = await pods.create(stranger)
    controller = await env.start(pod_indexers=indexers)
    index = controller._pod_informer.indexer if controller._pod_informer else None
    assert index is not None and POD_CONTROLLER_UID_INDEX in index.get_indexers()
    rs = await env.api.resource("replicasets").create(replicaset(replicas=3))
    uid = rs["metadata"]["uid"]

    async def settled() -> bool:
        return await _converged(env, uid, replicas=3, fullyLabeledReplicas=3,
                                readyReplicas=1)
    await eventually(settled, "orphan adopted, two created, the others left alone")
    adopted = await pods.get("orphan", "default")
    assert adopted["metadata"]["ownerReferences"][0]["uid"] == uid
    for before in (foreign, stranger):
        meta = before["metadata"]
        after = await pods.get(meta["name"], meta["namespace"])
        assert after["metadata"]["resourceVersion"] == meta["resourceVersion"]
    # web's own pods are filed under its uid, and no orphan is left in default.
    assert len(index.by_index(POD_CONTROLLER_UID_INDEX, uid)) == 3
    assert index.index_keys(POD_CONTROLLER_UID_INDEX, orphan_pod_index_key("default")) == []
    assert index.index_keys(POD_CONTROLLER_UID_INDEX,
                            orphan_pod_index_key("elsewhere")) == ["elsewhere/stranger"]


async def test_only_own_pods_and_local_orphans_are_claimed(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: set[str] = set()
    decide = replicaset_module.claim_action

    def spying(pod: Mapping[str, Any], rs: Mapping[str, Any],
               selector: LabelSelector) -> replicaset_module.ClaimAction:
        seen.add(pod["metadata"]["name"])
        return decide(pod, rs, selector)
    monkeypatch.setattr(replicaset_module, "claim_action", spying)
    await _scenario(env, None)
    # A sync never even looks at someone else's pods.
    assert "orphan" in seen and not seen & {"foreign", "stranger"}


async def test_an_index_already_on_the_informer_is_reused(env: Env) -> None:
    await _scenario(env, {POD_CONTROLLER_UID_INDEX: pod_controller_uid_index})

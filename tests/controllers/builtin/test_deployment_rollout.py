"""Deployment scenarios on an embedded store, synced step by step: create, roll out, Recreate."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.api import Clientset
from controllers.api.objects import Obj
from controllers.builtin.deployment import (
    DESIRED_REPLICAS_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    POD_TEMPLATE_HASH_LABEL,
    REVISION_ANNOTATION,
    compute_hash,
)
from controllers.builtin.deployment.sizing import resolve_fenceposts
from controllers.builtin.podutil import owner_reference
from tests.controllers.builtin.test_deployment_harness import (
    Harness,
    RolloutWatcher,
    api,
    available,
    deployment,
    pods_available,
    replicas,
    template,
    total_replicas,
)

__all__ = ["api"]


def condition(d: Obj, type_: str) -> dict[str, Any]:
    for cond in d["status"].get("conditions", []):
        if cond["type"] == type_:
            return dict(cond)
    raise AssertionError(f"no {type_} condition in {d['status']}")


def new_image(image: str) -> Any:
    def change(d: Obj) -> None:
        d["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return change


async def test_create_makes_one_replicaset_for_the_template(api: Clientset) -> None:
    async with Harness(api) as h:
        d = await h.create(deployment(replicas=3, minReadySeconds=5,
                                      revisionHistoryLimit=4))
        d = await h.change(lambda d: d["metadata"].setdefault("annotations", {}).update(
            {"team": "web", "kubectl.kubernetes.io/last-applied-configuration": "{}"}))
        await h.converge()
        [rs] = await h.replicasets()
        pod_hash = compute_hash(d["spec"]["template"])
        assert rs["metadata"]["name"] == f"web-{pod_hash}"
        assert rs["metadata"]["labels"] == {"app": "web", POD_TEMPLATE_HASH_LABEL: pod_hash}
        assert rs["spec"]["selector"] == {"matchLabels": {"app": "web",
                                                          POD_TEMPLATE_HASH_LABEL: pod_hash}}
        assert rs["spec"]["template"]["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL] == pod_hash
        assert rs["metadata"]["ownerReferences"] == [owner_reference(d)]
        assert replicas(rs) == 3 and rs["spec"]["minReadySeconds"] == 5
        assert rs["metadata"]["annotations"] == {
            REVISION_ANNOTATION: "1", DESIRED_REPLICAS_ANNOTATION: "3",
            MAX_REPLICAS_ANNOTATION: "4", "team": "web"}
        d = await h.deployment()
        assert d["metadata"]["annotations"][REVISION_ANNOTATION] == "1"
        assert condition(d, "Progressing")["reason"] == "NewReplicaSetCreated"
        assert condition(d, "Available")["status"] == "False"

        await h.rollout()
        d = await h.deployment()
        status = {k: v for k, v in d["status"].items() if k != "conditions"}
        assert status == {"observedGeneration": d["metadata"]["generation"], "replicas": 3,
                          "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3,
                          "unavailableReplicas": 0}
        assert condition(d, "Available")["reason"] == "MinimumReplicasAvailable"
        progressing = condition(d, "Progressing")
        assert (progressing["status"], progressing["reason"]) == ("True",
                                                                  "NewReplicaSetAvailable")
        assert progressing["message"] == f'ReplicaSet "web-{pod_hash}" has successfully progressed.'
        events = [(e["reason"], e["message"]) for e in await h.events()]
        assert ("ScalingReplicaSet", f"Scaled up replica set web-{pod_hash} to 3") in events

        # A change of minReadySeconds reaches the ReplicaSet; nothing else moves.
        await h.change(lambda d: d["spec"].update(minReadySeconds=9))
        await h.converge()
        [rs] = await h.replicasets()
        assert rs["spec"]["minReadySeconds"] == 9 and replicas(rs) == 3


ROLLOUTS = [
    # replicas, maxSurge, maxUnavailable, pods made available per pass
    (10, "25%", "25%", 2),
    (10, 3, 2, 1),
    (5, 0, 1, 1),
    (5, 1, 0, 1),
    (4, "50%", "50%", 10),
    (3, "100%", 0, 3),
    (1, "25%", "25%", 1),
]


@pytest.mark.parametrize("size,surge,unavailable,pace", ROLLOUTS)
async def test_rolling_update_stays_within_surge_and_unavailability(
        api: Clientset, size: int, surge: Any, unavailable: Any, pace: int) -> None:
    most_surge, most_unavailable = resolve_fenceposts(surge, unavailable, size)
    async with Harness(api) as h, RolloutWatcher(api) as watcher:
        await h.create(deployment(replicas=size, surge=surge, unavailable=unavailable))
        await h.rollout()
        await watcher.caught_up()
        start = len(watcher.states)
        await h.change(new_image("nginx:2"))
        passes = await h.rollout(promote=lambda rs: pace)
        await watcher.caught_up()
        steps = watcher.states[start:]
        assert len(steps) >= 3
        for i, state in enumerate(steps):
            assert total_replicas(state) <= size + most_surge, (i, state)
            assert pods_available(state) >= size - most_unavailable, (i, state)
        # The rollout ended with every pod on the new template.
        old, new = sorted(await h.replicasets(), key=lambda rs: rs["metadata"]["annotations"][
            REVISION_ANNOTATION])
        assert (replicas(old), replicas(new), available(new)) == (0, size, size)
        assert new["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"
        assert new["metadata"]["annotations"][REVISION_ANNOTATION] == "2"
        d = await h.deployment()
        assert d["metadata"]["annotations"][REVISION_ANNOTATION] == "2"
        assert d["status"]["updatedReplicas"] == size and d["status"]["replicas"] == size
        assert condition(d, "Progressing")["reason"] == "NewReplicaSetAvailable"
        assert passes >= 1


async def test_a_new_template_mid_rollout_keeps_the_bounds(api: Clientset) -> None:
    # Rolling to nginx:2, then to nginx:3 before nginx:2 is done: three ReplicaSets at once.
    async with Harness(api) as h, RolloutWatcher(api) as watcher:
        await h.create(deployment(replicas=6, surge=2, unavailable=1))
        await h.rollout()
        await watcher.caught_up()
        start = len(watcher.states)
        await h.change(new_image("nginx:2"))
        for _ in range(2):
            await h.converge()
            await h.run_replicasets(lambda rs: 1)
        await h.converge()
        assert len([rs for rs in await h.replicasets() if replicas(rs) > 0]) == 2
        await h.change(new_image("nginx:3"))
        await h.rollout(promote=lambda rs: 1)
        await watcher.caught_up()
        assert max(len([rs for rs in state.values() if replicas(rs) > 0])
                   for state in watcher.states[start:]) == 3
        for i, state in enumerate(watcher.states[start:]):
            assert total_replicas(state) <= 6 + 2, (i, state)
            assert pods_available(state) >= 6 - 1, (i, state)
        latest = max(await h.replicasets(),
                     key=lambda rs: int(rs["metadata"]["annotations"][REVISION_ANNOTATION]))
        assert latest["metadata"]["annotations"][REVISION_ANNOTATION] == "3"
        assert (replicas(latest), available(latest)) == (6, 6)
        assert sum(replicas(rs) for rs in await h.replicasets()) == 6


async def test_rollout_grows_new_and_shrinks_old_in_kubernetes_steps(api: Clientset) -> None:
    # 10 replicas, surge 3, unavailable 2, the new pods never ready: the new ReplicaSet
    # takes the surge, the old gives up what unavailability allows, and there it stops.
    async with Harness(api) as h:
        await h.create(deployment(replicas=10, surge=3, unavailable=2))
        await h.rollout()
        await h.change(new_image("nginx:2"))
        await h.rollout(promote=lambda rs: rs["metadata"]["annotations"][
            REVISION_ANNOTATION] == "1")
        old, new = sorted(await h.replicasets(), key=lambda rs: rs["metadata"]["annotations"][
            REVISION_ANNOTATION])
        assert (replicas(old), replicas(new)) == (8, 5)
        d = await h.deployment()
        assert d["status"]["availableReplicas"] == 8 and d["status"]["unavailableReplicas"] == 5
        assert condition(d, "Available")["status"] == "True"
        events = [e["message"] for e in await h.events()]
        names = old["metadata"]["name"], new["metadata"]["name"]
        assert f"Scaled up replica set {names[1]} to 3" in events
        assert f"Scaled down replica set {names[0]} to 8" in events
        assert f"Scaled up replica set {names[1]} to 5" in events


async def test_unhealthy_old_replicas_are_removed_first(api: Clientset) -> None:
    async with Harness(api) as h:
        await h.create(deployment(replicas=4, surge=0, unavailable=1))
        await h.rollout(promote=lambda rs: 2)      # only 2 of 4 old pods ever available
        await h.change(new_image("nginx:2"))
        await h.converge()
        old, = [rs for rs in await h.replicasets()
                if rs["metadata"]["annotations"][REVISION_ANNOTATION] == "1"]
        # Budget: 4 pods - 3 minimum available - 0 new unavailable = 1; the unhealthy one goes.
        assert replicas(old) == 3


async def test_recreate_removes_every_old_pod_before_the_new_ones(api: Clientset) -> None:
    async with Harness(api) as h, RolloutWatcher(api) as watcher:
        await h.create(deployment(replicas=3, recreate=True))
        await h.rollout()
        [first] = await h.replicasets()
        pods = api.resource("pods")
        made = []
        for i in range(2):
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": f"old-{i}", "namespace": "default",
                                "labels": dict(first["spec"]["template"]["metadata"]["labels"]),
                                "ownerReferences": [owner_reference(first)]},
                   "spec": first["spec"]["template"]["spec"],
                   "status": {"phase": "Running"}}
            made.append(await pods.create(pod))
        await h.seen("pods", made[-1])

        await h.change(new_image("nginx:2"))
        await h.converge()
        [rs] = await h.replicasets()
        assert rs["metadata"]["uid"] == first["metadata"]["uid"] and replicas(rs) == 0
        # The old ReplicaSet reports no pods now, but two still run: no new ReplicaSet.
        await h.run_replicasets()
        await h.converge()
        assert len(await h.replicasets()) == 1
        d = await h.deployment()
        assert d["status"]["availableReplicas"] == 0
        assert condition(d, "Available")["status"] == "False"
        # A finished pod does not count; the last running one does.
        done = dict(made[0], status={"phase": "Succeeded"})
        await h.seen("pods", await pods.update_status(done))
        await h.converge()
        assert len(await h.replicasets()) == 1

        h.queued.clear()
        await h.seen("pods", await pods.delete("old-1", "default"))
        await h.handlers_idle()
        assert h.queued == []                     # a pod is left: nothing to do yet
        await h.seen("pods", await pods.delete("old-0", "default"))
        await h.handlers_idle()
        assert "default/web" in h.queued          # the last pod's deletion brings it back
        await h.rollout()
        old, new = sorted(await h.replicasets(), key=lambda rs: rs["metadata"]["annotations"][
            REVISION_ANNOTATION])
        assert (replicas(old), replicas(new), available(new)) == (0, 3, 3)
        await watcher.caught_up()
        # Never both at once: once the new ReplicaSet asks for pods, the old asks for none.
        for state in watcher.states:
            active = [rs for rs in state.values() if replicas(rs) > 0]
            assert len(active) <= 1, state


async def test_template_with_collision_gets_a_new_name(api: Clientset) -> None:
    async with Harness(api) as h:
        body = deployment(replicas=2)
        d = await h.create(body)
        pod_hash = compute_hash(d["spec"]["template"])
        # Someone else's ReplicaSet holds the name (labels the Deployment does not select).
        squatter = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {"name": f"web-{pod_hash}", "namespace": "default"},
                    "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "other"}},
                             "template": template(app="other")}}
        await h.seen("replicasets", await api.resource("replicasets").create(squatter))
        result = await h.sync()
        assert result is not None and result.requeue
        d = await h.deployment()
        assert d["status"]["collisionCount"] == 1
        await h.converge()
        names = sorted(rs["metadata"]["name"] for rs in await h.replicasets())
        other = f"web-{compute_hash(d['spec']['template'], 1)}"
        assert names == sorted([f"web-{pod_hash}", other])
        await h.rollout()
        d = await h.deployment()
        assert d["status"]["availableReplicas"] == 2 and d["status"]["collisionCount"] == 1


async def test_orphans_are_adopted_and_strays_released(api: Clientset) -> None:
    async with Harness(api) as h:
        d = await h.create(deployment(replicas=2))
        pod_hash = compute_hash(d["spec"]["template"])
        orphan: Obj = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                       "metadata": {"name": "web-orphan", "namespace": "default",
                                    "labels": {"app": "web",
                                               POD_TEMPLATE_HASH_LABEL: "orphan"}},
                       "spec": {"replicas": 1,
                                "selector": {"matchLabels": {"app": "web",
                                                             POD_TEMPLATE_HASH_LABEL: "orphan"}},
                                "template": template("nginx:0")}}
        orphan["spec"]["template"]["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL] = "orphan"
        await h.seen("replicasets", await api.resource("replicasets").create(orphan))
        await h.rollout()
        by_name = {rs["metadata"]["name"]: rs for rs in await h.replicasets()}
        adopted = by_name["web-orphan"]
        assert adopted["metadata"]["ownerReferences"] == [owner_reference(d)]
        assert replicas(adopted) == 0 and replicas(by_name[f"web-{pod_hash}"]) == 2

        # Its labels changed so the Deployment no longer selects it: released.
        adopted["metadata"]["labels"] = {"app": "elsewhere"}
        await h.seen("replicasets", await api.resource("replicasets").update(adopted))
        await h.converge()
        released = await api.resource("replicasets").get("web-orphan", "default")
        assert not released["metadata"].get("ownerReferences")

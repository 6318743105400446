"""Deployment scenarios, synced step by step: scaling, history, rollback, pause, progress deadline."""

from __future__ import annotations

from typing import Any

from controllers.api import Clientset
from controllers.api.objects import Obj, format_timestamp
from controllers.builtin.deployment import (
    DESIRED_REPLICAS_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
)
from controllers.controller import DONE
from controllers.informers.store import thaw
from tests.controllers.builtin.test_deployment_harness import (
    WALL_START,
    Harness,
    api,
    available,
    deployment,
    replicas,
)
from tests.controllers.builtin.test_deployment_rollout import condition, new_image

__all__ = ["api"]


def revision_of(rs: Obj) -> int:
    return int(rs["metadata"]["annotations"][REVISION_ANNOTATION])


async def by_revision(h: Harness) -> list[Obj]:
    return sorted(await h.replicasets(), key=revision_of)


async def test_scaling_mid_rollout_is_proportional(api: Clientset) -> None:
    async with Harness(api) as h:
        await h.create(deployment(replicas=10, surge=3, unavailable=2))
        await h.rollout()
        await h.change(new_image("nginx:broken"))

        def never_ready(rs: Obj) -> bool:
            return revision_of(rs) == 1
        await h.rollout(promote=never_ready)
        old, new = await by_revision(h)
        assert (replicas(old), replicas(new)) == (8, 5)

        # Scaled to 15 while stuck: the 5 new places are shared 3 / 2, as Kubernetes does.
        await h.change(lambda d: d["spec"].update(replicas=15))
        await h.rollout(promote=never_ready)
        old, new = await by_revision(h)
        assert (replicas(old), replicas(new)) == (11, 7)
        for rs in (old, new):
            notes = rs["metadata"]["annotations"]
            assert (notes[DESIRED_REPLICAS_ANNOTATION], notes[MAX_REPLICAS_ANNOTATION]) == \
                ("15", "18")
        events = [e["message"] for e in await h.events()]
        assert f"Scaled up replica set {old['metadata']['name']} to 11" in events

        # Back down to 10: shared the same way.
        await h.change(lambda d: d["spec"].update(replicas=10))
        await h.rollout(promote=never_ready)
        old, new = await by_revision(h)
        assert (replicas(old), replicas(new)) == (8, 5)

        # The new pods come up: the rollout completes at the new size.
        await h.rollout()
        old, new = await by_revision(h)
        assert (replicas(old), replicas(new), available(new)) == (0, 10, 10)


async def test_scaling_a_settled_deployment_resizes_its_replicaset(api: Clientset) -> None:
    async with Harness(api) as h:
        await h.create(deployment(replicas=2))
        await h.rollout()
        await h.change(lambda d: d["spec"].update(replicas=5))
        await h.rollout()
        [rs] = await h.replicasets()
        assert replicas(rs) == 5
        assert rs["metadata"]["annotations"][DESIRED_REPLICAS_ANNOTATION] == "5"
        await h.change(lambda d: d["spec"].update(replicas=0))
        await h.rollout()
        [rs] = await h.replicasets()
        d = await h.deployment()
        assert replicas(rs) == 0 and d["status"]["replicas"] == 0
        assert condition(d, "Available")["status"] == "True"
        events = [e["message"] for e in await h.events()]
        assert f"Scaled down replica set {rs['metadata']['name']} to 0" in events


async def test_old_replicasets_beyond_the_history_limit_are_deleted(api: Clientset) -> None:
    async with Harness(api) as h:
        await h.create(deployment(replicas=2, revisionHistoryLimit=2))
        await h.rollout()
        for version in range(2, 6):
            await h.change(new_image(f"nginx:{version}"))
            await h.rollout()
        remaining = await by_revision(h)
        # The newest plus the two most recent old ones; the oldest went first.
        assert [revision_of(rs) for rs in remaining] == [3, 4, 5]
        assert [replicas(rs) for rs in remaining] == [0, 0, 2]
        images = [rs["spec"]["template"]["spec"]["containers"][0]["image"] for rs in remaining]
        assert images == ["nginx:3", "nginx:4", "nginx:5"]

        # A limit of 0 keeps no old ReplicaSet at all.
        await h.change(lambda d: d["spec"].update(revisionHistoryLimit=0))
        await h.rollout()
        assert [revision_of(rs) for rs in await h.replicasets()] == [5]


async def test_old_replicasets_still_running_are_kept_beyond_the_limit(api: Clientset) -> None:
    async with Harness(api) as h:
        await h.create(deployment(replicas=2, surge=1, unavailable=0, revisionHistoryLimit=0))
        await h.rollout()
        await h.change(new_image("nginx:2"))
        await h.rollout(promote=lambda rs: revision_of(rs) == 1)
        # Stuck mid-rollout: the old ReplicaSet still runs pods, so it stays.
        assert [replicas(rs) for rs in await by_revision(h)] == [2, 1]
        await h.rollout()
        assert [revision_of(rs) for rs in await h.replicasets()] == [2]


async def test_rollback_by_template_reuses_the_old_replicaset(api: Clientset) -> None:
    async with Harness(api) as h:
        await h.create(deployment(replicas=3))
        await h.rollout()
        [first] = await h.replicasets()
        await h.change(new_image("nginx:2"))
        await h.rollout()
        assert len(await h.replicasets()) == 2

        # What the CLI does for "rollout undo": copy revision 1's template back.
        def back_to_first(d: Obj) -> None:
            old = thaw(first["spec"]["template"])
            old["metadata"]["labels"].pop("pod-template-hash")
            d["spec"]["template"] = old
        await h.change(back_to_first)
        await h.rollout()
        replicasets = await by_revision(h)
        assert len(replicasets) == 2                   # no third ReplicaSet
        second, reused = replicasets
        assert reused["metadata"]["uid"] == first["metadata"]["uid"]
        notes = reused["metadata"]["annotations"]
        assert (notes[REVISION_ANNOTATION], notes[REVISION_HISTORY_ANNOTATION]) == ("3", "1")
        assert (replicas(reused), replicas(second)) == (3, 0)
        d = await h.deployment()
        assert d["metadata"]["annotations"][REVISION_ANNOTATION] == "3"
        assert condition(d, "Progressing")["reason"] == "NewReplicaSetAvailable"

        # And forward again: revision 2's ReplicaSet becomes revision 4.
        await h.change(new_image("nginx:2"))
        await h.rollout()
        latest = (await by_revision(h))[-1]
        assert latest["metadata"]["uid"] == second["metadata"]["uid"]
        notes = latest["metadata"]["annotations"]
        assert (notes[REVISION_ANNOTATION], notes[REVISION_HISTORY_ANNOTATION]) == ("4", "2")


async def test_pause_stops_rollouts_but_not_scaling(api: Clientset) -> None:
    async with Harness(api) as h:
        await h.create(deployment(replicas=2))
        await h.rollout()
        await h.change(lambda d: d["spec"].update(paused=True))
        await h.rollout()
        d = await h.deployment()
        paused = condition(d, "Progressing")
        assert (paused["status"], paused["reason"], paused["message"]) == (
            "Unknown", "DeploymentPaused", "Deployment is paused")

        await h.change(new_image("nginx:2"))
        await h.rollout()
        [rs] = await h.replicasets()                   # no new ReplicaSet while paused
        assert rs["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1"
        await h.change(lambda d: d["spec"].update(replicas=4))
        await h.rollout()
        [rs] = await h.replicasets()
        assert replicas(rs) == 4                       # scaling still applies
        d = await h.deployment()
        assert condition(d, "Progressing")["reason"] == "DeploymentPaused"

        await h.change(lambda d: d["spec"].update(paused=False))
        await h.sync()
        d = await h.deployment()
        assert condition(d, "Progressing")["reason"] == "NewReplicaSetCreated"
        await h.rollout()
        old, new = await by_revision(h)
        assert (replicas(old), replicas(new), available(new)) == (0, 4, 4)
        assert new["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"
        d = await h.deployment()
        assert condition(d, "Progressing")["reason"] == "NewReplicaSetAvailable"


async def test_resuming_records_the_resume_before_the_rollout(api: Clientset) -> None:
    async with Harness(api) as h:
        await h.create(deployment(replicas=1, paused=True))
        await h.converge()
        assert await h.replicasets() == []             # paused from the start: nothing yet
        resumed = await h.change(lambda d: d["spec"].update(paused=False))
        async with await api.resource("deployments").watch(
                "default", resource_version=resumed["metadata"]["resourceVersion"]) as watch:
            await h.converge()
            final = await h.deployment()
            reasons: list[str] = []
            async for ev in watch:
                if ev.type == "MODIFIED":
                    reason = condition(ev.object, "Progressing")["reason"]
                    if not reasons or reasons[-1] != reason:
                        reasons.append(reason)
                if ev.resource_version == final["metadata"]["resourceVersion"]:
                    break
        assert reasons[:2] == ["DeploymentResumed", "NewReplicaSetCreated"]
        assert len(await h.replicasets()) == 1


async def test_progress_deadline_exceeded_on_the_wall_clock(api: Clientset) -> None:
    async with Harness(api) as h:
        await h.create(deployment(replicas=2, progressDeadlineSeconds=60))
        await h.rollout()
        h.wall.advance(100)
        await h.change(new_image("nginx:broken"))
        await h.rollout(promote=lambda rs: revision_of(rs) == 1)
        result = await h.converge()
        d = await h.deployment()
        progressing = condition(d, "Progressing")
        assert progressing["reason"] == "ReplicaSetUpdated"
        assert progressing["lastUpdateTime"] == format_timestamp(WALL_START + 100)
        # No progress: look again once the deadline has passed.
        assert result is not None and result.requeue_after == 61

        h.wall.advance(30)
        result = await h.converge()
        assert result is not None and result.requeue_after == 31
        assert condition(await h.deployment(), "Progressing")["status"] == "True"

        h.wall.advance(31)
        await h.converge()
        d = await h.deployment()
        timed_out = condition(d, "Progressing")
        assert (timed_out["status"], timed_out["reason"]) == ("False",
                                                              "ProgressDeadlineExceeded")
        assert timed_out["lastTransitionTime"] == format_timestamp(WALL_START + 161)
        new = (await by_revision(h))[-1]
        assert timed_out["message"] == \
            f'ReplicaSet "{new["metadata"]["name"]}" has timed out progressing.'
        assert (await h.converge()) == DONE            # nothing more to wait for

        # Progress after all: the condition comes back to True.
        h.wall.advance(5)
        await h.rollout()
        d = await h.deployment()
        assert condition(d, "Progressing")["reason"] == "NewReplicaSetAvailable"


def _status_of(d: Obj) -> dict[str, Any]:
    return {k: v for k, v in d["status"].items() if k != "conditions"}


async def test_a_deployment_being_deleted_only_gets_its_status(api: Clientset) -> None:
    async with Harness(api) as h:
        await h.create(deployment(replicas=2))
        await h.rollout()
        await h.change(lambda d: d["metadata"].update(finalizers=["example.com/hold"]))
        deleted = await api.resource("deployments").delete("web", "default")
        await h.seen("deployments", deleted)
        await h.change(lambda d: d["spec"].update(replicas=5))
        [rs] = await h.replicasets()
        await h.seen("replicasets", await api.resource("replicasets").update_status(
            {**rs, "status": {**rs["status"], "availableReplicas": 1, "readyReplicas": 1}}))
        await h.converge()
        [after] = await h.replicasets()
        assert replicas(after) == 2
        d = await h.deployment()
        assert d["metadata"].get("deletionTimestamp")
        assert _status_of(d)["availableReplicas"] == 1

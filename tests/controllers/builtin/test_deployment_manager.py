"""The Deployment controller under a Manager, with a stand-in for the ReplicaSet controller.

Here the controller's own event handlers decide when it syncs: informer
events, requeues after a conflict, and the requeue that waits for a
progress deadline. Queue time runs on a ``FakeClock`` moved by the test
(a little on each poll, so rate-limited retries happen), and the wall
clock only when the test says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Self

from controllers.api import Clientset
from controllers.api.errors import Conflict, NotFound
from controllers.api.objects import Obj
from controllers.builtin.deployment import REVISION_ANNOTATION, DeploymentController
from controllers.clock import FakeClock
from controllers.controller import DONE, REQUEUE, ControllerContext, Result
from controllers.informers import DeletedFinalStateUnknown, ResourceEventHandlerFuncs
from controllers.informers.store import thaw
from controllers.manager import Manager
from kvstore.clock import FakeClock as WallFakeClock
from tests.controllers.builtin.test_deployment_harness import DEADLINE, api, deployment
from tests.controllers.builtin.test_deployment_rollout import condition, new_image

__all__ = ["api"]


class ReplicaSetStandIn:
    """Makes each ReplicaSet's status follow its spec; pods of ``stuck`` images never get ready."""

    name = "replicaset-stand-in"
    informers: Sequence[str] = ("replicasets",)

    def __init__(self, stuck: Sequence[str] = ()) -> None:
        self.stuck = list(stuck)
        self._context: ControllerContext | None = None

    def setup(self, context: ControllerContext) -> None:
        self._context = context

        def enqueue(obj: Any, *_: Any) -> None:
            obj = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
            context.enqueue(f"{obj['metadata']['namespace']}/{obj['metadata']['name']}")

        context.informer("replicasets").add_event_handler(ResourceEventHandlerFuncs(
            add=enqueue, update=lambda old, new: enqueue(new)))

    async def reconcile(self, key: str) -> Result | None:
        if self._context is None:
            raise RuntimeError("reconcile before setup")
        namespace, _, name = key.partition("/")
        try:
            rs: Obj = thaw(self._context.informer("replicasets").lister().get(namespace, name))
        except NotFound:
            return DONE
        want = rs["spec"]["replicas"]
        status = rs.get("status") or {}
        image = rs["spec"]["template"]["spec"]["containers"][0]["image"]
        ready = min(want, status.get("availableReplicas") or 0) if image in self.stuck else want
        goal = {"replicas": want, "readyReplicas": ready, "availableReplicas": ready,
                "observedGeneration": rs["metadata"]["generation"]}
        if {k: status.get(k) for k in goal} == goal:
            return DONE
        rs["status"] = {**status, **goal}
        try:
            await self._context.clientset.resource("replicasets").update_status(rs)
        except (Conflict, NotFound):
            return REQUEUE
        return DONE


class Running:
    """A manager running both controllers, its queue clock moved by ``eventually``."""

    def __init__(self, api: Clientset, stand_in: ReplicaSetStandIn) -> None:
        self.api = api
        self.clock = FakeClock()
        wall = api.clock
        if not isinstance(wall, WallFakeClock):
            raise TypeError("these tests need a clientset on a fake wall clock")
        self.wall = wall
        self.manager = Manager(api, [DeploymentController(), stand_in], clock=self.clock)
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self.task = asyncio.ensure_future(self.manager.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.wait({self.task})

    async def eventually(self, check: Callable[[], Awaitable[bool]], what: str) -> None:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + DEADLINE
        while not await check():
            if loop.time() > give_up:
                raise AssertionError(f"never happened: {what}")
            self.clock.advance(0.01)
            await asyncio.sleep(0.01)

    def advance(self, seconds: float) -> None:
        """Move the wall clock and the queues' clock together."""
        self.wall.advance(seconds)
        self.clock.advance(seconds)


async def get(api: Clientset) -> Obj:
    return await api.resource("deployments").get("web", "default")


async def replicasets(api: Clientset) -> list[Obj]:
    found = await api.resource("replicasets").list("default")
    return sorted(found["items"],
                  key=lambda rs: int(rs["metadata"]["annotations"][REVISION_ANNOTATION]))


def progressing_reason(d: Obj) -> str:
    return str(condition(d, "Progressing")["reason"]) if d.get("status") else ""


async def test_create_and_roll_out_under_a_manager(api: Clientset) -> None:
    async with Running(api, ReplicaSetStandIn()) as running:
        await api.resource("deployments").create(deployment(replicas=4))

        async def complete(revision: str) -> bool:
            d = await get(api)
            return (d["metadata"].get("annotations", {}).get(REVISION_ANNOTATION) == revision
                    and d.get("status", {}).get("observedGeneration") ==
                    d["metadata"]["generation"]
                    and d["status"].get("updatedReplicas") == 4
                    and d["status"].get("availableReplicas") == 4
                    and d["status"].get("replicas") == 4
                    and progressing_reason(d) == "NewReplicaSetAvailable")

        await running.eventually(lambda: complete("1"), "the first rollout")
        d = await get(api)
        await api.resource("deployments").update(
            {**d, "spec": {**d["spec"], "template": {
                **d["spec"]["template"], "spec": {
                    **d["spec"]["template"]["spec"],
                    "containers": [{"name": "main", "image": "nginx:2"}]}}}})
        await running.eventually(lambda: complete("2"), "the second rollout")
        old, new = await replicasets(api)
        assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, 4)

        async def scaling_events() -> bool:
            events = (await api.resource("events").list("default"))["items"]
            return any(e["reason"] == "ScalingReplicaSet" and e["message"] ==
                       f"Scaled down replica set {old['metadata']['name']} to 0"
                       for e in events)
        await running.eventually(scaling_events, "ScalingReplicaSet events")


async def test_progress_deadline_through_the_requeue(api: Clientset) -> None:
    async with Running(api, ReplicaSetStandIn(stuck=["nginx:broken"])) as running:
        await api.resource("deployments").create(
            deployment(replicas=4, progressDeadlineSeconds=30))

        async def reason_is(reason: str) -> bool:
            return progressing_reason(await get(api)) == reason

        await running.eventually(lambda: reason_is("NewReplicaSetAvailable"), "first rollout")
        d = await get(api)
        new_image("nginx:broken")(d)
        await api.resource("deployments").update(d)

        async def stuck() -> bool:
            found = await replicasets(api)
            d = await get(api)
            return (len(found) == 2 and [rs["spec"]["replicas"] for rs in found] == [3, 2]
                    and d["status"].get("updatedReplicas") == 2
                    and progressing_reason(d) == "ReplicaSetUpdated")
        await running.eventually(stuck, "the rollout stuck at 3 old + 2 new")

        # Nothing happens until the deadline passes on the wall clock; then the
        # requeue the controller asked for finds it exceeded.
        running.advance(20)
        await asyncio.sleep(0.05)
        assert await reason_is("ReplicaSetUpdated")
        running.advance(12)
        await running.eventually(lambda: reason_is("ProgressDeadlineExceeded"),
                                 "the deadline exceeded")
        d = await get(api)
        assert condition(d, "Progressing")["status"] == "False"
        assert condition(d, "Available")["status"] == "True"

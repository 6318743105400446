"""The Job controller under a Manager, on an embedded one-member store.

Time is fake: ``Env.advance`` moves the manager's clock (queues, requeues)
and the clientset's wall clock (timestamps) together. No kubelet runs: the
tests play it, setting pod phases and restart counts by hand. Informers
hand out frozen objects, so a mutation of a cached object fails loudly.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import kvstore
from controllers.api import Clientset
from controllers.api.errors import Invalid, NotFound
from controllers.api.objects import Obj, format_timestamp
from controllers.builtin.job import COMPLETION_INDEX_ENV, JobController, indexed_pod_generate_name
from controllers.builtin.job_state import COMPLETION_INDEX
from controllers.clock import FakeClock
from controllers.controller import Controller
from controllers.informers.reflector import ListWatch
from controllers.informers.shared_informer import SharedInformer
from controllers.manager import Manager
from kvstore.clock import FakeClock as WallFakeClock
from kvstore.node import NodeOptions
from tests.controllers.builtin.support import GatedListWatch, eventually

T0 = 1_700_000_000.0


async def settle() -> None:
    """Let the manager run what is runnable now (a short real pause; nothing is timed)."""
    for _ in range(20):
        await asyncio.sleep(0.005)


class Env:
    """A store, fake clocks, and a running manager with one controller."""

    def __init__(self, api: Clientset, wall: WallFakeClock) -> None:
        self.api = api
        self.wall = wall
        self.clock = FakeClock()
        self.gated: dict[str, GatedListWatch] = {}
        self.task: asyncio.Task[None] | None = None

    def advance(self, seconds: float) -> None:
        self.wall.advance(seconds)
        self.clock.advance(seconds)

    async def start(self, controller: Controller) -> None:
        informers: dict[str, SharedInformer] = {}
        for resource in controller.informers:
            self.gated[resource] = GatedListWatch(ListWatch(self.api.resource(resource)))
            informers[resource] = SharedInformer(self.gated[resource], clock=self.clock,
                                                 freeze_objects=True, resource=resource)
        manager = Manager(self.api, [controller], clock=self.clock, cache_sync_poll=0.01,
                          informer_factory=informers.__getitem__)
        self.task = asyncio.ensure_future(manager.run())
        await eventually(lambda: all(i.has_synced() for i in informers.values()), "sync")
        self.advance(0.05)  # the workers start on the next cache-sync poll

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.wait({self.task})

    async def get(self, resource: str, name: str) -> Obj:
        return await self.api.resource(resource).get(name, "default")

    async def exists(self, resource: str, name: str) -> bool:
        try:
            await self.get(resource, name)
        except NotFound:
            return False
        return True

    async def pods(self, *, active_only: bool = True) -> list[Obj]:
        items = (await self.api.resource("pods").list("default"))["items"]
        if active_only:
            items = [p for p in items if not p["metadata"].get("deletionTimestamp")
                     and p["status"].get("phase") not in ("Succeeded", "Failed")]
        return sorted(items, key=lambda p: p["metadata"]["name"])

    async def events(self, reason: str) -> list[Obj]:
        items = (await self.api.resource("events").list("default"))["items"]
        return [e for e in items if e["reason"] == reason]

    async def finish(self, pod: Obj, phase: str, *, restarts: int = 0) -> None:
        """Play the kubelet: the pod's container ended (or restarted ``restarts`` times)."""
        body = await self.api.resource("pods").get(pod["metadata"]["name"], "default")
        state: Obj = {}
        if phase in ("Succeeded", "Failed"):
            state = {"terminated": {"exitCode": 0 if phase == "Succeeded" else 1,
                                    "finishedAt": format_timestamp(self.wall.now())}}
        body["status"] = {"phase": phase, "containerStatuses": [
            {"name": "c", "restartCount": restarts, "state": state}]}
        await self.api.resource("pods").update_status(body)


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


def job(name: str = "pi", *, completions: int | None = 1, parallelism: int | None = 1,
        indexed: bool = False, backoff_limit: int | None = None, restart: str = "Never",
        deadline: int | None = None, ttl: int | None = None, suspend: bool = False) -> Obj:
    spec: Obj = {"template": {"metadata": {"labels": {"app": name}},
                              "spec": {"restartPolicy": restart,
                                       "containers": [{"name": "c", "image": "busybox"}]}},
                 "suspend": suspend}
    for key, value in (("completions", completions), ("parallelism", parallelism),
                       ("backoffLimit", backoff_limit), ("activeDeadlineSeconds", deadline),
                       ("ttlSecondsAfterFinished", ttl)):
        if value is not None:
            spec[key] = value
    if indexed:
        spec["completionMode"] = "Indexed"
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


async def status(env: Env, name: str = "pi") -> Obj:
    return dict((await env.get("jobs", name)).get("status") or {})


def condition(st: Obj, type_: str) -> Obj | None:
    for c in st.get("conditions") or ():
        if c["type"] == type_:
            return dict(c)
    return None


async def active_count(env: Env, n: int, name: str = "pi") -> None:
    async def check() -> bool:
        return len(await env.pods()) == n and (await status(env, name)).get("active") == n
    await eventually(check, f"{n} active pods")


async def start_job(env: Env, body: Obj) -> Obj:
    await env.start(JobController())
    return await env.api.resource("jobs").create(body)


def index_of(pod: Obj) -> int:
    return int(pod["metadata"]["annotations"][COMPLETION_INDEX])


# -- scenarios ---------------------------------------------------------------------------------
async def test_non_indexed_runs_completions_with_parallelism(env: Env) -> None:
    created = await start_job(env, job(completions=3, parallelism=2))
    uid = created["metadata"]["uid"]
    await active_count(env, 2)
    pods = await env.pods()
    for p in pods:
        m = p["metadata"]
        assert m["name"].startswith("pi-")
        assert m["labels"] == {"app": "pi", "controller-uid": uid, "job-name": "pi",
                               "batch.kubernetes.io/controller-uid": uid,
                               "batch.kubernetes.io/job-name": "pi"}
        assert m["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "Job", "name": "pi",
                                         "uid": uid, "controller": True,
                                         "blockOwnerDeletion": True}]
    assert created["spec"]["selector"] == {
        "matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    st = await status(env)
    assert st["startTime"] == format_timestamp(T0)
    assert (st["succeeded"], st["failed"], st["ready"]) == (0, 0, 0)

    await env.finish(pods[0], "Succeeded")

    async def second_round() -> bool:
        s = await status(env)
        return s.get("succeeded") == 1 and s.get("active") == 2 and len(await env.pods()) == 2
    await eventually(second_round, "a third pod after one success")
    # Only one more is needed now: the next success leaves one running, no new pod.
    running = await env.pods()
    await env.finish(running[0], "Succeeded")

    async def one_left() -> bool:
        s = await status(env)
        return s.get("succeeded") == 2 and s.get("active") == 1
    await eventually(one_left, "one pod left")
    assert len(await env.pods()) == 1
    env.advance(30)
    await env.finish((await env.pods())[0], "Succeeded")

    async def complete() -> bool:
        return condition(await status(env), "Complete") is not None
    await eventually(complete, "Complete")
    st = await status(env)
    assert (st["succeeded"], st["active"], st["failed"]) == (3, 0, 0)
    assert st["completionTime"] == format_timestamp(T0 + 30)
    cond = condition(st, "Complete")
    assert cond is not None and cond["status"] == "True"
    assert cond["reason"] == "CompletionsReached"
    assert condition(st, "Failed") is None

    async def completed_event() -> bool:
        return [e["message"] for e in await env.events("Completed")] == ["Job completed"]
    await eventually(completed_event, "Completed event")
    assert len(await env.events("SuccessfulCreate")) == 3


async def test_indexed_job_gives_each_pod_its_index(env: Env) -> None:
    await start_job(env, job(completions=3, parallelism=2, indexed=True))
    await active_count(env, 2)
    pods = await env.pods()
    assert sorted(index_of(p) for p in pods) == [0, 1]
    for p in pods:
        i = index_of(p)
        assert p["metadata"]["labels"][COMPLETION_INDEX] == str(i)
        assert p["spec"]["hostname"] == f"pi-{i}"
        name = p["metadata"]["name"]
        assert name.startswith(f"pi-{i}-") and len(name) == len(f"pi-{i}-") + 5
        assert {"name": COMPLETION_INDEX_ENV, "value": str(i)} in \
            p["spec"]["containers"][0]["env"]
    first = next(p for p in pods if index_of(p) == 0)
    await env.finish(first, "Succeeded")

    async def index_two_started() -> bool:
        return sorted(index_of(p) for p in await env.pods()) == [1, 2]
    await eventually(index_two_started, "index 2 started")
    await eventually(lambda: _completed_indexes(env, "0"), "completedIndexes 0")
    # A failed index is retried with the same index.
    one = next(p for p in await env.pods() if index_of(p) == 1)
    await env.finish(one, "Failed")
    env.advance(10)

    async def index_one_again() -> bool:
        pods = await env.pods()
        return sorted(index_of(p) for p in pods) == [1, 2] and \
            one["metadata"]["name"] not in [p["metadata"]["name"] for p in pods]
    await eventually(index_one_again, "index 1 recreated after the back-off")
    for p in await env.pods():
        await env.finish(p, "Succeeded")

    async def complete() -> bool:
        return condition(await status(env), "Complete") is not None
    await eventually(complete, "Complete")
    st = await status(env)
    assert (st["completedIndexes"], st["succeeded"], st["failed"]) == ("0-2", 3, 1)


async def _completed_indexes(env: Env, text: str) -> bool:
    return (await status(env)).get("completedIndexes") == text


async def test_backoff_between_recreations_then_backoff_limit(env: Env) -> None:
    await start_job(env, job(backoff_limit=2))
    await active_count(env, 1)
    first = (await env.pods())[0]
    await env.finish(first, "Failed")

    async def failed(n: int) -> bool:
        return (await status(env)).get("failed") == n
    await eventually(lambda: failed(1), "one failure counted")
    await settle()
    assert await env.pods() == []  # waiting out 10 s of back-off
    env.advance(9)
    await settle()
    assert await env.pods() == []
    env.advance(1.5)
    await active_count(env, 1)
    second = (await env.pods())[0]
    await env.finish(second, "Failed")
    await eventually(lambda: failed(2), "two failures")
    env.advance(15)
    await settle()
    assert await env.pods() == []  # the second back-off is 20 s
    env.advance(6)
    await active_count(env, 1)
    await env.finish((await env.pods())[0], "Failed")

    async def failed_condition() -> bool:
        return condition(await status(env), "Failed") is not None
    await eventually(failed_condition, "Failed")
    cond = condition(await status(env), "Failed")
    assert cond is not None
    assert (cond["reason"], cond["message"]) == ("BackoffLimitExceeded",
                                                 "Job has reached the specified backoff limit")
    assert (await status(env))["failed"] == 3
    assert "completionTime" not in await status(env)

    async def event() -> bool:
        return len(await env.events("BackoffLimitExceeded")) == 1
    await eventually(event, "BackoffLimitExceeded event")
    env.advance(400)
    await settle()
    assert await env.pods() == []


async def test_on_failure_restarts_count_against_the_backoff_limit(env: Env) -> None:
    await start_job(env, job(backoff_limit=3, restart="OnFailure"))
    await active_count(env, 1)
    pod = (await env.pods())[0]
    await env.finish(pod, "Running", restarts=2)
    await settle()
    assert condition(await status(env), "Failed") is None
    await env.finish(pod, "Running", restarts=3)

    async def failed() -> bool:
        return condition(await status(env), "Failed") is not None
    await eventually(failed, "Failed by restarts")
    await eventually(lambda: _no_pods(env), "the restarting pod deleted")


async def _no_pods(env: Env) -> bool:
    return await env.pods() == []


async def test_active_deadline_fails_the_job_and_deletes_its_pods(env: Env) -> None:
    await start_job(env, job(completions=2, parallelism=2, deadline=30))
    await active_count(env, 2)
    env.advance(29)
    await settle()
    assert condition(await status(env), "Failed") is None
    env.advance(1.5)

    async def failed() -> bool:
        return condition(await status(env), "Failed") is not None
    await eventually(failed, "DeadlineExceeded")
    cond = condition(await status(env), "Failed")
    assert cond is not None
    assert (cond["reason"], cond["message"]) == ("DeadlineExceeded",
                                                 "Job was active longer than specified deadline")
    await eventually(lambda: _no_pods(env), "pods deleted")

    async def events() -> bool:
        return (len(await env.events("DeadlineExceeded")) == 1
                and len(await env.events("SuccessfulDelete")) == 2)
    await eventually(events, "DeadlineExceeded and SuccessfulDelete events")
    assert (await status(env))["active"] == 0


async def test_suspend_deletes_pods_and_resume_restarts_the_clock(env: Env) -> None:
    await start_job(env, job(completions=2, parallelism=2, deadline=100))
    await active_count(env, 2)
    env.advance(60)
    await env.api.resource("jobs").patch("pi", "default", {"spec": {"suspend": True}})

    async def suspended() -> bool:
        c = condition(await status(env), "Suspended")
        return c is not None and c["status"] == "True" and await env.pods() == []
    await eventually(suspended, "suspended, pods deleted")
    cond = condition(await status(env), "Suspended")
    assert cond is not None and cond["reason"] == "JobSuspended"
    assert (await status(env))["active"] == 0
    env.advance(200)  # far past the deadline: a suspended Job does not time out
    await settle()
    assert condition(await status(env), "Failed") is None
    await env.api.resource("jobs").patch("pi", "default", {"spec": {"suspend": False}})

    async def resumed() -> bool:
        c = condition(await status(env), "Suspended")
        return c is not None and c["status"] == "False" and len(await env.pods()) == 2
    await eventually(resumed, "resumed with new pods")
    st = await status(env)
    assert st["startTime"] == format_timestamp(T0 + 260)
    assert condition(st, "Suspended")["reason"] == "JobResumed"  # type: ignore[index]
    env.advance(99)
    await settle()
    assert condition(await status(env), "Failed") is None
    env.advance(2)

    async def deadline() -> bool:
        c = condition(await status(env), "Failed")
        return c is not None and c["reason"] == "DeadlineExceeded"
    await eventually(deadline, "deadline counted from the resume")
    assert [e["message"] for e in await env.events("Suspended")] == ["Job suspended"]
    assert [e["message"] for e in await env.events("Resumed")] == ["Job resumed"]


async def test_created_suspended_starts_nothing(env: Env) -> None:
    await start_job(env, job(suspend=True))

    async def suspended() -> bool:
        return condition(await status(env), "Suspended") is not None
    await eventually(suspended, "Suspended condition")
    await settle()
    assert await env.pods() == []
    assert "startTime" not in await status(env)


async def test_ttl_after_finished_deletes_the_job(env: Env) -> None:
    await start_job(env, job(ttl=60))
    await active_count(env, 1)
    await env.finish((await env.pods())[0], "Succeeded")

    async def complete() -> bool:
        return condition(await status(env), "Complete") is not None
    await eventually(complete, "Complete")
    env.advance(59)
    await settle()
    assert await env.exists("jobs", "pi")
    env.advance(1.5)

    async def gone() -> bool:
        return not await env.exists("jobs", "pi")
    await eventually(gone, "Job deleted after its TTL")


async def test_work_queue_completes_when_one_succeeds_and_none_run(env: Env) -> None:
    await start_job(env, job(completions=None, parallelism=2))
    await active_count(env, 2)
    a, b = await env.pods()
    await env.finish(a, "Succeeded")

    async def one_done() -> bool:
        s = await status(env)
        return s.get("succeeded") == 1 and s.get("active") == 1
    await eventually(one_done, "one success")
    await settle()
    assert len(await env.pods()) == 1  # no new pod after a success
    assert condition(await status(env), "Complete") is None
    await env.finish(b, "Succeeded")

    async def complete() -> bool:
        return condition(await status(env), "Complete") is not None
    await eventually(complete, "Complete")
    assert (await status(env))["succeeded"] == 2


async def test_lagging_pod_cache_never_double_creates(env: Env) -> None:
    await env.start(JobController())
    env.gated["pods"].gate.clear()  # the controller's pod cache stops seeing changes
    await env.api.resource("jobs").create(job(completions=5, parallelism=3))

    async def three() -> bool:
        return len(await env.pods()) == 3
    await eventually(three, "three pods")
    # The Job's status write brings it back to the queue; expectations hold it.
    await env.api.resource("jobs").patch("pi", "default",
                                         {"metadata": {"labels": {"poke": "1"}}})
    env.advance(1)
    await settle()
    assert len(await env.pods()) == 3
    env.gated["pods"].gate.set()
    await active_count(env, 3)
    await settle()
    assert len(await env.pods()) == 3


async def test_scaling_parallelism_down_deletes_pods(env: Env) -> None:
    await start_job(env, job(completions=4, parallelism=3))
    await active_count(env, 3)
    await env.api.resource("jobs").patch("pi", "default", {"spec": {"parallelism": 1}})
    await active_count(env, 1)


async def test_duplicate_index_pods_are_deleted(env: Env) -> None:
    created = await start_job(env, job(completions=2, parallelism=2, indexed=True))
    await active_count(env, 2)
    uid = created["metadata"]["uid"]
    extra = {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "pi-extra", "namespace": "default",
                          "labels": {**created["spec"]["template"]["metadata"]["labels"],
                                     COMPLETION_INDEX: "0"},
                          "annotations": {COMPLETION_INDEX: "0"},
                          "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job",
                                               "name": "pi", "uid": uid, "controller": True}]},
             "spec": created["spec"]["template"]["spec"]}
    await env.api.resource("pods").create(extra)

    async def one_per_index() -> bool:
        pods = await env.pods()
        return len(pods) == 2 and sorted(index_of(p) for p in pods) == [0, 1]
    await eventually(one_per_index, "one pod per index")
    assert len(await env.events("SuccessfulDelete")) == 1


async def test_restart_policy_always_is_refused(env: Env) -> None:
    with pytest.raises(Invalid):
        await env.api.resource("jobs").create(job(restart="Always"))


def test_indexed_pod_names_keep_their_index_within_a_label() -> None:
    assert indexed_pod_generate_name("pi", 7) == "pi-7-"
    long = indexed_pod_generate_name("j" * 63, 12345)
    assert long.endswith("-12345-") and len(long) + 5 == 63

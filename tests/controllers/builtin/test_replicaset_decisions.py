"""The ReplicaSet controller's decisions as pure functions: slow start, ranking, claims, status."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from controllers.api.errors import ApiError
from controllers.api.objects import format_timestamp
from controllers.api.selectors import LabelSelector
from controllers.builtin.pod_control import (
    FakePodControl,
    adoption_patch,
    pod_from_template,
    release_patch,
)
from controllers.builtin.podutil import controller_ref, is_pod_ready, owner_reference
from controllers.builtin.replicaset import (
    POD_DELETION_COST,
    REPLICA_FAILURE,
    ClaimAction,
    calculate_status,
    claim_action,
    next_available_in,
    pods_to_delete,
    rank_pods_for_deletion,
    slow_start_batch,
)
from controllers.informers.store import freeze

T0 = 1_700_000_000.0
Obj = dict[str, Any]


# -- slow start ----------------------------------------------------------------------------
class Trace:
    """Calls of a slow-start function: starts and ends in order, failing the listed calls."""

    def __init__(self, fail: set[int] | None = None) -> None:
        self.events: list[str] = []
        self.fail = fail or set()
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        n = self.calls
        self.events.append("S")
        await asyncio.sleep(0)
        self.events.append("E")
        if n in self.fail:
            raise ApiError(f"call {n} failed")

    def batches(self) -> list[int]:
        """Batch sizes: each batch is a run of starts that ends before the next batch starts."""
        chunks = "".join(self.events).replace("ES", "E|S").split("|")
        return [chunk.count("S") for chunk in chunks if chunk]


@pytest.mark.parametrize("count, batches", [
    (0, []), (1, [1]), (2, [1, 1]), (3, [1, 2]), (7, [1, 2, 4]), (10, [1, 2, 4, 3]),
    (20, [1, 2, 4, 8, 5]),
])
async def test_slow_start_doubles_each_batch(count: int, batches: list[int]) -> None:
    trace = Trace()
    successes, error = await slow_start_batch(count, 1, trace)
    assert (successes, error) == (count, None)
    assert trace.batches() == batches


async def test_slow_start_stops_after_the_first_failed_batch() -> None:
    # Calls 1 | 2 3 | 4 5 6 7: call 5 fails, so the batch of 8 never starts.
    trace = Trace(fail={5})
    successes, error = await slow_start_batch(30, 1, trace)
    assert trace.batches() == [1, 2, 4]
    assert successes == 6 and isinstance(error, ApiError) and "call 5" in str(error)


async def test_slow_start_with_a_larger_first_batch() -> None:
    trace = Trace(fail={1, 2})
    successes, error = await slow_start_batch(5, 2, trace)
    assert trace.batches() == [2] and successes == 0 and error is not None


# -- ranking for deletion ------------------------------------------------------------------
def pod(name: str, *, node: str = "n1", phase: str = "Running", ready: bool | None = True,
        ready_at: float | None = T0, restarts: int = 0, created: float | None = T0,
        cost: str | None = None, labels: dict[str, str] | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": "default", "uid": f"uid-{name}",
                 "labels": labels if labels is not None else {"app": "web"}}
    if created is not None:
        meta["creationTimestamp"] = format_timestamp(created)
    if cost is not None:
        meta["annotations"] = {POD_DELETION_COST: cost}
    conditions = []
    if ready is not None:
        cond: Obj = {"type": "Ready", "status": "True" if ready else "False"}
        if ready_at is not None:
            cond["lastTransitionTime"] = format_timestamp(ready_at)
        conditions.append(cond)
    spec: Obj = {"containers": [{"name": "c", "image": "x"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": meta, "spec": spec,
            "status": {"phase": phase, "conditions": conditions,
                       "containerStatuses": [{"name": "c", "restartCount": restarts}]}}


# Each pair: (deleted first, deleted later) differing by one rule, in the order of the rules.
PAIRS = {
    "unscheduled before scheduled": (pod("a", node="", phase="Pending", ready=False),
                                     pod("b", phase="Pending", ready=False)),
    "pending before unknown": (pod("a", phase="Pending"), pod("b", phase="Unknown")),
    "unknown before running": (pod("a", phase="Unknown"), pod("b", phase="Running")),
    "not ready before ready": (pod("a", ready=False), pod("b", ready=True)),
    "no ready condition before ready": (pod("a", ready=None), pod("b")),
    "lower deletion cost first": (pod("a", cost="-5"), pod("b", cost="10")),
    "ready without a time before ready since a time": (pod("a", ready_at=None), pod("b")),
    "ready for less time before longer": (pod("a", ready_at=T0 + 60), pod("b", ready_at=T0)),
    "more restarts before fewer": (pod("a", restarts=3), pod("b", restarts=1)),
    "no creation time before newer": (pod("a", created=None), pod("b", created=T0 + 9)),
    "newer before older": (pod("a", created=T0 + 10), pod("b", created=T0)),
}


@pytest.mark.parametrize("rule", sorted(PAIRS))
def test_each_ranking_rule(rule: str) -> None:
    first, later = PAIRS[rule]
    for pods in ([first, later], [later, first]):
        ranked = rank_pods_for_deletion(pods)
        assert [p["metadata"]["name"] for p in ranked] == ["a", "b"]
        # Frozen cache objects rank the same way.
        frozen = rank_pods_for_deletion([freeze(p) for p in pods])
        assert [p["metadata"]["name"] for p in frozen] == ["a", "b"]


def test_earlier_rules_win_over_later_ones() -> None:
    # Not ready but old and never restarted still goes before ready, new, crash-looping.
    assert rank_pods_for_deletion([pod("b", created=T0 + 100, restarts=9),
                                   pod("a", ready=False, created=T0)])[0]["metadata"]["name"] \
        == "a"
    # A cheap-to-delete pod goes before a recently ready one.
    assert [p["metadata"]["name"] for p in rank_pods_for_deletion(
        [pod("b", ready_at=T0 + 50), pod("a", cost="-1")])] == ["a", "b"]


def test_doubled_up_pods_go_first() -> None:
    # Two sibling pods on n1, one on n2: the n1 pod is deleted first, all else equal.
    mine = [pod("solo", node="n2"), pod("doubled", node="n1")]
    related = [*mine, pod("sibling", node="n1"), pod("gone", node="n2", phase="Succeeded")]
    ranked = rank_pods_for_deletion(mine, related)
    assert [p["metadata"]["name"] for p in ranked] == ["doubled", "solo"]
    # Without related pods the tie stays in input order.
    assert [p["metadata"]["name"] for p in rank_pods_for_deletion(mine)] == ["solo", "doubled"]


def test_invalid_deletion_cost_counts_as_zero() -> None:
    assert [p["metadata"]["name"] for p in rank_pods_for_deletion(
        [pod("b", cost="lots"), pod("a", cost="-1")])] == ["a", "b"]


def test_a_shuffled_population_sorts_to_the_expected_order() -> None:
    expected = [
        pod("1", node="", phase="Pending", ready=False),
        pod("2", phase="Pending", ready=False),
        pod("3", phase="Unknown", ready=False),
        pod("4", ready=False, restarts=2),
        pod("5", ready=False),
        pod("6", ready_at=T0 + 30),
        pod("7", ready_at=T0, restarts=4),
        pod("8", ready_at=T0, created=T0 - 5),
        pod("9", ready_at=T0, created=T0 - 50),
    ]
    rng = random.Random(7)
    for _ in range(20):
        shuffled = list(expected)
        rng.shuffle(shuffled)
        assert [p["metadata"]["name"] for p in rank_pods_for_deletion(shuffled)] == \
            [p["metadata"]["name"] for p in expected]


def test_pods_to_delete_takes_the_first_ranked() -> None:
    pods = [pod("old", created=T0), pod("new", created=T0 + 5), pod("unready", ready=False)]
    assert [p["metadata"]["name"] for p in pods_to_delete(pods, [], 2)] == ["unready", "new"]
    assert pods_to_delete(pods, [], 3) == pods and pods_to_delete(pods, [], 0) == []


# -- claims --------------------------------------------------------------------------------
RS: Obj = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
           "metadata": {"name": "web", "namespace": "default", "uid": "rs-uid"},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web", "tier": "fe"}},
                                 "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
SELECTOR = LabelSelector.from_dict(RS["spec"]["selector"])
DELETING_RS: Obj = {**RS, "metadata": {**RS["metadata"], "deletionTimestamp": "2023-01-01T00:00:00Z"}}


def owned(p: Obj, owner: Obj = RS) -> Obj:
    p["metadata"]["ownerReferences"] = [owner_reference(owner)]
    return p


OTHER = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "x", "uid": "other"}}
CLAIMS = [
    ("ours and matching", owned(pod("p")), RS, ClaimAction.KEEP),
    ("ours, no longer matching", owned(pod("p", labels={"app": "db"})), RS, ClaimAction.RELEASE),
    ("ours, not matching, rs deleting", owned(pod("p", labels={"app": "db"})), DELETING_RS,
     ClaimAction.IGNORE),
    ("ours and matching, rs deleting", owned(pod("p")), DELETING_RS, ClaimAction.KEEP),
    ("someone else's", owned(pod("p"), OTHER), RS, ClaimAction.IGNORE),
    ("matching orphan", pod("p"), RS, ClaimAction.ADOPT),
    ("orphan, rs deleting", pod("p"), DELETING_RS, ClaimAction.IGNORE),
    ("orphan not matching", pod("p", labels={"app": "db"}), RS, ClaimAction.IGNORE),
    ("orphan being deleted",
     {**pod("p"), "metadata": {**pod("p")["metadata"], "deletionTimestamp": "x"}}, RS,
     ClaimAction.IGNORE),
]


@pytest.mark.parametrize("what, p, rs, action", CLAIMS, ids=[c[0] for c in CLAIMS])
def test_claim_action(what: str, p: Obj, rs: Obj, action: ClaimAction) -> None:
    assert claim_action(p, rs, SELECTOR) is action
    assert claim_action(freeze(p), freeze(rs), SELECTOR) is action


# -- status --------------------------------------------------------------------------------
def test_status_counts() -> None:
    rs = {**RS, "metadata": {**RS["metadata"], "generation": 4},
          "spec": {**RS["spec"], "minReadySeconds": 10}}
    pods = [
        pod("full-available", labels={"app": "web", "tier": "fe"}, ready_at=T0 - 10),
        pod("full-ready", labels={"app": "web", "tier": "fe"}, ready_at=T0 - 5),
        pod("partial-unready", ready=False),
    ]
    status = calculate_status(freeze(rs), [freeze(p) for p in pods], None, T0)
    assert status == {"replicas": 3, "fullyLabeledReplicas": 2, "readyReplicas": 2,
                      "availableReplicas": 1, "observedGeneration": 4}
    assert next_available_in(rs, pods, T0) == 5.0
    assert next_available_in(rs, pods, T0 + 5) is None
    assert next_available_in(RS, pods, T0) is None  # minReadySeconds 0: available when ready


def test_replica_failure_is_set_once_and_removed_on_success() -> None:
    status = calculate_status(RS, [], "quota exceeded", T0)
    [cond] = status["conditions"]
    assert cond == {"type": REPLICA_FAILURE, "status": "True", "reason": "FailedCreate",
                    "message": "quota exceeded", "lastTransitionTime": format_timestamp(T0)}
    failing = {**RS, "status": status}
    # Still failing later: the first condition stays as it was.
    again = calculate_status(failing, [], "something else", T0 + 60)
    assert again["conditions"] == [cond]
    # Too many pods and deleting fails: FailedDelete.
    three = [pod("a"), pod("b"), pod("c")]
    assert calculate_status(RS, three, "boom", T0)["conditions"][0]["reason"] == "FailedDelete"
    # Success clears it, keeping other conditions.
    other = {"type": "Custom", "status": "True"}
    mixed = {**RS, "status": {**status, "conditions": [other, cond]}}
    assert calculate_status(mixed, [], None, T0)["conditions"] == [other]
    assert "conditions" not in calculate_status(failing, [], None, T0)


# -- pods from templates, patches, the fake ------------------------------------------------
def test_pod_from_template() -> None:
    template: Obj = {"metadata": {"labels": {"app": "web"}, "annotations": {"a": "1"},
                             "finalizers": ["x/y"]},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    ref = owner_reference(RS)
    made = pod_from_template(freeze(template), freeze(RS), freeze(ref))
    assert made == {"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"generateName": "web-", "labels": {"app": "web"},
                                 "annotations": {"a": "1"}, "finalizers": ["x/y"],
                                 "ownerReferences": [ref]},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    made["spec"]["containers"][0]["image"] = "changed"  # a mutable copy
    assert template["spec"]["containers"][0]["image"] == "nginx"


def test_adoption_and_release_patches_carry_the_pod_uid() -> None:
    ref = owner_reference(RS)
    assert adoption_patch("p1", ref) == {"metadata": {"ownerReferences": [ref], "uid": "p1"}}
    assert release_patch("p1", "rs-uid") == {
        "metadata": {"ownerReferences": [{"$patch": "delete", "uid": "rs-uid"}], "uid": "p1"}}


async def test_fake_pod_control_records_and_fails_on_demand() -> None:
    fake = FakePodControl(create_limit=2)
    template = RS["spec"]["template"]
    made = [await fake.create_pod("default", template, RS, owner_reference(RS))
            for _ in range(2)]
    assert [p["metadata"]["name"] for p in made] == ["web-0", "web-1"]
    with pytest.raises(ApiError):
        await fake.create_pod("default", template, RS, owner_reference(RS))
    with pytest.raises(ValueError):
        await FakePodControl().create_pod("default", {"spec": {}}, RS, owner_reference(RS))
    await fake.delete_pod("default", "web-0", RS)
    await fake.patch_pod("default", "web-1", release_patch("u", "rs-uid"))
    assert fake.deleted == ["default/web-0"] and fake.patches[0][0] == "default/web-1"
    assert fake.create_calls == 3


def test_podutil_reads_frozen_objects() -> None:
    p = owned(pod("p"))
    assert is_pod_ready(freeze(p)) and controller_ref(freeze(p)) == owner_reference(RS)


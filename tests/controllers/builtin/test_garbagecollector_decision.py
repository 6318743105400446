"""The collector's decisions: owner states, classification, what to do, and the edits."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.api.deletion import PropagationPolicy
from controllers.builtin.garbagecollector.decision import (
    Action,
    Classified,
    Decision,
    OwnerState,
    classify,
    decide,
    deletion_policy,
    owner_state,
    with_unblocked_references,
    without_finalizer,
    without_owner_references,
)
from controllers.builtin.garbagecollector.graph import OwnerReference
from controllers.informers.store import freeze


def owner(uid: str, *, deleting: bool = False, finalizers: tuple[str, ...] = ()
          ) -> dict[str, Any]:
    m: dict[str, Any] = {"name": "o", "uid": uid}
    if deleting:
        m["deletionTimestamp"] = "2023-11-14T22:13:20Z"
    if finalizers:
        m["finalizers"] = list(finalizers)
    return {"metadata": m}


@pytest.mark.parametrize(("live", "state"), [
    (None, OwnerState.DANGLING),
    (owner("other"), OwnerState.DANGLING),
    (owner("u"), OwnerState.SOLID),
    (owner("u", deleting=True), OwnerState.SOLID),
    (owner("u", deleting=True, finalizers=("orphan",)), OwnerState.SOLID),
    (owner("u", finalizers=("foregroundDeletion",)), OwnerState.SOLID),
    (owner("u", deleting=True, finalizers=("foregroundDeletion",)), OwnerState.WAITING),
])
def test_owner_state(live: dict[str, Any] | None, state: OwnerState) -> None:
    assert owner_state("u", freeze(live)) is state


def r(uid: str) -> OwnerReference:
    return OwnerReference("apps/v1", "ReplicaSet", uid, uid)


def test_classify_keeps_reference_order_and_needs_every_state() -> None:
    refs = [r("a"), r("b"), r("c"), r("d")]
    states = {"a": OwnerState.DANGLING, "b": OwnerState.SOLID, "c": OwnerState.WAITING,
              "d": OwnerState.DANGLING}
    assert classify(refs, states) == Classified((r("b"),), (r("a"), r("d")), (r("c"),))
    with pytest.raises(KeyError):
        classify([r("e")], states)


PLAIN = {"metadata": {"name": "x"}}
ORPHANING = {"metadata": {"name": "x", "finalizers": ["orphan"]}}
FOREGROUND = {"metadata": {"name": "x", "finalizers": ["foregroundDeletion"]}}


@pytest.mark.parametrize(("obj", "classified", "deps", "dep_deleting", "want"), [
    # A live owner keeps it; references to gone or waiting owners are dropped.
    (PLAIN, Classified(solid=(r("a"),)), False, False, Decision(Action.NOTHING)),
    (PLAIN, Classified(solid=(r("a"),), dangling=(r("b"),), waiting=(r("c"),)), True, False,
     Decision(Action.REMOVE_REFERENCES, remove_uids=("b", "c"))),
    # Every owner gone: delete, in the background by default.
    (PLAIN, Classified(dangling=(r("a"), r("b"))), True, False,
     Decision(Action.DELETE, policy=PropagationPolicy.BACKGROUND)),
    # ... honouring the policy its finalizers record.
    (ORPHANING, Classified(dangling=(r("a"),)), False, False,
     Decision(Action.DELETE, policy=PropagationPolicy.ORPHAN)),
    (FOREGROUND, Classified(dangling=(r("a"),)), False, False,
     Decision(Action.DELETE, policy=PropagationPolicy.FOREGROUND)),
    # An owner waits for it and it has dependents: foreground, unblocking on a cycle.
    (PLAIN, Classified(dangling=(r("a"),), waiting=(r("b"),)), True, False,
     Decision(Action.DELETE, policy=PropagationPolicy.FOREGROUND)),
    (PLAIN, Classified(waiting=(r("b"),)), True, True,
     Decision(Action.DELETE, policy=PropagationPolicy.FOREGROUND, unblock_first=True)),
    # An owner waits for it, but it has no dependents: as if the owner were gone.
    (PLAIN, Classified(waiting=(r("b"),)), False, False,
     Decision(Action.DELETE, policy=PropagationPolicy.BACKGROUND)),
    (ORPHANING, Classified(waiting=(r("b"),)), False, False,
     Decision(Action.DELETE, policy=PropagationPolicy.ORPHAN)),
])
def test_decide(obj: dict[str, Any], classified: Classified, deps: bool, dep_deleting: bool,
                want: Decision) -> None:
    assert decide(freeze(obj), classified, has_dependents=deps,
                  dependent_deleting_dependents=dep_deleting) == want


def test_deletion_policy_prefers_orphan() -> None:
    both = {"metadata": {"finalizers": ["foregroundDeletion", "orphan"]}}
    assert deletion_policy(both) is PropagationPolicy.ORPHAN
    assert deletion_policy({}) is PropagationPolicy.BACKGROUND


def dependent() -> dict[str, Any]:
    return {"metadata": {"name": "p", "finalizers": ["a", "orphan"], "ownerReferences": [
        {"uid": "1", "name": "one", "blockOwnerDeletion": True},
        {"uid": "2", "name": "two", "blockOwnerDeletion": False},
        {"uid": "3", "name": "three", "blockOwnerDeletion": True}]}}


def test_without_owner_references_copies_and_drops_only_those() -> None:
    frozen = freeze(dependent())
    new = without_owner_references(frozen, ["1", "3"])
    assert new is not None
    assert [ref["uid"] for ref in new["metadata"]["ownerReferences"]] == ["2"]
    assert len(frozen["metadata"]["ownerReferences"]) == 3
    new["metadata"]["name"] = "mutable"
    assert without_owner_references(frozen, ["9"]) is None
    gone = without_owner_references(frozen, ["1", "2", "3"])
    assert gone is not None and "ownerReferences" not in gone["metadata"]


def test_with_unblocked_references() -> None:
    new = with_unblocked_references(freeze(dependent()))
    assert new is not None
    assert [ref["blockOwnerDeletion"] for ref in new["metadata"]["ownerReferences"]] == [
        False, False, False]
    assert with_unblocked_references(new) is None


def test_without_finalizer() -> None:
    new = without_finalizer(freeze(dependent()), "orphan")
    assert new is not None and new["metadata"]["finalizers"] == ["a"]
    assert without_finalizer(new, "orphan") is None
    last = without_finalizer(new, "a")
    assert last is not None and "finalizers" not in last["metadata"]

"""The ownerReferences graph: links, virtual owners, transitions, and what each write asks for."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from controllers.builtin.garbagecollector.graph import (
    Changes,
    Graph,
    ObjectIdentity,
    OwnerReference,
    identity_of,
    owner_references,
)
from controllers.informers.store import freeze


def ref(uid: str, *, kind: str = "ReplicaSet", name: str = "", block: bool = False,
        api_version: str = "apps/v1") -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "name": name or uid, "uid": uid,
            "controller": True, "blockOwnerDeletion": block}


def obj(uid: str, *owners: dict[str, Any], kind: str = "ReplicaSet", namespace: str = "ns",
        name: str = "", deleting: bool = False, finalizers: tuple[str, ...] = (),
        api_version: str = "apps/v1") -> dict[str, Any]:
    m: dict[str, Any] = {"name": name or uid, "uid": uid}
    if namespace:
        m["namespace"] = namespace
    if owners:
        m["ownerReferences"] = list(owners)
    if deleting:
        m["deletionTimestamp"] = "2023-11-14T22:13:20Z"
    if finalizers:
        m["finalizers"] = list(finalizers)
    return {"apiVersion": api_version, "kind": kind, "metadata": m}


def test_identity_and_references_parse_frozen_objects() -> None:
    o = freeze(obj("d", ref("a"), ref("a"), {"uid": ""}, ref("b", block=True)))
    assert identity_of(o) == ObjectIdentity("apps/v1", "ReplicaSet", "ns", "d", "d")
    assert [r.uid for r in owner_references(o)] == ["a", "b"]
    assert owner_references(o)[1] == OwnerReference("apps/v1", "ReplicaSet", "b", "b", True, True)
    assert identity_of({"metadata": {"name": "x"}}) is None
    assert Graph().upsert({"metadata": {"name": "x"}}) == Changes()


def test_a_dependent_seen_first_makes_a_virtual_owner_to_verify() -> None:
    g = Graph()
    assert g.upsert(obj("pod", ref("rs"), kind="Pod")) == Changes(attempt_to_delete=("rs",))
    owner = g.node("rs")
    assert owner is not None and owner.virtual and owner.dependents == ("pod",)
    assert owner.identity == ObjectIdentity("apps/v1", "ReplicaSet", "ns", "rs", "rs")
    # The owner shows up: it is observed now, and nothing is asked for.
    assert g.upsert(obj("rs")) == Changes()
    owner = g.node("rs")
    assert owner is not None and owner.observed and owner.dependents == ("pod",)
    # A second dependent of a known owner asks for nothing either.
    assert g.upsert(obj("pod2", ref("rs"), kind="Pod")) == Changes()
    assert [d.identity.uid for d in g.dependents("rs")] == ["pod", "pod2"]


def test_deleting_an_owner_asks_to_check_its_dependents() -> None:
    g = Graph()
    g.upsert(obj("deploy", kind="Deployment"))
    g.upsert(obj("rs", ref("deploy", kind="Deployment")))
    g.upsert(obj("p1", ref("rs"), kind="Pod"))
    g.upsert(obj("p2", ref("rs"), kind="Pod"))
    assert g.remove(obj("rs")) == Changes(attempt_to_delete=("p1", "p2"))
    # The dependents still name it, so it stays as a virtual node; its owner lost it.
    rs = g.node("rs")
    assert rs is not None and rs.virtual and rs.owners == ()
    deploy = g.node("deploy")
    assert deploy is not None and deploy.dependents == ()
    g.remove(obj("p1", ref("rs"), kind="Pod"))
    assert g.remove(obj("p2", ref("rs"), kind="Pod")) == Changes()
    # The last dependent let go: the virtual node went with it.
    assert "rs" not in g and sorted(g.uids()) == ["deploy"]
    assert g.remove(obj("gone")) == Changes()


def test_foreground_deletion_marks_the_owner_and_asks_for_its_dependents() -> None:
    g = Graph()
    g.upsert(obj("rs"))
    g.upsert(obj("p1", ref("rs", block=True), kind="Pod"))
    g.upsert(obj("p2", ref("rs"), kind="Pod"))
    deleting = obj("rs", deleting=True, finalizers=("foregroundDeletion",))
    assert g.upsert(deleting) == Changes(attempt_to_delete=("p1", "p2", "rs"))
    node = g.node("rs")
    assert node is not None and node.deleting_dependents and node.being_deleted
    # Only once: the same state again asks for nothing.
    assert g.upsert(deleting) == Changes()
    assert [d.identity.uid for d in g.blocking_dependents("rs")] == ["p1"]
    # A dependent going away wakes the waiting owner, blocking or not.
    assert g.remove(obj("p2", ref("rs"), kind="Pod")) == Changes(attempt_to_delete=("rs",))
    assert g.remove(obj("p1", ref("rs", block=True), kind="Pod")) == Changes(
        attempt_to_delete=("rs",))
    assert g.blocking_dependents("rs") == []


def test_a_waiting_owner_is_woken_when_a_dependent_lets_go_or_stops_blocking() -> None:
    g = Graph()
    g.upsert(obj("rs", deleting=True, finalizers=("foregroundDeletion",)))
    # A new dependent of an owner waiting for its dependents is checked at once.
    assert g.upsert(obj("p1", ref("rs", block=True), kind="Pod")) == Changes(
        attempt_to_delete=("p1",))
    g.upsert(obj("p2", ref("rs", block=True), kind="Pod"))
    assert g.upsert(obj("p1", ref("rs", block=False), kind="Pod")) == Changes(
        attempt_to_delete=("rs",))
    assert g.upsert(obj("p2", kind="Pod")) == Changes(attempt_to_delete=("rs",))
    assert g.dependents("rs")[0].identity.uid == "p1" and len(g.dependents("rs")) == 1


def test_orphan_deletion_asks_to_orphan_once() -> None:
    g = Graph()
    g.upsert(obj("rs"))
    g.upsert(obj("p1", ref("rs"), kind="Pod"))
    orphaning = obj("rs", deleting=True, finalizers=("orphan",))
    assert g.upsert(orphaning) == Changes(attempt_to_orphan=("rs",))
    assert g.upsert(orphaning) == Changes()
    node = g.node("rs")
    assert node is not None and node.being_deleted and not node.deleting_dependents
    # Seen for the first time already deleting (after a restart): asked for too.
    fresh = Graph()
    assert fresh.upsert(orphaning) == Changes(attempt_to_orphan=("rs",))
    both = Graph()
    assert both.upsert(obj("x", deleting=True, finalizers=("orphan", "foregroundDeletion"))) == \
        Changes(attempt_to_delete=("x",), attempt_to_orphan=("x",))


def test_removing_a_reference_drops_an_unneeded_virtual_owner() -> None:
    g = Graph()
    g.upsert(obj("pod", ref("a"), ref("b"), kind="Pod"))
    assert sorted(g.uids()) == ["a", "b", "pod"]
    assert g.upsert(obj("pod", ref("b"), kind="Pod")) == Changes()
    assert sorted(g.uids()) == ["b", "pod"]
    assert g.upsert(obj("pod", ref("b"), ref("c"), kind="Pod")) == Changes(
        attempt_to_delete=("c",))


def test_a_reference_that_does_not_fit_its_owner_gets_the_dependent_checked() -> None:
    g = Graph()
    g.upsert(obj("rs", namespace="other"))
    # Same uid, but the owner lives in another namespace.
    assert g.upsert(obj("p1", ref("rs"), kind="Pod")) == Changes(attempt_to_delete=("p1",))
    # Same uid, another name.
    assert g.upsert(obj("p2", ref("rs", name="not-rs"), namespace="other", kind="Pod")) == \
        Changes(attempt_to_delete=("p2",))
    # A cluster-scoped owner fits a dependent in any namespace.
    g.upsert(obj("node1", kind="Node", api_version="v1", namespace=""))
    assert g.upsert(obj("p3", ref("node1", kind="Node", api_version="v1"), kind="Pod")) == \
        Changes()
    # A virtual owner showing up checks the dependents that do not fit it.
    g.upsert(obj("q1", ref("late"), kind="Pod"))
    g.upsert(obj("q2", ref("late", name="other-name"), kind="Pod"))
    g.upsert(obj("q3", ref("late"), namespace="far", kind="Pod"))
    assert g.upsert(obj("late")) == Changes(attempt_to_delete=("q2", "q3"))
    # The version does not matter, the group does.
    assert g.upsert(obj("p4", ref("rs", api_version="apps/v2"), namespace="other",
                        kind="Pod")) == Changes()
    assert g.upsert(obj("p5", ref("rs", api_version="batch/v1"), namespace="other",
                        kind="Pod")) == Changes(attempt_to_delete=("p5",))


def test_a_virtual_owner_found_absent_goes_and_its_dependents_are_checked() -> None:
    g = Graph()
    g.upsert(obj("p1", ref("ghost"), kind="Pod"))
    g.upsert(obj("p2", ref("ghost"), kind="Pod"))
    ghost = g.node("ghost")
    assert ghost is not None
    assert g.remove_virtual(ghost.identity) == Changes(attempt_to_delete=("p1", "p2"))
    still = g.node("ghost")
    assert still is not None and still.virtual  # named by p1 and p2 until they let go
    g.upsert(obj("p1", kind="Pod"))
    g.upsert(obj("p2", kind="Pod"))
    assert "ghost" not in g
    assert g.remove_virtual(ghost.identity) == Changes()


def test_a_virtual_owner_named_two_ways_is_renamed_and_verified_again() -> None:
    g = Graph()
    g.upsert(obj("p1", ref("x", name="one"), kind="Pod"))
    g.upsert(obj("p2", ref("x", name="two"), kind="Pod"))
    first = g.node("x")
    assert first is not None and first.identity.name == "one"
    assert g.remove_virtual(first.identity) == Changes(attempt_to_delete=("p1", "x"))
    renamed = g.node("x")
    assert renamed is not None and renamed.identity.name == "two"
    assert g.remove_virtual(renamed.identity) == Changes(attempt_to_delete=("p1", "p2"))


def test_an_observed_node_survives_a_virtual_delete_under_another_identity() -> None:
    g = Graph()
    g.upsert(obj("rs"))
    g.upsert(obj("p1", ref("rs"), kind="Pod"))
    g.upsert(obj("p2", ref("rs", name="wrong"), kind="Pod"))
    wrong = ObjectIdentity("apps/v1", "ReplicaSet", "ns", "wrong", "rs")
    assert g.remove_virtual(wrong) == Changes(attempt_to_delete=("p2",))
    node = g.node("rs")
    assert node is not None and node.observed
    # Under its own identity it is gone (the store says so before the informer).
    assert g.remove_virtual(node.identity) == Changes(attempt_to_delete=("p1", "p2"))


def test_a_self_reference_does_not_break_removal() -> None:
    g = Graph()
    g.upsert(obj("me", ref("me")))
    assert g.remove(obj("me", ref("me"))) == Changes()
    assert len(g) == 0


# -- the invariant, under random event sequences -------------------------------------------

UIDS = ["a", "b", "c", "d"]

events = st.lists(st.one_of(
    st.tuples(st.just("upsert"), st.sampled_from(UIDS),
              st.lists(st.tuples(st.sampled_from(UIDS), st.booleans()), max_size=3),
              st.sampled_from([(), ("orphan",), ("foregroundDeletion",)]), st.booleans()),
    st.tuples(st.just("remove"), st.sampled_from(UIDS)),
    st.tuples(st.just("virtual"), st.sampled_from(UIDS), st.sampled_from(["a", "z"])),
), max_size=30)


def check_invariant(g: Graph) -> None:
    for uid in g.uids():
        node = g.node(uid)
        assert node is not None
        for owner_ref in node.owners:
            owner = g.node(owner_ref.uid)
            assert owner is not None, (uid, owner_ref.uid)
            assert uid in owner.dependents
        for dep_uid in node.dependents:
            dep = g.node(dep_uid)
            assert dep is not None and dep.owner(uid) is not None
        if node.virtual:
            assert node.dependents and not node.owners and not node.being_deleted
        assert node.deleting_dependents == (node.being_deleted
                                            and "foregroundDeletion" in node.finalizers)


@settings(max_examples=150, deadline=None)
@given(events)
def test_the_graph_stays_consistent_under_any_events(seq: list[Any]) -> None:
    g = Graph()
    for event in seq:
        if event[0] == "upsert":
            _, uid, owners, finalizers, deleting = event
            o = obj(uid, *(ref(u, block=b) for u, b in owners), deleting=deleting,
                    finalizers=finalizers)
            changes = g.upsert(o)
        elif event[0] == "remove":
            changes = g.remove(obj(event[1]))
        else:
            changes = g.remove_virtual(ObjectIdentity("apps/v1", "ReplicaSet", "ns", event[2],
                                                      event[1]))
        assert len(set(changes.attempt_to_delete)) == len(changes.attempt_to_delete)
        check_invariant(g)

"""The pod-template-hash and the revision annotations."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from controllers.builtin.deployment.annotations import (
    DESIRED_REPLICAS_ANNOTATION,
    LAST_APPLIED_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
    copy_deployment_annotations,
    max_revision,
    revision,
    set_deployment_revision,
    set_new_replicaset_annotations,
    set_replicas_annotations,
)
from controllers.builtin.deployment.hashing import (
    POD_TEMPLATE_HASH_LABEL,
    compute_hash,
    equal_ignore_hash,
    fnv1a_32,
    template_without_hash,
)
from controllers.informers.store import freeze

Obj = dict[str, Any]

TEMPLATE: Obj = {"metadata": {"labels": {"app": "web"}},
                 "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}


def test_fnv1a_32_known_values() -> None:
    # Reference values of 32-bit FNV-1a.
    assert fnv1a_32(b"") == 0x811C9DC5
    assert fnv1a_32(b"a") == 0xE40C292C
    assert fnv1a_32(b"foobar") == 0xBF9CF968


def test_hash_is_stable_across_runs_and_key_order() -> None:
    # A fixed value: a change to the algorithm would rename every ReplicaSet.
    assert compute_hash(TEMPLATE) == compute_hash(copy.deepcopy(TEMPLATE))
    golden = compute_hash(TEMPLATE)
    assert golden == compute_hash({"spec": {"containers": [{"image": "nginx:1.25",
                                                             "name": "c"}]},
                                   "metadata": {"labels": {"app": "web"}}})
    assert golden == compute_hash(freeze(TEMPLATE))
    assert golden == "5bdcdff586"


def test_hash_changes_with_template_and_collision_count() -> None:
    other = copy.deepcopy(TEMPLATE)
    other["spec"]["containers"][0]["image"] = "nginx:1.26"
    hashes = {compute_hash(TEMPLATE), compute_hash(other), compute_hash(TEMPLATE, 0),
              compute_hash(TEMPLATE, 1), compute_hash(TEMPLATE, 2)}
    assert len(hashes) == 5
    assert compute_hash(TEMPLATE, 1) == compute_hash(TEMPLATE, 1)
    # Only characters that cannot spell words (and are valid in names).
    for h in hashes:
        assert h and set(h) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_equal_ignore_hash() -> None:
    hashed = copy.deepcopy(TEMPLATE)
    hashed["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL] = "abc"
    assert equal_ignore_hash(TEMPLATE, hashed)
    assert equal_ignore_hash(freeze(hashed), TEMPLATE)
    changed = copy.deepcopy(hashed)
    changed["metadata"]["labels"]["tier"] = "x"
    assert not equal_ignore_hash(TEMPLATE, changed)
    # A template whose only label is the hash equals one without labels.
    only = {"metadata": {"labels": {POD_TEMPLATE_HASH_LABEL: "x"}}, "spec": {}}
    assert equal_ignore_hash(only, {"spec": {}})
    assert template_without_hash(hashed) == TEMPLATE
    assert POD_TEMPLATE_HASH_LABEL in hashed["metadata"]["labels"]  # the input is untouched


def rs(notes: dict[str, str] | None = None) -> Obj:
    return {"metadata": {"name": "web-1", "annotations": dict(notes or {})}}


def test_revision_and_max_revision() -> None:
    assert revision(rs()) == 0
    assert revision(rs({REVISION_ANNOTATION: "4"})) == 4
    with pytest.raises(ValueError):
        revision(rs({REVISION_ANNOTATION: "four"}))
    sets = [rs({REVISION_ANNOTATION: "2"}), rs({REVISION_ANNOTATION: "x"}), rs(),
            rs({REVISION_ANNOTATION: "7"})]
    assert max_revision(sets) == 7
    assert max_revision([]) == 0


def test_copy_annotations_skips_the_controllers_own() -> None:
    d = {"metadata": {"annotations": {"team": "a", LAST_APPLIED_ANNOTATION: "{}",
                                      REVISION_ANNOTATION: "9", MAX_REPLICAS_ANNOTATION: "1",
                                      DESIRED_REPLICAS_ANNOTATION: "1",
                                      REVISION_HISTORY_ANNOTATION: "1",
                                      "deprecated.deployment.rollback.to": "1"}}}
    target = rs({"team": "b"})
    assert copy_deployment_annotations(d, target)
    assert target["metadata"]["annotations"] == {"team": "a"}
    assert not copy_deployment_annotations(d, target)


def test_new_replicaset_gets_revision_and_replica_annotations() -> None:
    d: Obj = {"metadata": {"annotations": {"note": "n"}}}
    new: Obj = {"metadata": {"name": "web-2"}}
    assert set_new_replicaset_annotations(d, new, 3, exists=False, desired=4, maximum=5)
    assert new["metadata"]["annotations"] == {
        "note": "n", REVISION_ANNOTATION: "3", DESIRED_REPLICAS_ANNOTATION: "4",
        MAX_REPLICAS_ANNOTATION: "5"}
    # Nothing more to do the second time; replica annotations only on creation.
    assert not set_new_replicaset_annotations(d, new, 3, exists=True, desired=9, maximum=9)


def test_a_reused_replicaset_takes_the_next_revision_and_keeps_its_history() -> None:
    old = rs({REVISION_ANNOTATION: "1"})
    assert set_new_replicaset_annotations({}, old, 3, exists=True, desired=1, maximum=1)
    notes = old["metadata"]["annotations"]
    assert (notes[REVISION_ANNOTATION], notes[REVISION_HISTORY_ANNOTATION]) == ("3", "1")
    assert set_new_replicaset_annotations({}, old, 5, exists=True, desired=1, maximum=1)
    assert (notes[REVISION_ANNOTATION], notes[REVISION_HISTORY_ANNOTATION]) == ("5", "1,3")
    # A revision never goes down.
    assert not set_new_replicaset_annotations({}, old, 4, exists=True, desired=1, maximum=1)
    assert notes[REVISION_ANNOTATION] == "5"


def test_revision_history_is_trimmed_to_its_character_limit() -> None:
    old = rs({REVISION_ANNOTATION: "4", REVISION_HISTORY_ANNOTATION: "1,2,3"})
    set_new_replicaset_annotations({}, old, 6, exists=True, desired=1, maximum=1,
                                   history_chars=5)
    assert old["metadata"]["annotations"][REVISION_HISTORY_ANNOTATION] == "2,3,4"


def test_an_unreadable_revision_is_left_alone() -> None:
    odd = rs({REVISION_ANNOTATION: "x"})
    assert not set_new_replicaset_annotations({}, odd, 2, exists=True, desired=1, maximum=1)
    assert odd["metadata"]["annotations"][REVISION_ANNOTATION] == "x"


def test_replica_annotations_and_deployment_revision() -> None:
    target = rs()
    assert set_replicas_annotations(target, 3, 4)
    assert not set_replicas_annotations(target, 3, 4)
    assert set_replicas_annotations(target, 3, 5)
    d: Obj = {"metadata": {}}
    assert set_deployment_revision(d, "2") and not set_deployment_revision(d, "2")
    assert d["metadata"]["annotations"][REVISION_ANNOTATION] == "2"

"""Pod readiness, availability, activity and owner references."""

from __future__ import annotations

import pytest

from controllers.api.objects import format_timestamp
from controllers.builtin.podutil import (
    controller_ref,
    is_controlled_by,
    is_pod_active,
    is_pod_available,
    is_pod_ready,
    owner_reference,
)

T0 = 1_700_000_000.0


def pod(ready: str | None = None, since: float = T0, phase: str = "Running",
        deleting: bool = False) -> dict:  # type: ignore[type-arg]
    conds = [] if ready is None else [{"type": "Ready", "status": ready,
                                       "lastTransitionTime": format_timestamp(since)}]
    meta = {"name": "p", "deletionTimestamp": format_timestamp(T0)} if deleting else {"name": "p"}
    return {"metadata": meta, "status": {"phase": phase, "conditions": conds}}


def test_ready_and_available() -> None:
    assert not is_pod_ready(pod()) and not is_pod_ready(pod("False"))
    assert is_pod_ready(pod("True"))
    assert is_pod_available(pod("True"), 0, T0)
    assert not is_pod_available(pod("True", since=T0), 10, T0 + 9)
    assert is_pod_available(pod("True", since=T0), 10, T0 + 10)
    assert not is_pod_available(pod("False"), 0, T0)


def test_active() -> None:
    assert is_pod_active(pod())
    assert not is_pod_active(pod(phase="Succeeded")) and not is_pod_active(pod(phase="Failed"))
    assert not is_pod_active(pod(deleting=True))


def test_owner_references() -> None:
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web", "uid": "u1"}}
    ref = owner_reference(rs)
    assert ref == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "u1",
                   "controller": True, "blockOwnerDeletion": True}
    child = {"metadata": {"ownerReferences": [{**ref, "controller": False, "uid": "x"}, ref]}}
    assert controller_ref(child) == ref
    assert is_controlled_by(child, rs)
    assert not is_controlled_by(child, {"metadata": {"uid": "other"}})
    assert controller_ref({"metadata": {}}) is None
    with pytest.raises(ValueError):
        owner_reference({"metadata": {"name": "no-uid"}})

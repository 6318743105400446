"""What the garbage collector does with one object, as pure functions of what it read.

An object's owner references are sorted three ways by what the store says
about each owner (``owner_state``):

- *solid*: the owner exists (same uid) and is not waiting for its dependents;
- *dangling*: no object of that name has that uid (gone, or never was);
- *waiting*: the owner exists and is being deleted with the
  ``foregroundDeletion`` finalizer: it waits for its dependents to go.

``decide`` then picks, as Kubernetes' collector does:

- some solid owner: keep the object, dropping the references to dangling and
  waiting owners (if any);
- no solid owner, some waiting owner, and dependents of its own: delete it
  in the foreground (after making its references non-blocking if one of
  its dependents is itself deleting dependents: that breaks cycles);
- otherwise: delete it, honouring a propagation finalizer it already has
  (``orphan``, ``foregroundDeletion``), else in the background.

The edits (``without_owner_references``, ``with_unblocked_references``,
``without_finalizer``) return a changed copy, or None when there is nothing
to change, so the caller writes only what differs.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from controllers.api.deletion import (
    FINALIZER_FOREGROUND,
    FINALIZER_ORPHAN,
    PropagationPolicy,
)
from controllers.api.objects import Obj
from controllers.builtin.garbagecollector.graph import OwnerReference
from controllers.informers.store import thaw

__all__ = [
    "Action",
    "Classified",
    "Decision",
    "OwnerState",
    "classify",
    "decide",
    "deletion_policy",
    "owner_state",
    "with_unblocked_references",
    "without_finalizer",
    "without_owner_references",
]


class OwnerState(str, enum.Enum):
    """What the store says about one owner reference."""

    SOLID = "solid"
    DANGLING = "dangling"
    WAITING = "waiting"


def owner_state(uid: str, live: Mapping[str, Any] | None) -> OwnerState:
    """The state of a reference to ``uid``, given the object of that name (None: none)."""
    if live is None:
        return OwnerState.DANGLING
    m = live.get("metadata") or {}
    if m.get("uid") != uid:
        return OwnerState.DANGLING
    if m.get("deletionTimestamp") and FINALIZER_FOREGROUND in (m.get("finalizers") or ()):
        return OwnerState.WAITING
    return OwnerState.SOLID


@dataclass(frozen=True, slots=True)
class Classified:
    """An object's owner references, by the state of their owner."""

    solid: tuple[OwnerReference, ...] = ()
    dangling: tuple[OwnerReference, ...] = ()
    waiting: tuple[OwnerReference, ...] = ()


def classify(refs: Iterable[OwnerReference], states: Mapping[str, OwnerState]) -> Classified:
    """Sort ``refs`` by ``states[ref.uid]``.

    Raises:
        KeyError: a reference has no state.
    """
    solid: list[OwnerReference] = []
    dangling: list[OwnerReference] = []
    waiting: list[OwnerReference] = []
    for ref in refs:
        state = states[ref.uid]
        (solid if state is OwnerState.SOLID else
         dangling if state is OwnerState.DANGLING else waiting).append(ref)
    return Classified(tuple(solid), tuple(dangling), tuple(waiting))


class Action(str, enum.Enum):
    """What ``decide`` asks for."""

    NOTHING = "nothing"
    REMOVE_REFERENCES = "remove-references"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Decision:
    """An ``Action`` and its arguments."""

    action: Action
    # REMOVE_REFERENCES: the owner uids whose references go.
    remove_uids: tuple[str, ...] = ()
    # DELETE: the propagation policy, and whether to unblock references first.
    policy: PropagationPolicy | None = None
    unblock_first: bool = False


def deletion_policy(obj: Mapping[str, Any]) -> PropagationPolicy:
    """The policy a delete of ``obj`` keeps: the one its finalizers record, else Background."""
    finalizers = (obj.get("metadata") or {}).get("finalizers") or ()
    if FINALIZER_ORPHAN in finalizers:
        return PropagationPolicy.ORPHAN
    if FINALIZER_FOREGROUND in finalizers:
        return PropagationPolicy.FOREGROUND
    return PropagationPolicy.BACKGROUND


def decide(obj: Mapping[str, Any], classified: Classified, *, has_dependents: bool,
           dependent_deleting_dependents: bool) -> Decision:
    """What to do with ``obj`` (which has owner references) given its classified references.

    Args:
        obj: the object as the store holds it now.
        classified: its owner references, classified.
        has_dependents: whether other objects name it as their owner.
        dependent_deleting_dependents: whether one of those is deleting its own dependents.
    """
    if classified.solid:
        gone = tuple(r.uid for r in classified.dangling + classified.waiting)
        if gone:
            return Decision(Action.REMOVE_REFERENCES, remove_uids=gone)
        return Decision(Action.NOTHING)
    if classified.waiting and has_dependents:
        return Decision(Action.DELETE, policy=PropagationPolicy.FOREGROUND,
                        unblock_first=dependent_deleting_dependents)
    return Decision(Action.DELETE, policy=deletion_policy(obj))


def without_owner_references(obj: Mapping[str, Any], uids: Iterable[str]) -> Obj | None:
    """A copy of ``obj`` without the owner references to ``uids``; None if it has none."""
    drop = set(uids)
    refs = list((obj.get("metadata") or {}).get("ownerReferences") or ())
    kept = [r for r in refs if not (isinstance(r, Mapping) and r.get("uid") in drop)]
    if len(kept) == len(refs):
        return None
    new: Obj = thaw(obj)
    if kept:
        new["metadata"]["ownerReferences"] = thaw(kept)
    else:
        new["metadata"].pop("ownerReferences", None)
    return new


def with_unblocked_references(obj: Mapping[str, Any]) -> Obj | None:
    """A copy of ``obj`` whose owner references all have ``blockOwnerDeletion`` false."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or ()
    if not any(isinstance(r, Mapping) and r.get("blockOwnerDeletion") for r in refs):
        return None
    new: Obj = thaw(obj)
    for ref in new["metadata"]["ownerReferences"]:
        if isinstance(ref, dict) and ref.get("blockOwnerDeletion"):
            ref["blockOwnerDeletion"] = False
    return new


def without_finalizer(obj: Mapping[str, Any], finalizer: str) -> Obj | None:
    """A copy of ``obj`` without ``finalizer`` in ``metadata.finalizers``; None if absent."""
    finalizers = list((obj.get("metadata") or {}).get("finalizers") or ())
    if finalizer not in finalizers:
        return None
    new: Obj = thaw(obj)
    kept = [f for f in finalizers if f != finalizer]
    if kept:
        new["metadata"]["finalizers"] = kept
    else:
        new["metadata"].pop("finalizers", None)
    return new

"""The ownerReferences graph the garbage collector works from, as a pure data structure.

Every object the collector's informers show is a node, keyed by uid, holding
the object's identity, its owner references, whether it is being deleted,
its finalizers, and the uids of its dependents (the nodes whose owner
references name it). An owner named by a reference but not seen (yet) gets
a *virtual* node built from the reference: its existence is unknown until
the collector reads it from the store.

Writes are three calls, each applied at once (nothing awaits inside), and
each returning ``Changes``: the uids the collector must look at next.

- ``upsert(obj)``: an object was added or changed. A new virtual owner is
  to be verified; a dependent whose reference disagrees with its owner's
  identity (kind, name, another namespace) or whose owner is waiting for
  its dependents is to be checked; an owner losing a reference while
  waiting for its dependents is to be checked again. The transitions of
  the object itself: starting deletion with the ``orphan`` finalizer asks
  for its dependents to be orphaned; starting deletion with
  ``foregroundDeletion`` marks it *deleting dependents* and asks for each
  dependent and itself to be checked.
- ``remove(obj)``: an object was deleted. Its node goes (it stays as a
  virtual node while dependents still name it); its dependents are to be
  checked, and so is each owner that is deleting dependents.
- ``remove_virtual(identity)``: the collector found no object with that
  identity in the store. Treated as a deletion, except that a node whose
  known identity disagrees stays: only the dependents whose references name
  the missing identity are to be checked (and a virtual node is renamed
  after a reference naming an identity not yet found missing, to be
  verified again).

Invariant: every owner reference of every node names a node (observed or
virtual) that lists it among its dependents, and every dependent listed
has a reference to its owner. A virtual node no dependent names is dropped.

Dependents are kept in insertion order, and ``Changes`` lists uids in the
order they were found, so the same events always give the same output.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from controllers.api.deletion import FINALIZER_FOREGROUND, FINALIZER_ORPHAN

__all__ = [
    "Changes",
    "Graph",
    "NodeView",
    "ObjectIdentity",
    "OwnerReference",
    "api_group",
    "identity_of",
    "owner_references",
]


def api_group(api_version: str) -> str:
    """The group of ``apps/v1`` (``apps``); ``""`` for ``v1``."""
    return api_version.rpartition("/")[0]


@dataclass(frozen=True, slots=True)
class ObjectIdentity:
    """Who an object is: enough to read it from the store and to compare it with references."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where} ({self.uid})"


@dataclass(frozen=True, slots=True)
class OwnerReference:
    """One entry of ``metadata.ownerReferences``."""

    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool = False
    block_owner_deletion: bool = False

    @classmethod
    def from_dict(cls, ref: Mapping[str, Any]) -> OwnerReference | None:
        """The reference in ``ref``, or None if it lacks a uid."""
        uid = ref.get("uid")
        if not isinstance(uid, str) or not uid:
            return None
        return cls(str(ref.get("apiVersion") or ""), str(ref.get("kind") or ""),
                   str(ref.get("name") or ""), uid, ref.get("controller") is True,
                   ref.get("blockOwnerDeletion") is True)

    def names(self, identity: ObjectIdentity) -> bool:
        """Whether this reference's group, kind and name are ``identity``'s (uid aside)."""
        return (api_group(self.api_version) == api_group(identity.api_version)
                and self.kind == identity.kind and self.name == identity.name)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    m = obj.get("metadata")
    return m if isinstance(m, Mapping) else {}


def identity_of(obj: Mapping[str, Any]) -> ObjectIdentity | None:
    """The identity of ``obj``, or None if it has no uid."""
    m = _meta(obj)
    uid = m.get("uid")
    if not isinstance(uid, str) or not uid:
        return None
    return ObjectIdentity(str(obj.get("apiVersion") or ""), str(obj.get("kind") or ""),
                          str(m.get("namespace") or ""), str(m.get("name") or ""), uid)


def owner_references(obj: Mapping[str, Any]) -> tuple[OwnerReference, ...]:
    """The owner references of ``obj`` that name a uid, in order, one per uid."""
    refs = _meta(obj).get("ownerReferences")
    out: dict[str, OwnerReference] = {}
    for raw in refs if isinstance(refs, (list, tuple)) else ():
        ref = OwnerReference.from_dict(raw) if isinstance(raw, Mapping) else None
        if ref is not None and ref.uid not in out:
            out[ref.uid] = ref
    return tuple(out.values())


def _finalizers(obj: Mapping[str, Any]) -> tuple[str, ...]:
    found = _meta(obj).get("finalizers")
    return tuple(f for f in found if isinstance(f, str)) if isinstance(found, (list, tuple)) \
        else ()


@dataclass(frozen=True, slots=True)
class NodeView:
    """A snapshot of one node."""

    identity: ObjectIdentity
    owners: tuple[OwnerReference, ...]
    dependents: tuple[str, ...]
    observed: bool
    being_deleted: bool
    deleting_dependents: bool
    finalizers: tuple[str, ...]

    @property
    def virtual(self) -> bool:
        """Known only from references: whether the object exists is not known."""
        return not self.observed

    def owner(self, uid: str) -> OwnerReference | None:
        """This node's reference to ``uid``, if any."""
        for ref in self.owners:
            if ref.uid == uid:
                return ref
        return None


@dataclass(frozen=True, slots=True)
class Changes:
    """What a graph write asks the collector to do next (uids, in order, no repeats)."""

    attempt_to_delete: tuple[str, ...] = ()
    attempt_to_orphan: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.attempt_to_delete or self.attempt_to_orphan)


class _Node:
    __slots__ = (
        "absent",
        "being_deleted",
        "deleting_dependents",
        "dependents",
        "finalizers",
        "identity",
        "observed",
        "owners",
    )

    def __init__(self, identity: ObjectIdentity, *, observed: bool) -> None:
        self.identity = identity
        self.owners: tuple[OwnerReference, ...] = ()
        # uid -> None: an ordered set.
        self.dependents: dict[str, None] = {}
        self.observed = observed
        self.being_deleted = False
        self.deleting_dependents = False
        self.finalizers: tuple[str, ...] = ()
        # Virtual only: the identities the store was found not to hold.
        self.absent: tuple[ObjectIdentity, ...] = ()

    def view(self) -> NodeView:
        return NodeView(self.identity, self.owners, tuple(self.dependents), self.observed,
                        self.being_deleted, self.deleting_dependents, self.finalizers)


class _Collect:
    """Builds a ``Changes`` without repeats, in the order things were asked for."""

    def __init__(self) -> None:
        self.delete: dict[str, None] = {}
        self.orphan: dict[str, None] = {}

    def changes(self) -> Changes:
        return Changes(tuple(self.delete), tuple(self.orphan))


class Graph:
    """Nodes by uid with owner and dependent links (see the module docstring)."""

    def __init__(self) -> None:
        self._nodes: dict[str, _Node] = {}

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, uid: object) -> bool:
        return uid in self._nodes

    def uids(self) -> list[str]:
        """Every node's uid, in insertion order."""
        return list(self._nodes)

    def node(self, uid: str) -> NodeView | None:
        """A snapshot of the node ``uid``, if there is one."""
        found = self._nodes.get(uid)
        return found.view() if found is not None else None

    def dependents(self, uid: str) -> list[NodeView]:
        """Snapshots of the dependents of ``uid`` that have nodes, in insertion order."""
        found = self._nodes.get(uid)
        if found is None:
            return []
        return [self._nodes[d].view() for d in found.dependents if d in self._nodes]

    def blocking_dependents(self, uid: str) -> list[NodeView]:
        """The dependents of ``uid`` whose reference to it has ``blockOwnerDeletion``."""
        out = []
        for dep in self.dependents(uid):
            ref = dep.owner(uid)
            if ref is not None and ref.block_owner_deletion:
                out.append(dep)
        return out

    # -- writes ----------------------------------------------------------------------
    def upsert(self, obj: Mapping[str, Any]) -> Changes:
        """Record that ``obj`` exists as given (added, changed, or seen in a list)."""
        identity = identity_of(obj)
        if identity is None:
            return Changes()
        out = _Collect()
        m = _meta(obj)
        being_deleted = bool(m.get("deletionTimestamp"))
        finalizers = _finalizers(obj)
        owners = owner_references(obj)
        node = self._nodes.get(identity.uid)
        was_deleting = False
        old_finalizers: tuple[str, ...] = ()
        added: tuple[OwnerReference, ...]
        removed: tuple[OwnerReference, ...]
        changed: tuple[OwnerReference, ...]
        if node is None:
            node = _Node(identity, observed=True)
            self._nodes[identity.uid] = node
            added, removed, changed = owners, (), ()
        else:
            if not node.observed or node.identity != identity:
                # A reference that does not fit what it names now may point at nothing.
                out.delete.update(dict.fromkeys(self._misfits(node.dependents, identity)))
                node.identity = identity
                node.observed = True
                node.absent = ()
            else:
                was_deleting, old_finalizers = node.being_deleted, node.finalizers
            added, removed, changed = _diff(node.owners, owners)
        node.owners = owners
        for ref in removed:
            self._unlink(identity.uid, ref, out)
        for ref in changed:
            owner = self._nodes.get(ref.uid)
            if owner is not None and owner.deleting_dependents:
                out.delete[ref.uid] = None
        for ref in added:
            self._link(node, ref, out)
        node.being_deleted = being_deleted
        node.finalizers = finalizers
        node.deleting_dependents = being_deleted and FINALIZER_FOREGROUND in finalizers
        if being_deleted and FINALIZER_ORPHAN in finalizers and not (
                was_deleting and FINALIZER_ORPHAN in old_finalizers):
            out.orphan[identity.uid] = None
        if node.deleting_dependents and not (
                was_deleting and FINALIZER_FOREGROUND in old_finalizers):
            out.delete.update(dict.fromkeys(node.dependents))
            out.delete[identity.uid] = None
        return out.changes()

    def remove(self, obj: Mapping[str, Any]) -> Changes:
        """Record that ``obj`` was deleted."""
        identity = identity_of(obj)
        if identity is None or identity.uid not in self._nodes:
            return Changes()
        out = _Collect()
        self._drop(identity.uid, out)
        return out.changes()

    def remove_virtual(self, identity: ObjectIdentity) -> Changes:
        """Record that the store holds no object ``identity`` (see the module docstring)."""
        node = self._nodes.get(identity.uid)
        if node is None:
            return Changes()
        out = _Collect()
        if node.observed and node.identity != identity:
            naming, _ = self._split_dependents(node, (identity,))
            out.delete.update(dict.fromkeys(naming))
            return out.changes()
        if not node.observed:
            node.absent = (*node.absent, identity)
            naming, others = self._split_dependents(node, node.absent)
            if others:
                out.delete.update(dict.fromkeys(naming))
                ref = self._nodes[others[0]].view().owner(identity.uid)
                if ref is not None:
                    node.identity = _virtual_identity(ref, self._nodes[others[0]].identity)
                out.delete[identity.uid] = None
                return out.changes()
        self._drop(identity.uid, out)
        return out.changes()

    # -- links -----------------------------------------------------------------------
    def _link(self, dependent: _Node, ref: OwnerReference, out: _Collect) -> None:
        owner = self._nodes.get(ref.uid)
        if owner is None:
            owner = _Node(_virtual_identity(ref, dependent.identity), observed=False)
            self._nodes[ref.uid] = owner
            out.delete[ref.uid] = None
        elif owner.observed and not _reference_fits(ref, owner.identity, dependent.identity):
            out.delete[dependent.identity.uid] = None
        if owner.deleting_dependents:
            out.delete[dependent.identity.uid] = None
        owner.dependents[dependent.identity.uid] = None

    def _unlink(self, dependent_uid: str, ref: OwnerReference, out: _Collect) -> None:
        owner = self._nodes.get(ref.uid)
        if owner is None:
            return
        owner.dependents.pop(dependent_uid, None)
        if owner.deleting_dependents:
            out.delete[ref.uid] = None
        if not owner.observed and not owner.dependents:
            self._nodes.pop(ref.uid, None)

    def _drop(self, uid: str, out: _Collect) -> None:
        node = self._nodes[uid]
        for ref in node.owners:
            self._unlink(uid, ref, out)
        node.owners = ()
        out.delete.update(dict.fromkeys(d for d in node.dependents if d != uid))
        node.dependents.pop(uid, None)
        if node.dependents:
            # Its dependents still name it: it stays, as virtual, until they let go.
            node.observed = False
            node.being_deleted = node.deleting_dependents = False
            node.finalizers = ()
            node.absent = ()
        else:
            self._nodes.pop(uid, None)

    def _misfits(self, dependents: Iterable[str], owner: ObjectIdentity) -> list[str]:
        """The ``dependents`` whose reference to ``owner``'s uid does not fit ``owner``."""
        out = []
        for dep_uid in dependents:
            dep = self._nodes.get(dep_uid)
            ref = dep.view().owner(owner.uid) if dep is not None else None
            if dep is not None and ref is not None and not _reference_fits(ref, owner,
                                                                            dep.identity):
                out.append(dep_uid)
        return out

    def _split_dependents(self, node: _Node, identities: tuple[ObjectIdentity, ...]
                          ) -> tuple[list[str], list[str]]:
        """The dependents whose reference names one of ``identities``, and the others."""
        naming: list[str] = []
        others: list[str] = []
        for dep_uid in node.dependents:
            dep = self._nodes.get(dep_uid)
            ref = dep.view().owner(node.identity.uid) if dep is not None else None
            if ref is None:
                continue
            (naming if any(ref.names(i) for i in identities) else others).append(dep_uid)
        return naming, others


def _diff(old: Iterable[OwnerReference], new: Iterable[OwnerReference]
          ) -> tuple[tuple[OwnerReference, ...], tuple[OwnerReference, ...],
                     tuple[OwnerReference, ...]]:
    """References added, removed, and changed (same uid, other fields) from ``old`` to ``new``."""
    before = {ref.uid: ref for ref in old}
    after = {ref.uid: ref for ref in new}
    added = tuple(ref for uid, ref in after.items() if uid not in before)
    removed = tuple(ref for uid, ref in before.items() if uid not in after)
    changed = tuple(ref for uid, ref in after.items() if uid in before and before[uid] != ref)
    return added, removed, changed


def _virtual_identity(ref: OwnerReference, dependent: ObjectIdentity) -> ObjectIdentity:
    # The owner's scope is not known here: the dependent's namespace is kept, and
    # whoever reads the owner drops it for a cluster-scoped kind.
    return ObjectIdentity(ref.api_version, ref.kind, dependent.namespace, ref.name, ref.uid)


def _reference_fits(ref: OwnerReference, owner: ObjectIdentity,
                    dependent: ObjectIdentity) -> bool:
    """Whether ``ref`` names ``owner`` as it is, from where ``dependent`` lives."""
    return ref.names(owner) and owner.namespace in ("", dependent.namespace)

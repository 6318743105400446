"""``Indexer``: a ``Store`` with secondary indexes, the cache behind every informer.

Three kinds of string are in play:

- a *key* names one object (from the key function, ``namespace/name``);
- an *index name* names an index function (``"namespace"``, or your own);
- an *indexed value* is one of the values an index function returns for an
  object; ``by_index(name, value)`` lists the objects that produced it.

Concurrency: the indexer belongs to one asyncio event loop. No method awaits,
so each call (every mutation with all its index updates) runs to completion
before any other task observes the indexer; there is no lock to take. Do not
share an indexer between threads.

Invariant: for every index name ``n`` and key ``k`` stored under ``obj``,
``k`` is in ``indices[n][v]`` exactly for the values ``v`` in
``indexers[n](obj)``, and no index holds an empty set.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from controllers.api.objects import Obj
from controllers.informers.store import (
    KeyFunc,
    meta_namespace_key_func,
    object_namespace,
)

__all__ = ["NAMESPACE_INDEX", "IndexFunc", "Indexer", "meta_namespace_index_func"]

IndexFunc = Callable[[Any], builtins.list[str]]
"""The indexed values of an object (may be empty)."""

NAMESPACE_INDEX = "namespace"
"""The name of the index every ``Indexer`` has by default."""


def meta_namespace_index_func(obj: Mapping[str, Any]) -> builtins.list[str]:
    """``[namespace]`` of a namespaced object, ``[""]`` for a cluster-scoped one."""
    return [object_namespace(obj)]


class Indexer:
    """A key-ordered store of objects with named secondary indexes (see the module docstring)."""

    def __init__(
        self,
        key_func: KeyFunc = meta_namespace_key_func,
        indexers: Mapping[str, IndexFunc] | None = None,
    ) -> None:
        self.key_func = key_func
        self._items: dict[str, Obj] = {}
        self._indexers: dict[str, IndexFunc] = {NAMESPACE_INDEX: meta_namespace_index_func}
        # index name -> indexed value -> keys.
        self._indices: dict[str, dict[str, set[str]]] = {NAMESPACE_INDEX: {}}
        if indexers:
            self.add_indexers(indexers)

    # -- Store -----------------------------------------------------------------------
    def add(self, obj: Obj) -> None:
        key = self.key_func(obj)
        old = self._items.get(key)
        self._items[key] = obj
        self._update_indices(old, obj, key)

    def update(self, obj: Obj) -> None:
        self.add(obj)

    def delete(self, obj: Obj) -> None:
        self.delete_by_key(self.key_func(obj))

    def delete_by_key(self, key: str) -> None:
        """Remove the object under ``key`` (no error if absent)."""
        old = self._items.pop(key, None)
        if old is not None:
            self._update_indices(old, None, key)

    def list(self) -> builtins.list[Obj]:
        return [self._items[k] for k in sorted(self._items)]

    def list_keys(self) -> builtins.list[str]:
        return sorted(self._items)

    def get(self, obj: Obj) -> Obj | None:
        return self._items.get(self.key_func(obj))

    def get_by_key(self, key: str) -> Obj | None:
        return self._items.get(key)

    def replace(self, objs: Iterable[Obj], resource_version: str) -> None:
        items = {self.key_func(o): o for o in objs}
        self._items = items
        self._indices = {name: {} for name in self._indexers}
        for key in sorted(items):
            self._update_indices(None, items[key], key)

    def resync(self) -> None:
        """Nothing to do: a cache has no queue."""

    def __len__(self) -> int:
        return len(self._items)

    # -- indexes ---------------------------------------------------------------------
    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        """Add index functions, indexing the objects already stored.

        Raises:
            ValueError: an index of that name exists.
        """
        for name in sorted(indexers):
            if name in self._indexers:
                raise ValueError(f"indexer conflict: {name!r} is already defined")
        for name in sorted(indexers):
            self._indexers[name] = indexers[name]
            self._indices[name] = {}
            for key in sorted(self._items):
                self._index_one(name, self._items[key], key)

    def get_indexers(self) -> dict[str, IndexFunc]:
        """The index functions by name (a copy)."""
        return dict(self._indexers)

    def index(self, index_name: str, obj: Obj) -> builtins.list[Obj]:
        """Objects sharing any indexed value with ``obj`` under ``index_name``."""
        func = self._indexer(index_name)
        keys: set[str] = set()
        for value in func(obj):
            keys |= self._indices[index_name].get(value, set())
        return [self._items[k] for k in sorted(keys)]

    def index_keys(self, index_name: str, indexed_value: str) -> builtins.list[str]:
        """Keys of the objects with ``indexed_value`` under ``index_name``, sorted."""
        self._indexer(index_name)
        return sorted(self._indices[index_name].get(indexed_value, ()))

    def by_index(self, index_name: str, indexed_value: str) -> builtins.list[Obj]:
        """Objects with ``indexed_value`` under ``index_name``, in key order."""
        return [self._items[k] for k in self.index_keys(index_name, indexed_value)]

    def list_index_func_values(self, index_name: str) -> builtins.list[str]:
        """Every indexed value currently present under ``index_name``, sorted."""
        self._indexer(index_name)
        return sorted(self._indices[index_name])

    def _indexer(self, index_name: str) -> IndexFunc:
        func = self._indexers.get(index_name)
        if func is None:
            raise KeyError(f"index {index_name!r} does not exist")
        return func

    def _update_indices(self, old: Obj | None, new: Obj | None, key: str) -> None:
        for name in self._indexers:
            if old is not None:
                self._unindex_one(name, old, key)
            if new is not None:
                self._index_one(name, new, key)

    def _index_one(self, name: str, obj: Obj, key: str) -> None:
        index = self._indices[name]
        for value in self._indexers[name](obj):
            index.setdefault(value, set()).add(key)

    def _unindex_one(self, name: str, obj: Obj, key: str) -> None:
        index = self._indices[name]
        for value in self._indexers[name](obj):
            keys = index.get(value)
            if keys is None:
                continue
            keys.discard(key)
            if not keys:
                del index[value]


if TYPE_CHECKING:
    from controllers.informers.store import Store

    def _indexer_is_store(indexer: Indexer) -> Store:
        return indexer

"""``Lister``: typed reads of an informer's cache, by selector, namespace and name.

Objects returned are the cache's own: never mutate them (``store.thaw`` for a
copy). Reads are synchronous and never reach the store.
"""

from __future__ import annotations

import builtins

from controllers.api.errors import NotFound
from controllers.api.objects import Obj
from controllers.api.selectors import LabelSelector
from controllers.informers.indexer import NAMESPACE_INDEX, Indexer
from controllers.informers.store import object_labels

__all__ = ["Lister"]


class Lister:
    """Reads of one resource's cache."""

    def __init__(self, indexer: Indexer, resource: str = "") -> None:
        self.indexer = indexer
        self.resource = resource

    def list(
        self, selector: str | LabelSelector | None = None, *, namespace: str | None = None
    ) -> builtins.list[Obj]:
        """Objects matching the label ``selector`` (all if None), in one namespace or all."""
        sel = _selector(selector)
        objs = (self.indexer.list() if namespace is None
                else self.indexer.by_index(NAMESPACE_INDEX, namespace))
        return [o for o in objs if sel.matches(object_labels(o))]

    def get(self, namespace: str, name: str) -> Obj:
        """The object ``namespace/name`` (``namespace`` "" for cluster-scoped).

        Raises:
            NotFound: the cache does not hold it.
        """
        key = f"{namespace}/{name}" if namespace else name
        obj = self.indexer.get_by_key(key)
        if obj is None:
            raise NotFound(self.resource, name)
        return obj


def _selector(selector: str | LabelSelector | None) -> LabelSelector:
    if selector is None:
        return LabelSelector.everything()
    if isinstance(selector, str):
        return LabelSelector.parse(selector)
    return selector

"""Informers: client-go's tools/cache on asyncio, over the resource client in ``controllers.api``.

General layout (imports point down only):

- ``factory``: ``SharedInformerFactory``, one informer per resource.
- ``shared_informer``: ``SharedInformer`` (reflector + ``DeltaFIFO`` + cache,
  event handlers, resync, ``has_synced``, ``wait_for_resource_version``).
- ``lister``: ``Lister`` reads of a cache.
- ``reflector``: ``Reflector`` (list, then watch; relist on ``Gone``; backoff).
- ``fifo``: ``DeltaFIFO``, deltas and tombstones.
- ``indexer``, ``store``: the ``Store`` contract, key functions, ``Indexer``,
  read-only views.
"""

from __future__ import annotations

from controllers.informers.factory import SharedInformerFactory
from controllers.informers.fifo import (
    DeletedFinalStateUnknown,
    Delta,
    DeltaFIFO,
    DeltaType,
    FIFOClosedError,
    deletion_handling_key_func,
)
from controllers.informers.indexer import (
    NAMESPACE_INDEX,
    Indexer,
    IndexFunc,
    meta_namespace_index_func,
)
from controllers.informers.lister import Lister
from controllers.informers.reflector import (
    Backoff,
    ListerWatcher,
    ListWatch,
    Reflector,
    StaleListError,
    WatchStream,
)
from controllers.informers.shared_informer import (
    FREEZE_ENV,
    HandlerRegistration,
    ResourceEventHandler,
    ResourceEventHandlerFuncs,
    SharedInformer,
    wait_for_cache_sync,
)
from controllers.informers.store import (
    KeyFunc,
    KeyFuncError,
    Store,
    freeze,
    is_frozen,
    meta_namespace_key_func,
    object_labels,
    object_meta,
    object_name,
    object_namespace,
    object_resource_version,
    split_meta_namespace_key,
    thaw,
)

__all__ = [
    "FREEZE_ENV",
    "NAMESPACE_INDEX",
    "Backoff",
    "DeletedFinalStateUnknown",
    "Delta",
    "DeltaFIFO",
    "DeltaType",
    "FIFOClosedError",
    "HandlerRegistration",
    "IndexFunc",
    "Indexer",
    "KeyFunc",
    "KeyFuncError",
    "ListWatch",
    "Lister",
    "ListerWatcher",
    "Reflector",
    "ResourceEventHandler",
    "ResourceEventHandlerFuncs",
    "SharedInformer",
    "SharedInformerFactory",
    "StaleListError",
    "Store",
    "WatchStream",
    "deletion_handling_key_func",
    "freeze",
    "is_frozen",
    "meta_namespace_index_func",
    "meta_namespace_key_func",
    "object_labels",
    "object_meta",
    "object_name",
    "object_namespace",
    "object_resource_version",
    "split_meta_namespace_key",
    "thaw",
    "wait_for_cache_sync",
]

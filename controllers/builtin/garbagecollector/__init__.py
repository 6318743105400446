"""The garbage collector: cascading deletion along ``metadata.ownerReferences``.

General layout (imports point down only):

- ``controller``: ``GarbageCollector``, the controller plugin (informers,
  work queue keys, reads and writes).
- ``decision``: what to do with one object given its owners' states, pure.
- ``graph``: the ownerReferences graph built from informer events, pure.
"""

from __future__ import annotations

from controllers.builtin.garbagecollector.controller import (
           GarbageCollector,
           collected_resources,
)
from controllers.builtin.garbagecollector.graph import (
           Changes,
           Graph,
           NodeView,
           ObjectIdentity,
)

__all__ = ["Changes", "GarbageCollector", "Graph", "NodeView", "ObjectIdentity",
           "collected_resources"]

"""``SharedInformerFactory``: one ``SharedInformer`` per resource, shared by every controller.

    factory = SharedInformerFactory(Clientset(kv))
    pods = factory.informer_for("pods")          # the same object on every call
    pods.add_event_handler(handler)
    factory.start()
    await factory.wait_for_cache_sync()
    ...
    await factory.shutdown()

Informers asked for after ``start()`` are started by the next ``start()``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from controllers.api.clientset import Clientset
from controllers.clock import Clock, RealClock
from controllers.informers.indexer import IndexFunc
from controllers.informers.lister import Lister
from controllers.informers.reflector import ListWatch
from controllers.informers.shared_informer import SharedInformer

__all__ = ["SharedInformerFactory"]


class SharedInformerFactory:
    """Informers over one ``Clientset``, keyed by resource (see the module docstring)."""

    def __init__(
        self,
        clientset: Clientset,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        namespace: str | None = None,
        freeze_objects: bool | None = None,
    ) -> None:
        self.clientset = clientset
        self.clock: Clock = clock if clock is not None else RealClock()
        self.rng = rng if rng is not None else random.Random()
        self.namespace = namespace
        self.freeze_objects = freeze_objects
        self._informers: dict[str, SharedInformer] = {}

    def informer_for(
        self, resource: str, *, indexers: Mapping[str, IndexFunc] | None = None
    ) -> SharedInformer:
        """The informer of ``resource`` (any name the kind registry accepts).

        ``indexers`` are added to the informer's cache (an index name may be
        given only once per resource).
        """
        client = self.clientset.resource(resource)
        name = client.kind.resource
        informer = self._informers.get(name)
        if informer is None:
            informer = SharedInformer(
                ListWatch(client, self.namespace), clock=self.clock,
                rng=random.Random(self.rng.getrandbits(64)),
                freeze_objects=self.freeze_objects, resource=name)
            self._informers[name] = informer
        if indexers:
            informer.indexer.add_indexers(indexers)
        return informer

    def lister_for(self, resource: str) -> Lister:
        return self.informer_for(resource).lister()

    def informers(self) -> dict[str, SharedInformer]:
        """Every informer made so far, by resource name."""
        return dict(self._informers)

    def start(self) -> None:
        """Start every informer not yet started."""
        for name in sorted(self._informers):
            self._informers[name].start()

    async def wait_for_cache_sync(self) -> dict[str, bool]:
        """Wait until every started informer has synced; resource -> synced."""
        started = [self._informers[n] for n in sorted(self._informers)
                   if self._informers[n].is_started()]
        for informer in started:
            await informer.wait_for_cache_sync()
        return {n: i.has_synced() for n, i in sorted(self._informers.items())}

    async def shutdown(self) -> None:
        """Stop every informer."""
        for name in sorted(self._informers):
            await self._informers[name].stop()

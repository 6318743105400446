"""A ``Clientset``: one store, one clock, one registry, and a ``ResourceClient`` per kind.

    async with kvstore.open(data_dir) as kv:
        api = Clientset(kv)
        await api.ensure_default_namespaces()
        deployments = api.resource("deployments")   # or "deploy", "deployments.apps", "Deployment"
        await deployments.create({...})
"""

from __future__ import annotations

import random
from typing import Any

from controllers.api.client import DEFAULT_NAMESPACES, ResourceClient, ensure_namespaces
from controllers.api.kinds import REGISTRY, KindRegistry
from kvstore.kv import KV
from controllers.api.objects import SystemWallClock, WallClock

__all__ = ["Clientset"]


class Clientset:
    """Resource clients sharing a store, a wall clock, a random source and a kind registry."""

    def __init__(
        self,
        kv: KV,
        *,
        clock: WallClock | None = None,
        rng: random.Random | None = None,
        registry: KindRegistry | None = None,
    ) -> None:
        self.kv = kv
        self.clock: WallClock = clock if clock is not None else SystemWallClock()
        self.rng = rng if rng is not None else random.SystemRandom()
        self.registry = registry if registry is not None else REGISTRY
        self._clients: dict[str, ResourceClient] = {}

    def resource(self, name: str) -> ResourceClient:
        """The client of the kind called ``name`` (any name kubectl accepts).

        Raises:
            BadRequest: no kind has that name.
        """
        kind = self.registry.lookup(name)
        client = self._clients.get(kind.storage_prefix)
        if client is None:
            client = ResourceClient(self.kv, kind, clock=self.clock, rng=self.rng,
                                    registry=self.registry)
            self._clients[kind.storage_prefix] = client
        return client

    def for_object(self, obj: dict[str, Any]) -> ResourceClient:
        """The client of the kind ``obj`` names with ``apiVersion`` and ``kind``."""
        return self.resource(self.registry.for_object(obj).resource)

    async def ensure_default_namespaces(self) -> None:
        """Create ``default`` and ``kube-system`` if they do not exist."""
        await ensure_namespaces(self.kv, DEFAULT_NAMESPACES, clock=self.clock, rng=self.rng,
                                registry=self.registry)

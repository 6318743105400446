"""A toy controller whose reconcile follows a script per key and records every call."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from controllers.controller import DONE, ControllerContext, Result

__all__ = ["FakeInformer", "Outcome", "ToyController"]

Outcome = Result | None | BaseException
"""What one reconcile of a key does: return a result, or raise an exception."""


@dataclass
class ToyController:
    """Reconciles keys by script; ``gate``, when set, holds every reconcile until it opens."""

    name: str = "toy"
    informers: Sequence[str] = ()
    initial_keys: Sequence[str] = ()
    scripts: dict[str, list[Outcome]] = field(default_factory=dict)
    now: Callable[[], float] = lambda: 0.0
    gate: asyncio.Event | None = None
    # (key, time) of every reconcile, in the order they started.
    calls: list[tuple[str, float]] = field(default_factory=list)
    active: set[str] = field(default_factory=set)
    max_active: int = 0
    overlaps: list[str] = field(default_factory=list)
    contexts: list[ControllerContext] = field(default_factory=list)

    def setup(self, context: ControllerContext) -> None:
        self.contexts.append(context)
        for key in self.initial_keys:
            context.enqueue(key)

    def times(self, key: str) -> list[float]:
        return [t for k, t in self.calls if k == key]

    async def reconcile(self, key: str) -> Result | None:
        if key in self.active:
            self.overlaps.append(key)
        self.active.add(key)
        self.max_active = max(self.max_active, len(self.active))
        self.calls.append((key, self.now()))
        try:
            if self.gate is not None:
                await self.gate.wait()
            script = self.scripts.get(key)
            outcome: Outcome = script.pop(0) if script else DONE
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        finally:
            self.active.discard(key)


@dataclass
class FakeInformer:
    """An informer whose sync the test decides."""

    resource: str
    synced: bool = False
    running: bool = False
    stopped: bool = False

    async def run(self) -> None:
        self.running = True
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            self.running = False

    async def stop(self) -> None:
        self.stopped = True

    def has_synced(self) -> bool:
        return self.synced

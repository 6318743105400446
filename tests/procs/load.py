"""Client load for the real-process tests: writers that remember what was acknowledged.

Each writer puts fresh keys (``<prefix>/<writer>/<n>``, value ``<writer>-<n>``)
through its own connection until told to stop. A put that returns is
*acknowledged*: the cluster promised it is durable. A put that fails has an
unknown outcome (the connection broke after sending, or it timed out); it may
or may not be in the store, but nothing else may be.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import kvstore
from kvstore.errors import KvError

__all__ = ["WriteLog", "run_writers"]


@dataclass
class WriteLog:
    """What the writers learned: acknowledged keys, and keys of unknown outcome."""

    acked: dict[str, tuple[str, int]] = field(default_factory=dict)  # key -> (value, revision)
    unknown: set[str] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_acked(self, count: int, *, timeout: float) -> None:
        """Wait until at least ``count`` writes are acknowledged in all."""

        async def enough() -> None:
            while len(self.acked) < count:
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(enough(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(
                f"only {len(self.acked)} of {count} writes acknowledged after {timeout:g} s "
                f"({len(self.unknown)} of unknown outcome)"
            ) from None


async def _writer(endpoints: list[str], prefix: str, wid: int, log: WriteLog,
                  stop: asyncio.Event) -> None:
    n = 0
    async with kvstore.connect(endpoints, timeout=10) as kv:
        while not stop.is_set():
            n += 1
            key, value = f"{prefix}/{wid}/{n:06d}", f"{wid}-{n}"
            try:
                result = await kv.put(key, value)
            except KvError:
                log.unknown.add(key)
                continue
            log.acked[key] = (value, result.header_revision)
            log.changed.set()


def run_writers(endpoints: list[str], prefix: str, count: int, log: WriteLog,
                stop: asyncio.Event) -> list[asyncio.Task[None]]:
    """Start ``count`` writers; they run until ``stop`` is set."""
    return [
        asyncio.create_task(_writer(endpoints, prefix, wid, log, stop), name=f"writer-{wid}")
        for wid in range(count)
    ]

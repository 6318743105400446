"""A watcher's responses on a member, as an async iterator that cancels on close."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from kvstore.mvcc.types import WatchResponse

if TYPE_CHECKING:
    from kvstore.node import Node

__all__ = ["WatchStream"]


class WatchStream:
    """Responses of one watcher on this member; ``aclose()`` (or ``async with``) cancels it."""

    def __init__(self, node: Node, watch_id: int, ready: asyncio.Event) -> None:
        self._hub = node.machine.hub
        self.watch_id = watch_id
        self._ready = ready
        self._closed = False

    def __aiter__(self) -> WatchStream:
        return self

    async def __anext__(self) -> WatchResponse:
        hub = self._hub
        while not self._closed:
            resp = hub.poll(self.watch_id)
            if resp is None:
                self._ready.clear()
                resp = hub.poll(self.watch_id)
            if resp is not None:
                if resp.canceled:
                    self._close()
                return resp
            await self._ready.wait()
        raise StopAsyncIteration

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            self._hub.cancel(self.watch_id)
            # Wake a reader parked in ``__anext__`` so it sees the close.
            self._ready.set()

    async def aclose(self) -> None:
        """Cancel the watch."""
        self._close()

    async def __aenter__(self) -> WatchStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._close()

    def __del__(self) -> None:
        self._close()

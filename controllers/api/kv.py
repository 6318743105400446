"""The part of the key-value API the object API uses, as a ``typing.Protocol``.

``KV`` names only the coroutines every store handle offers: an embedded
store (``kvstore.open``), a member (``kvstore.Node``) and a remote client
(``kvstore.connect``). The object API needs nothing else, so it runs on all
three, and on any store that offers the same methods.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Protocol

from kvstore.mvcc.request import Compare, RequestOp
from kvstore.mvcc.types import (
    KeyValue,
    RangeResult,
    SortOrder,
    SortTarget,
    TxnResult,
    WatchFilter,
    WatchResponse,
)

__all__ = ["KV", "close_watch"]


class KV(Protocol):
    """Range, txn and watch: the key-value coroutines shared by ``Node`` and ``Client``."""

    async def get(
        self, key: bytes | str, *, revision: int = 0, serializable: bool = False
    ) -> KeyValue | None: ...

    async def range(
        self,
        key: bytes | str,
        range_end: bytes | str | None = None,
        *,
        prefix: bool = False,
        limit: int = 0,
        revision: int = 0,
        keys_only: bool = False,
        count_only: bool = False,
        sort_order: SortOrder = SortOrder.NONE,
        sort_target: SortTarget = SortTarget.KEY,
        serializable: bool = False,
    ) -> RangeResult: ...

    async def txn(
        self,
        compare: Sequence[Compare] = (),
        success: Sequence[RequestOp] = (),
        failure: Sequence[RequestOp] = (),
    ) -> TxnResult: ...

    async def watch(
        self,
        key: bytes | str,
        range_end: bytes | str | None = None,
        *,
        prefix: bool = False,
        start_revision: int = 0,
        prev_kv: bool = False,
        filters: Sequence[WatchFilter] = (),
        progress_notify: bool = False,
    ) -> AsyncIterator[WatchResponse]: ...


async def close_watch(stream: AsyncIterator[WatchResponse]) -> None:
    """Cancel a store watch (every store handle's stream has ``aclose``)."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


if TYPE_CHECKING:
    # Both store handles must satisfy the protocol; mypy checks these.
    from kvstore.client import Client
    from kvstore.node import Node

    def _node_is_kv(node: Node) -> KV:
        return node

    def _client_is_kv(client: Client) -> KV:
        return client

"""The key-value API as a ``typing.Protocol``: what every store handle offers.

An embedded store (``kvstore.open``), a member (``kvstore.Node``) and a
remote client (``kvstore.connect``) all satisfy ``KV`` (mypy checks both
classes below), so code written against it (the recipes, the controllers'
object API) runs on any of them and on any fake with the same methods.

A watch is registered when ``watch`` returns, before the first iteration;
close the stream with ``close_stream`` (or its ``aclose``) to cancel it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Protocol

from kvstore.mvcc.lease import LeaseStatus
from kvstore.mvcc.request import Compare, RequestOp
from kvstore.mvcc.types import (
    DeleteRangeResult,
    KeyValue,
    LeaseGrantResult,
    LeaseRevokeResult,
    PutResult,
    RangeResult,
    SortOrder,
    SortTarget,
    TxnResult,
    WatchFilter,
    WatchResponse,
)

__all__ = ["KV", "close_stream"]


class KV(Protocol):
    """The key-value coroutines shared by ``Node`` and ``Client``."""

    async def put(
        self, key: bytes | str, value: bytes | str, *, lease: int = 0, prev_kv: bool = False
    ) -> PutResult: ...

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

    async def delete(
        self,
        key: bytes | str,
        range_end: bytes | str | None = None,
        *,
        prefix: bool = False,
        prev_kv: bool = False,
    ) -> DeleteRangeResult: ...

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

    async def lease_grant(self, ttl: int, *, lease_id: int = 0) -> LeaseGrantResult: ...

    async def lease_revoke(self, lease_id: int) -> LeaseRevokeResult: ...

    async def lease_keepalive(self, lease_id: int) -> int: ...

    async def lease_time_to_live(self, lease_id: int, *, keys: bool = False) -> LeaseStatus: ...


async def close_stream(stream: AsyncIterator[WatchResponse]) -> None:
    """Cancel a watch now rather than when its stream is collected.

    Raises:
        TypeError: ``stream`` is not a watch stream (it has no ``aclose``).
    """
    aclose = getattr(stream, "aclose", None)
    if aclose is None:
        raise TypeError(f"{stream!r} is not a watch stream")
    await aclose()


if TYPE_CHECKING:
    # Both store handles must satisfy the protocol; mypy checks these.
    from kvstore.client import Client
    from kvstore.node import Node

    def _node_is_kv(node: Node) -> KV:
        return node

    def _client_is_kv(client: Client) -> KV:
        return client

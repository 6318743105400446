"""The key-value API the recipes are built on, as a ``typing.Protocol``.

``KV`` lists only the public coroutines that every store handle offers: an
embedded store (``kvstore.open``), a member (``kvstore.Node``) and a remote
client (``kvstore.connect``). A recipe that needs nothing else runs on all
three, and on any fake that offers the same methods.

Two rules for callers of ``watch``: the watch is registered when the
coroutine returns, before the first iteration, so the stream must be iterated
and then closed with ``close_stream`` (a stream that is never iterated never
runs its clean-up); and a watch from a compacted revision fails with
``Compacted``, which the helpers below treat as "look again".
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Protocol

from kvstore.errors import InvariantError
from kvstore.mvcc.lease import LeaseStatus
from kvstore.mvcc.request import Compare, RequestOp
from kvstore.mvcc.types import (
    DeleteRangeResult,
    KeyValue,
    LeaseGrantResult,
    LeaseRevokeResult,
    PutResult,
    RangeResult,
    Response,
    SortOrder,
    SortTarget,
    TxnResult,
    WatchFilter,
    WatchResponse,
)

__all__ = ["KV", "close_stream", "range_response"]


class KV(Protocol):
    """The key-value coroutines shared by ``Node`` and ``Client`` (see ``kvstore.client``)."""

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
    """Close a watch stream: cancels the watch on the member."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


def range_response(resp: Response) -> RangeResult:
    """``resp`` as the ``RangeResult`` a txn's range operation must have produced.

    Raises:
        InvariantError: the store answered a range with something else.
    """
    if not isinstance(resp, RangeResult):
        raise InvariantError(f"expected a RangeResult in the txn answer, got {type(resp).__name__}")
    return resp


if TYPE_CHECKING:
    # Both store handles must satisfy the protocol; mypy checks these.
    from kvstore.client import Client
    from kvstore.node import Node

    def _node_is_kv(node: Node) -> KV:
        return node

    def _client_is_kv(client: Client) -> KV:
        return client

"""The replicated state machine: revisioned key space, watch hub and leases (etcd semantics).

General layout (imports point down only):

- ``machine``: ``KVStateMachine``, what the node driver and the simulator
  drive: ``apply(index, data)`` per committed entry, snapshots, hashes.
- ``command``: requests as msgpack bytes for the Raft log.
- ``store``: ``KVStore``, the key space: range, put, delete-range, txn,
  compact, lease revoke, hash; ``txn`` chooses a txn's path; ``changelog``
  keeps every write after the compact revision for watchers and compaction.
- ``watch``: ``WatchHub``, exactly-once ordered delivery to watchers.
- ``lease``: ``Lessor``, the lease table and leader-only deadlines.
- ``snapshot``: the chunked snapshot stream.
- ``index``, ``keys``, ``request``, ``types``: the key index, key ranges,
  requests and their limits, result values.
"""

from __future__ import annotations

from kvstore.mvcc.command import CommandType, decode, encode, encode_put
from kvstore.mvcc.keys import ALL_KEYS, prefix_end
from kvstore.mvcc.lease import MAX_TTL_SECONDS, MIN_TTL_SECONDS, LeaseStatus, Lessor
from kvstore.mvcc.machine import ApplyResult, KVStateMachine
from kvstore.mvcc.request import (
    CompactRequest,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    LeaseGrantRequest,
    LeaseRevokeRequest,
    Limits,
    PutRequest,
    RangeRequest,
    Request,
    RequestOp,
    TxnRequest,
    compare,
    op_delete,
    op_put,
    op_range,
    op_txn,
)
from kvstore.mvcc.store import KVStore
from kvstore.mvcc.types import (
    CompactResult,
    DeleteRangeResult,
    Event,
    EventType,
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
from kvstore.mvcc.watch import OnReady, WatchHub

__all__ = [
    "ALL_KEYS",
    "ApplyResult",
    "CommandType",
    "CompactRequest",
    "CompactResult",
    "Compare",
    "CompareResult",
    "CompareTarget",
    "DeleteRangeRequest",
    "DeleteRangeResult",
    "Event",
    "EventType",
    "KVStateMachine",
    "KVStore",
    "KeyValue",
    "LeaseGrantRequest",
    "LeaseGrantResult",
    "LeaseRevokeRequest",
    "LeaseRevokeResult",
    "LeaseStatus",
    "Lessor",
    "Limits",
    "MAX_TTL_SECONDS",
    "MIN_TTL_SECONDS",
    "OnReady",
    "PutRequest",
    "PutResult",
    "RangeRequest",
    "RangeResult",
    "Request",
    "RequestOp",
    "Response",
    "SortOrder",
    "SortTarget",
    "TxnRequest",
    "TxnResult",
    "WatchFilter",
    "WatchHub",
    "WatchResponse",
    "compare",
    "decode",
    "encode",
    "encode_put",
    "op_delete",
    "op_put",
    "op_range",
    "op_txn",
    "prefix_end",
]

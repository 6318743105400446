"""Values the MVCC store hands out: key-values, watch events and results.

Every value is a frozen, slotted dataclass; the store never mutates one it
has handed out, so results may be shared between callers and watchers.

``KeyValue`` follows etcd's ``mvccpb.KeyValue``. A deletion is recorded as a
*tombstone*: ``KeyValue(key, b"", 0, delete_revision, 0, 0)`` (``version ==
0``), which is also the ``kv`` of a ``DELETE`` watch event, as in etcd. Reads
never return tombstones.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Union

__all__ = [
    "CompactResult",
    "DeleteRangeResult",
    "Event",
    "EventType",
    "KeyValue",
    "LeaseGrantResult",
    "LeaseRevokeResult",
    "PutResult",
    "RangeResult",
    "Response",
    "SortOrder",
    "SortTarget",
    "TxnResult",
    "WatchFilter",
    "WatchResponse",
    "new_key_value",
    "new_put_result",
]


@dataclass(frozen=True, slots=True)
class KeyValue:
    """One version of one key.

    ``create_revision`` is the revision that created the current generation of
    the key, ``mod_revision`` the revision of this version, ``version`` counts
    the puts since creation (1 for the first), ``lease`` the attached lease id
    (0 for none).
    """

    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int


@dataclass(slots=True)
class _KeyValueBuilder:
    # Same slots, in the same order, as KeyValue, but not frozen: building one
    # and re-labelling it as a KeyValue costs ~0.8 us instead of ~2 us for the
    # frozen __init__ (which goes through object.__setattr__ per field). This
    # is on every write's path.
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int


def new_key_value(
    key: bytes, value: bytes, create_revision: int, mod_revision: int, version: int, lease: int
) -> KeyValue:
    """Build a ``KeyValue`` on the write path (equal to ``KeyValue(...)``, faster)."""
    kv = _KeyValueBuilder(key, value, create_revision, mod_revision, version, lease)
    kv.__class__ = KeyValue  # type: ignore[assignment]
    return kv  # type: ignore[return-value]


class EventType(enum.IntEnum):
    """What happened to a key (etcd's ``mvccpb.Event.EventType``)."""

    PUT = 0
    DELETE = 1


@dataclass(frozen=True, slots=True)
class Event:
    """One change to one key, as a watcher sees it.

    For ``DELETE`` the ``kv`` is the tombstone (key and ``mod_revision`` set).
    ``prev_kv`` is the key's previous live version, given only to watchers
    that asked for it (``None`` when there was none).
    """

    type: EventType
    kv: KeyValue
    prev_kv: KeyValue | None = None


class SortOrder(enum.IntEnum):
    """Order of a range's results (``NONE`` is ascending by key)."""

    NONE = 0
    ASCEND = 1
    DESCEND = 2


class SortTarget(enum.IntEnum):
    """Field a range sorts on."""

    KEY = 0
    VERSION = 1
    CREATE = 2
    MOD = 3
    VALUE = 4


class WatchFilter(enum.IntEnum):
    """Event types a watcher asks not to receive."""

    NOPUT = 0
    NODELETE = 1


@dataclass(frozen=True, slots=True)
class RangeResult:
    """The answer to a range.

    ``count`` is the number of keys in the range before ``limit`` was applied;
    ``more`` says that ``limit`` cut the answer short.
    """

    kvs: tuple[KeyValue, ...]
    count: int
    more: bool
    header_revision: int


@dataclass(frozen=True, slots=True)
class PutResult:
    """The answer to a put; ``prev_kv`` only when asked for and the key existed."""

    header_revision: int
    prev_kv: KeyValue | None = None


@dataclass(slots=True)
class _PutResultBuilder:
    # See _KeyValueBuilder: every put returns one of these.
    header_revision: int
    prev_kv: KeyValue | None


def new_put_result(header_revision: int, prev_kv: KeyValue | None) -> PutResult:
    """Build a ``PutResult`` on the write path (equal to ``PutResult(...)``, faster)."""
    result = _PutResultBuilder(header_revision, prev_kv)
    result.__class__ = PutResult  # type: ignore[assignment]
    return result  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class DeleteRangeResult:
    """The answer to a delete-range: how many keys went, and (if asked) their last versions."""

    deleted: int
    header_revision: int
    prev_kvs: tuple[KeyValue, ...] = ()


@dataclass(frozen=True, slots=True)
class TxnResult:
    """The answer to a txn: which branch ran and one response per operation of it."""

    succeeded: bool
    responses: tuple[Response, ...]
    header_revision: int


@dataclass(frozen=True, slots=True)
class CompactResult:
    """The answer to a compaction."""

    header_revision: int
    compact_revision: int


@dataclass(frozen=True, slots=True)
class LeaseGrantResult:
    """The granted lease: its id and TTL in seconds (raised to the minimum TTL if needed)."""

    id: int
    ttl: int
    header_revision: int


@dataclass(frozen=True, slots=True)
class LeaseRevokeResult:
    """The answer to a lease revoke: how many attached keys were deleted."""

    deleted: int
    header_revision: int


Response = Union[
    RangeResult,
    PutResult,
    DeleteRangeResult,
    TxnResult,
    CompactResult,
    LeaseGrantResult,
    LeaseRevokeResult,
]
"""Any answer the state machine gives to an applied request."""


@dataclass(frozen=True, slots=True)
class WatchResponse:
    """A batch of events for one watcher, all of whole revisions, in revision order.

    ``header_revision``: the watcher has now seen every matching event up to
    this revision. A response with no events and ``canceled=False`` is a
    progress notification. ``canceled=True`` is the watcher's last response;
    ``compact_revision`` is then set if compaction overtook it.
    """

    watch_id: int
    events: tuple[Event, ...]
    header_revision: int
    compact_revision: int = 0
    canceled: bool = False

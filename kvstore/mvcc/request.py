"""Requests the state machine applies, their limits, and their static checks.

Requests are frozen dataclasses holding ``bytes`` keys; the ``op_*`` and
``compare`` builders accept ``str`` too (like etcd's ``clientv3.OpPut`` and
``clientv3.Compare``). ``check_request`` rejects a request that could never
apply, before anything is changed:

- an empty key, a key above ``Limits.max_key_bytes`` or a value above
  ``Limits.max_value_bytes`` (``TooLarge``);
- a txn whose compare, success or failure list (at any nesting level) holds
  more than ``Limits.max_txn_ops`` entries (``TooManyOps``);
- a request whose keys, range ends and values add up to more than
  ``Limits.max_request_bytes`` (``TooLarge``);
- a txn branch that puts the same key twice, or puts a key that one of its
  delete-ranges covers (``InvalidRequest``), as etcd refuses; the success and
  failure branches of a nested txn may overlap each other, as only one runs.

Limits are part of the replicated configuration: every member must use the
same ones, or members could disagree on which requests fail. etcd has no key
limit apart from its 1.5 MiB request limit; ours is 32 KiB, because keys are
compared on every index operation and held once per key in memory.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Union

from kvstore.errors import InvalidRequest, TooLarge, TooManyOps
from kvstore.mvcc.keys import ALL_KEYS, in_range, key_range, to_bytes
from kvstore.mvcc.types import SortOrder, SortTarget

__all__ = [
    "Compare",
    "CompareResult",
    "CompareTarget",
    "CompactRequest",
    "DeleteRangeRequest",
    "LeaseGrantRequest",
    "LeaseRevokeRequest",
    "Limits",
    "PutRequest",
    "RangeRequest",
    "Request",
    "RequestOp",
    "TxnRequest",
    "check_request",
    "compare",
    "op_delete",
    "op_put",
    "op_range",
    "op_txn",
]


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits every member applies identically (see the module docstring)."""

    max_key_bytes: int = 32 * 1024
    max_value_bytes: int = 1536 * 1024
    max_txn_ops: int = 128
    max_request_bytes: int = 2 * 1024 * 1024


class CompareTarget(enum.IntEnum):
    """The field a ``Compare`` looks at (etcd's numbering)."""

    VERSION = 0
    CREATE = 1
    MOD = 2
    VALUE = 3
    LEASE = 4


class CompareResult(enum.IntEnum):
    """How the field must relate to the compare's value (etcd's numbering)."""

    EQUAL = 0
    GREATER = 1
    LESS = 2
    NOT_EQUAL = 3


@dataclass(frozen=True, slots=True)
class Compare:
    """A txn guard: ``<target of key> <result> <value>``.

    With ``range_end`` it must hold for every key in ``[key, range_end)``. A
    missing key compares as version, revisions and lease 0; a ``VALUE``
    compare on a missing key is always false (as in etcd).
    """

    target: CompareTarget
    result: CompareResult
    key: bytes
    value: bytes | int
    range_end: bytes | None = None


@dataclass(frozen=True, slots=True)
class RangeRequest:
    """Read keys; ``revision`` 0 means the current one (see ``KVStore.range``)."""

    key: bytes
    range_end: bytes | None = None
    limit: int = 0
    revision: int = 0
    keys_only: bool = False
    count_only: bool = False
    sort_order: SortOrder = SortOrder.NONE
    sort_target: SortTarget = SortTarget.KEY


@dataclass(frozen=True, slots=True)
class PutRequest:
    """Write one key (see ``KVStore.put``)."""

    key: bytes
    value: bytes
    lease: int = 0
    prev_kv: bool = False
    ignore_value: bool = False
    ignore_lease: bool = False


@dataclass(frozen=True, slots=True)
class DeleteRangeRequest:
    """Delete a key or a range of keys."""

    key: bytes
    range_end: bytes | None = None
    prev_kv: bool = False


@dataclass(frozen=True, slots=True)
class TxnRequest:
    """If every compare holds, run ``success``, else ``failure``; all at one revision."""

    compare: tuple[Compare, ...] = ()
    success: tuple[RequestOp, ...] = ()
    failure: tuple[RequestOp, ...] = ()


@dataclass(frozen=True, slots=True)
class CompactRequest:
    """Drop history older than ``revision``."""

    revision: int


@dataclass(frozen=True, slots=True)
class LeaseGrantRequest:
    """Create a lease of ``ttl`` seconds; ``id`` 0 lets the store pick the next free id."""

    ttl: int
    id: int = 0


@dataclass(frozen=True, slots=True)
class LeaseRevokeRequest:
    """End a lease and delete its keys, all at one revision."""

    id: int


RequestOp = Union[RangeRequest, PutRequest, DeleteRangeRequest, TxnRequest]
"""What a txn branch may hold."""

Request = Union[
    RangeRequest,
    PutRequest,
    DeleteRangeRequest,
    TxnRequest,
    CompactRequest,
    LeaseGrantRequest,
    LeaseRevokeRequest,
]
"""Every request the state machine applies."""


_SORT_ORDERS = frozenset(SortOrder)
_SORT_TARGETS = frozenset(SortTarget)

_OPS = {
    "=": CompareResult.EQUAL,
    "==": CompareResult.EQUAL,
    "!=": CompareResult.NOT_EQUAL,
    ">": CompareResult.GREATER,
    "<": CompareResult.LESS,
}


def compare(
    key: bytes | str,
    target: CompareTarget,
    op: str | CompareResult,
    value: bytes | str | int,
    *,
    range_end: bytes | str | None = None,
    prefix: bool = False,
) -> Compare:
    """Build a ``Compare``: ``compare("/a", CompareTarget.VERSION, "=", 0)``.

    ``op`` is one of ``= != < >`` (or a ``CompareResult``); ``value`` is bytes
    or str for ``VALUE`` and an int for the other targets.

    Raises:
        InvalidRequest: an unknown operator or a value of the wrong type.
    """
    start, end = key_range(key, range_end, prefix=prefix)
    result = op if isinstance(op, CompareResult) else _OPS.get(op)
    if result is None:
        raise InvalidRequest(f"unknown compare operator {op!r}")
    if target == CompareTarget.VALUE:
        if isinstance(value, int):
            raise InvalidRequest("a VALUE compare needs a bytes or str value")
        return Compare(CompareTarget(target), result, start, to_bytes(value, "value"), end)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRequest(f"a {CompareTarget(target).name} compare needs an int value")
    return Compare(CompareTarget(target), result, start, value, end)


def op_range(
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
) -> RangeRequest:
    """Build a ``RangeRequest`` (``prefix=True`` selects every key starting with ``key``)."""
    start, end = key_range(key, range_end, prefix=prefix)
    return RangeRequest(
        start, end, limit, revision, keys_only, count_only, SortOrder(sort_order), SortTarget(sort_target)
    )


def op_put(
    key: bytes | str,
    value: bytes | str,
    *,
    lease: int = 0,
    prev_kv: bool = False,
    ignore_value: bool = False,
    ignore_lease: bool = False,
) -> PutRequest:
    """Build a ``PutRequest``."""
    return PutRequest(
        to_bytes(key), to_bytes(value, "value"), lease, prev_kv, ignore_value, ignore_lease
    )


def op_delete(
    key: bytes | str,
    range_end: bytes | str | None = None,
    *,
    prefix: bool = False,
    prev_kv: bool = False,
) -> DeleteRangeRequest:
    """Build a ``DeleteRangeRequest``."""
    start, end = key_range(key, range_end, prefix=prefix)
    return DeleteRangeRequest(start, end, prev_kv)


def op_txn(
    compare: Iterable[Compare] = (),
    success: Iterable[RequestOp] = (),
    failure: Iterable[RequestOp] = (),
) -> TxnRequest:
    """Build a ``TxnRequest`` from any iterables."""
    return TxnRequest(tuple(compare), tuple(success), tuple(failure))


def check_request(request: Request, limits: Limits) -> None:
    """Raise if ``request`` can never apply (see the module docstring); change nothing."""
    size = _check(request, limits)
    if size > limits.max_request_bytes:
        raise TooLarge("request", size, limits.max_request_bytes)


def _check(request: Request, limits: Limits) -> int:
    """Check ``request`` and return the bytes of keys and values it carries."""
    if isinstance(request, PutRequest):
        _check_key(request.key, limits)
        if not isinstance(request.value, bytes):
            raise InvalidRequest("value must be bytes")
        if len(request.value) > limits.max_value_bytes:
            raise TooLarge("value", len(request.value), limits.max_value_bytes)
        if request.ignore_lease and request.lease:
            raise InvalidRequest("a put with ignore_lease must not name a lease")
        _check_id(request.lease, "lease")
        return len(request.key) + len(request.value)
    if isinstance(request, (RangeRequest, DeleteRangeRequest)):
        _check_range(request.key, request.range_end, limits)
        if isinstance(request, RangeRequest):
            if request.limit < 0:
                raise InvalidRequest(f"negative limit {request.limit}")
            if request.revision < 0:
                raise InvalidRequest(f"negative revision {request.revision}")
            if request.sort_order not in _SORT_ORDERS or request.sort_target not in _SORT_TARGETS:
                raise InvalidRequest("unknown sort order or target")
        return len(request.key) + len(request.range_end or b"")
    if isinstance(request, TxnRequest):
        return _check_txn(request, limits)
    if isinstance(request, CompactRequest):
        if request.revision < 0:
            raise InvalidRequest(f"negative revision {request.revision}")
        return 0
    if isinstance(request, LeaseGrantRequest):
        _check_id(request.id, "lease")
        return 0
    if isinstance(request, LeaseRevokeRequest):
        if request.id <= 0:
            raise InvalidRequest(f"invalid lease id {request.id}")
        return 0
    raise InvalidRequest(f"not a request: {type(request).__name__}")


def _check_txn(txn: TxnRequest, limits: Limits) -> int:
    for items in (txn.compare, txn.success, txn.failure):
        if len(items) > limits.max_txn_ops:
            raise TooManyOps(len(items), limits.max_txn_ops)
    size = 0
    for c in txn.compare:
        if not isinstance(c, Compare):
            raise InvalidRequest(f"not a Compare: {type(c).__name__}")
        _check_range(c.key, c.range_end, limits)
        CompareResult(c.result)
        if CompareTarget(c.target) == CompareTarget.VALUE:
            if not isinstance(c.value, bytes):
                raise InvalidRequest("a VALUE compare needs a bytes value")
            size += len(c.value)
        elif not isinstance(c.value, int) or isinstance(c.value, bool):
            raise InvalidRequest(f"a {CompareTarget(c.target).name} compare needs an int value")
        size += len(c.key) + len(c.range_end or b"")
    for branch in (txn.success, txn.failure):
        for op in branch:
            if not isinstance(op, (RangeRequest, PutRequest, DeleteRangeRequest, TxnRequest)):
                raise InvalidRequest(f"not a txn operation: {type(op).__name__}")
            size += _check(op, limits)
        _branch_writes(branch)
    return size


def _branch_writes(ops: Sequence[RequestOp]) -> tuple[set[bytes], list[tuple[bytes, bytes | None]]]:
    """The keys a branch may put and the ranges it may delete; raise on a conflict.

    Two operations conflict when both may run and one puts a key the other
    puts or deletes. The two branches of a nested txn never both run, so they
    are checked against the rest of the branch but not against each other.
    """
    puts: set[bytes] = set()
    dels: list[tuple[bytes, bytes | None]] = []
    for op in ops:
        if isinstance(op, PutRequest):
            op_puts, op_dels = {op.key}, []
        elif isinstance(op, DeleteRangeRequest):
            op_puts, op_dels = set(), [(op.key, op.range_end)]
        elif isinstance(op, TxnRequest):
            s_puts, s_dels = _branch_writes(op.success)
            f_puts, f_dels = _branch_writes(op.failure)
            _check_conflicts(puts, dels, s_puts, s_dels)
            _check_conflicts(puts, dels, f_puts, f_dels)
            puts |= s_puts | f_puts
            dels += s_dels + f_dels
            continue
        else:
            continue
        _check_conflicts(puts, dels, op_puts, op_dels)
        puts |= op_puts
        dels += op_dels
    return puts, dels


def _check_conflicts(
    puts: set[bytes],
    dels: list[tuple[bytes, bytes | None]],
    new_puts: set[bytes],
    new_dels: list[tuple[bytes, bytes | None]],
) -> None:
    for key in sorted(new_puts):
        if key in puts:
            raise InvalidRequest(f"duplicate key {key!r} in txn")
        for start, end in dels:
            if in_range(key, start, end):
                raise InvalidRequest(f"txn puts key {key!r} that it also deletes")
    for key in sorted(puts):
        for start, end in new_dels:
            if in_range(key, start, end):
                raise InvalidRequest(f"txn puts key {key!r} that it also deletes")


def _check_key(key: bytes, limits: Limits) -> None:
    if not isinstance(key, bytes):
        raise InvalidRequest("key must be bytes")
    if not key:
        raise InvalidRequest("empty key")
    if len(key) > limits.max_key_bytes:
        raise TooLarge("key", len(key), limits.max_key_bytes)


def _check_range(key: bytes, range_end: bytes | None, limits: Limits) -> None:
    if range_end is None:
        _check_key(key, limits)
        return
    if not isinstance(key, bytes) or not isinstance(range_end, bytes):
        raise InvalidRequest("key and range_end must be bytes")
    if len(key) > limits.max_key_bytes:
        raise TooLarge("key", len(key), limits.max_key_bytes)
    if len(range_end) > limits.max_key_bytes and range_end != ALL_KEYS:
        raise TooLarge("range_end", len(range_end), limits.max_key_bytes)


def _check_id(value: int, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 63:
        raise InvalidRequest(f"invalid {what} id {value!r}")

"""Requests as bytes: what the Raft log carries and ``KVStateMachine.apply`` reads.

A command is one msgpack array whose first element is its ``CommandType``:

=============  ====================================================================
PUT            ``[1, key, value, lease, flags]`` (flags: 1 prev_kv, 2 ignore_value,
               4 ignore_lease)
DELETE_RANGE   ``[2, key, range_end | nil, prev_kv]``
TXN            ``[3, [compare...], [op...], [op...]]``; a compare is
               ``[target, result, key, range_end | nil, value]``, an op is a
               PUT, DELETE_RANGE, TXN or RANGE array
COMPACT        ``[4, revision]``
LEASE_GRANT    ``[5, ttl, id]``
LEASE_REVOKE   ``[6, id]``
RANGE          ``[7, key, range_end | nil, limit, revision, flags, sort_order,
               sort_target]`` (flags: 1 keys_only, 2 count_only)
=============  ====================================================================

Keys and values are msgpack ``bin``. ``decode`` checks the shape and the
types and raises ``InvalidRequest`` on anything else, so a malformed entry
fails the same way on every member and changes nothing. The encoding is part
of the log format: change it only by adding new command types.
"""

from __future__ import annotations

import enum
import threading
from typing import Any

import msgpack

from kvstore.errors import InvalidRequest
from kvstore.mvcc.request import (
    CompactRequest,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    LeaseGrantRequest,
    LeaseRevokeRequest,
    PutRequest,
    RangeRequest,
    Request,
    RequestOp,
    TxnRequest,
)
from kvstore.mvcc.types import SortOrder, SortTarget

__all__ = ["CommandType", "decode", "encode", "encode_put", "from_fields", "unpack"]


class CommandType(enum.IntEnum):
    """The first element of every command array."""

    PUT = 1
    DELETE_RANGE = 2
    TXN = 3
    COMPACT = 4
    LEASE_GRANT = 5
    LEASE_REVOKE = 6
    RANGE = 7


_local = threading.local()


def _pack(fields: list[Any]) -> bytes:
    """msgpack ``fields`` with this thread's reusable packer (``packb`` builds one per call)."""
    try:
        pack = _local.pack
    except AttributeError:
        pack = _local.pack = msgpack.Packer(use_bin_type=True).pack
    data: bytes = pack(fields)
    return data


def encode_put(
    key: bytes,
    value: bytes,
    lease: int = 0,
    *,
    prev_kv: bool = False,
    ignore_value: bool = False,
    ignore_lease: bool = False,
) -> bytes:
    """Encode a put without building a ``PutRequest`` first (the common case)."""
    flags = (1 if prev_kv else 0) | (2 if ignore_value else 0) | (4 if ignore_lease else 0)
    return _pack([1, key, value, lease, flags])


def encode(request: Request) -> bytes:
    """Encode any request (see the module docstring for the layout)."""
    return _pack(_fields(request))


def _fields(request: Request) -> list[Any]:
    if isinstance(request, PutRequest):
        flags = (
            (1 if request.prev_kv else 0)
            | (2 if request.ignore_value else 0)
            | (4 if request.ignore_lease else 0)
        )
        return [1, request.key, request.value, request.lease, flags]
    if isinstance(request, DeleteRangeRequest):
        return [2, request.key, request.range_end, request.prev_kv]
    if isinstance(request, TxnRequest):
        return [
            3,
            [[int(c.target), int(c.result), c.key, c.range_end, c.value] for c in request.compare],
            [_fields(op) for op in request.success],
            [_fields(op) for op in request.failure],
        ]
    if isinstance(request, CompactRequest):
        return [4, request.revision]
    if isinstance(request, LeaseGrantRequest):
        return [5, request.ttl, request.id]
    if isinstance(request, LeaseRevokeRequest):
        return [6, request.id]
    if isinstance(request, RangeRequest):
        flags = (1 if request.keys_only else 0) | (2 if request.count_only else 0)
        return [
            7,
            request.key,
            request.range_end,
            request.limit,
            request.revision,
            flags,
            int(request.sort_order),
            int(request.sort_target),
        ]
    raise InvalidRequest(f"not a request: {type(request).__name__}")


def unpack(data: bytes) -> list[Any]:
    """The raw command array (shape checked only at the top level).

    Raises:
        InvalidRequest: ``data`` is not one msgpack array starting with a type.
    """
    try:
        fields = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)
    except (ValueError, TypeError) as err:
        raise InvalidRequest(f"malformed command: {err!r}") from None
    if type(fields) is not list or not fields or type(fields[0]) is not int:
        raise InvalidRequest("malformed command: not a typed array")
    return fields


def decode(data: bytes) -> Request:
    """Decode one command into its request.

    Raises:
        InvalidRequest: malformed bytes, an unknown type, or fields of the wrong shape.
    """
    return _request(unpack(data), top=True)


def from_fields(fields: list[Any]) -> Request:
    """The request of a command array from ``unpack`` (``decode`` in two steps)."""
    return _request(fields, top=True)


def _request(fields: Any, *, top: bool) -> Request:
    if type(fields) is not list or not fields or type(fields[0]) is not int:
        raise InvalidRequest("malformed command: not a typed array")
    kind = fields[0]
    if kind == CommandType.PUT:
        _, key, value, lease, flags = _shape(fields, 5)
        return PutRequest(
            _bytes(key), _bytes(value), _int(lease), bool(_int(flags) & 1), bool(flags & 2), bool(flags & 4)
        )
    if kind == CommandType.DELETE_RANGE:
        _, key, range_end, prev_kv = _shape(fields, 4)
        return DeleteRangeRequest(_bytes(key), _opt_bytes(range_end), _bool(prev_kv))
    if kind == CommandType.TXN:
        _, compares, success, failure = _shape(fields, 4)
        return TxnRequest(
            tuple(_compare(c) for c in _list(compares)),
            tuple(_op(op) for op in _list(success)),
            tuple(_op(op) for op in _list(failure)),
        )
    if kind == CommandType.RANGE:
        _, key, range_end, limit, revision, flags, order, target = _shape(fields, 8)
        try:
            sort_order, sort_target = SortOrder(_int(order)), SortTarget(_int(target))
        except ValueError:
            raise InvalidRequest("malformed command: bad sort order or target") from None
        return RangeRequest(
            _bytes(key),
            _opt_bytes(range_end),
            _int(limit),
            _int(revision),
            bool(_int(flags) & 1),
            bool(flags & 2),
            sort_order,
            sort_target,
        )
    if top and kind == CommandType.COMPACT:
        _, revision = _shape(fields, 2)
        return CompactRequest(_int(revision))
    if top and kind == CommandType.LEASE_GRANT:
        _, ttl, lease_id = _shape(fields, 3)
        return LeaseGrantRequest(_int(ttl), _int(lease_id))
    if top and kind == CommandType.LEASE_REVOKE:
        _, lease_id = _shape(fields, 2)
        return LeaseRevokeRequest(_int(lease_id))
    raise InvalidRequest(f"malformed command: unknown type {kind}")


def _op(fields: Any) -> RequestOp:
    request = _request(fields, top=False)
    if isinstance(request, (RangeRequest, PutRequest, DeleteRangeRequest, TxnRequest)):
        return request
    raise InvalidRequest("malformed command: not a txn operation")


def _compare(fields: Any) -> Compare:
    target, result, key, range_end, value = _shape(fields, 5)
    try:
        target, result = CompareTarget(_int(target)), CompareResult(_int(result))
    except ValueError:
        raise InvalidRequest("malformed command: bad compare target or result") from None
    value = _bytes(value) if target == CompareTarget.VALUE else _int(value)
    return Compare(target, result, _bytes(key), value, _opt_bytes(range_end))


def _shape(fields: Any, n: int) -> list[Any]:
    if type(fields) is not list or len(fields) != n:
        raise InvalidRequest(f"malformed command: expected {n} fields")
    return fields


def _list(value: Any) -> list[Any]:
    if type(value) is not list:
        raise InvalidRequest("malformed command: expected an array")
    return value


def _bytes(value: Any) -> bytes:
    if type(value) is not bytes:
        raise InvalidRequest("malformed command: expected bytes")
    return value


def _opt_bytes(value: Any) -> bytes | None:
    return None if value is None else _bytes(value)


def _int(value: Any) -> int:
    if type(value) is not int:
        raise InvalidRequest("malformed command: expected an integer")
    return value


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise InvalidRequest("malformed command: expected a boolean")
    return value

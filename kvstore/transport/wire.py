"""The client protocol's values on the wire: results, errors, statuses.

Requests that change state travel as the replicated command encoding
(``kvstore.mvcc.command``), so a member checks and proposes exactly the bytes
the client sent. Everything here turns results and typed errors into msgpack
lists and back; anything malformed raises ``ProtocolError``.
"""

from __future__ import annotations

from typing import Any

from kvstore import errors
from kvstore.errors import KvError, ProtocolError
from kvstore.mvcc.lease import LeaseStatus
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
    TxnResult,
    WatchResponse,
    new_put_result,
)

__all__ = [
    "decode_error",
    "decode_kv",
    "decode_lease_status",
    "decode_result",
    "decode_watch_response",
    "encode_error",
    "encode_kv",
    "encode_lease_status",
    "encode_result",
    "encode_watch_response",
]


def encode_kv(kv: KeyValue | None) -> list[Any] | None:
    if kv is None:
        return None
    return [kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease]


def decode_kv(v: Any) -> KeyValue | None:
    if v is None:
        return None
    try:
        key, value, create, mod, version, lease = v
    except (TypeError, ValueError) as e:
        raise ProtocolError(f"malformed key-value: {e}") from None
    return KeyValue(key, value, create, mod, version, lease)


def _kvs(v: Any) -> tuple[KeyValue, ...]:
    out = []
    for x in v:
        kv = decode_kv(x)
        if kv is None:
            raise ProtocolError("missing key-value")
        out.append(kv)
    return tuple(out)


def encode_result(r: Response) -> list[Any]:
    """A state machine answer as a tagged list."""
    if isinstance(r, PutResult):
        return ["put", r.header_revision, encode_kv(r.prev_kv)]
    if isinstance(r, RangeResult):
        return ["range", [encode_kv(kv) for kv in r.kvs], r.count, r.more, r.header_revision]
    if isinstance(r, DeleteRangeResult):
        return ["delete", r.deleted, r.header_revision, [encode_kv(kv) for kv in r.prev_kvs]]
    if isinstance(r, TxnResult):
        return ["txn", r.succeeded, [encode_result(x) for x in r.responses], r.header_revision]
    if isinstance(r, CompactResult):
        return ["compact", r.header_revision, r.compact_revision]
    if isinstance(r, LeaseGrantResult):
        return ["lease_grant", r.id, r.ttl, r.header_revision]
    if isinstance(r, LeaseRevokeResult):
        return ["lease_revoke", r.deleted, r.header_revision]
    raise ProtocolError(f"cannot encode {type(r).__name__}")


def decode_result(v: Any) -> Response:
    """The inverse of ``encode_result``."""
    try:
        tag = v[0]
        if tag == "put":
            revision = v[1]
            if type(revision) is not int:
                raise ProtocolError(f"malformed put result {v!r:.60}")
            return new_put_result(revision, decode_kv(v[2]))
        if tag == "range":
            return RangeResult(_kvs(v[1]), v[2], v[3], v[4])
        if tag == "delete":
            return DeleteRangeResult(v[1], v[2], _kvs(v[3]))
        if tag == "txn":
            return TxnResult(v[1], tuple(decode_result(x) for x in v[2]), v[3])
        if tag == "compact":
            return CompactResult(v[1], v[2])
        if tag == "lease_grant":
            return LeaseGrantResult(v[1], v[2], v[3])
        if tag == "lease_revoke":
            return LeaseRevokeResult(v[1], v[2])
    except (TypeError, IndexError, KeyError) as e:
        raise ProtocolError(f"malformed result: {e}") from None
    raise ProtocolError(f"unknown result {v!r:.60}")


def encode_watch_response(r: WatchResponse) -> list[Any]:
    return [
        r.watch_id,
        [[int(e.type), encode_kv(e.kv), encode_kv(e.prev_kv)] for e in r.events],
        r.header_revision,
        r.compact_revision,
        r.canceled,
    ]


def decode_watch_response(v: Any) -> WatchResponse:
    try:
        events = []
        for t, kv, prev in v[1]:
            k = decode_kv(kv)
            if k is None:
                raise ProtocolError("event without a key-value")
            events.append(Event(EventType(t), k, decode_kv(prev)))
        return WatchResponse(v[0], tuple(events), v[2], v[3], v[4])
    except (TypeError, IndexError, ValueError) as e:
        raise ProtocolError(f"malformed watch response: {e}") from None


def encode_lease_status(s: LeaseStatus) -> list[Any]:
    return [s.id, s.ttl, s.granted_ttl, list(s.keys)]


def decode_lease_status(v: Any) -> LeaseStatus:
    try:
        return LeaseStatus(v[0], v[1], v[2], tuple(v[3]))
    except (TypeError, IndexError) as e:
        raise ProtocolError(f"malformed lease status: {e}") from None


# Errors travel as [class name, constructor arguments].
def encode_error(e: BaseException) -> list[Any]:
    if isinstance(e, errors.TooLarge):
        return ["TooLarge", [e.what, e.size, e.limit]]
    if isinstance(e, errors.TooManyOps):
        return ["TooManyOps", [e.count, e.limit]]
    if isinstance(e, errors.Compacted):
        return ["Compacted", [e.revision, e.compact_revision]]
    if isinstance(e, errors.FutureRevision):
        return ["FutureRevision", [e.revision, e.current_revision]]
    if isinstance(e, errors.LeaseNotFound):
        return ["LeaseNotFound", [e.lease_id]]
    if isinstance(e, errors.LeaseExists):
        return ["LeaseExists", [e.lease_id]]
    if isinstance(e, errors.NotLeader):
        return ["NotLeader", [e.leader_hint]]
    for name in ("InvalidRequest", "Unavailable", "Overloaded", "ProposalDropped", "Timeout",
                 "ProtocolError"):
        if type(e) is getattr(errors, name):
            return [name, [str(e)]]
    if isinstance(e, errors.RequestError):
        return ["InvalidRequest", [str(e)]]
    if isinstance(e, errors.ClusterError):
        return ["Unavailable", [str(e)]]
    return ["Unavailable", [f"internal error: {type(e).__name__}: {e}"]]


_ERRORS: dict[str, type[KvError]] = {
    name: getattr(errors, name)
    for name in (
        "TooLarge", "TooManyOps", "Compacted", "FutureRevision", "LeaseNotFound", "LeaseExists",
        "NotLeader", "InvalidRequest", "Unavailable", "Overloaded", "ProposalDropped", "Timeout",
        "ProtocolError",
    )
}


def decode_error(v: Any) -> KvError:
    try:
        cls = _ERRORS[v[0]]
        return cls(*v[1])
    except (TypeError, IndexError, KeyError) as e:
        return ProtocolError(f"malformed error from server: {v!r:.80} ({e})")

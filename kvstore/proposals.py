"""What a member writes in a log entry's data: one request, or a batch of them.

A request is its 8-byte request id (never zero; it tells the proposing
member whom to answer) followed by its encoded command. The requests one
member proposes in one turn of its event loop go into the log together: a
lone request is an entry of its own, several are one *batch* entry, eight
zero bytes followed by a msgpack array of the requests, in order. A batch is
committed, stored and sent as one entry, so the log's per-entry costs
(encoding for each follower and the WAL, checksums, bookkeeping) are paid
once per turn instead of once per request; applying it applies its requests
in order, each with its own revision, exactly as single entries would.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgpack

from kvstore.errors import CorruptError

__all__ = ["BATCH_TAG", "MAX_BATCH_BYTES", "batch_entries", "entry_requests", "request_count"]

BATCH_TAG = bytes(8)
# A batch stays well under a Raft message's size limit (1 MiB by default),
# so that appends keep several entries per message.
MAX_BATCH_BYTES = 256 << 10
_PATH = "<log entry>"


def batch_entries(requests: Sequence[bytes], max_bytes: int = MAX_BATCH_BYTES) -> list[bytes]:
    """The entry datas for ``requests``, in order: batches of up to ``max_bytes``, a lone request as itself."""
    out: list[bytes] = []
    group: list[bytes] = []
    size = 0
    for request in requests:
        if group and size + len(request) > max_bytes:
            out.append(_pack(group))
            group, size = [], 0
        group.append(request)
        size += len(request)
    if group:
        out.append(_pack(group))
    return out


def _pack(group: list[bytes]) -> bytes:
    if len(group) == 1:
        return group[0]
    packed: bytes = msgpack.packb(group, use_bin_type=True)
    return BATCH_TAG + packed


def entry_requests(data: bytes) -> list[bytes]:
    """The requests in a batch entry's ``data`` (which starts with ``BATCH_TAG``).

    Raises:
        CorruptError: the batch does not decode to a list of requests.
    """
    try:
        requests = msgpack.unpackb(memoryview(data)[8:], raw=False, use_list=True)
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as e:
        raise CorruptError(_PATH, 0, f"undecodable batch: {e}") from None
    if type(requests) is not list or not all(type(r) is bytes and len(r) > 8 for r in requests):
        raise CorruptError(_PATH, 0, "a batch entry is not a list of requests")
    return requests


def request_count(data: bytes) -> int:
    """How many requests an entry's ``data`` holds (0 for Raft's empty entries), from its first bytes."""
    if not data:
        return 0
    if data[:8] != BATCH_TAG or len(data) < 9:
        return 1
    head = data[8]
    if 0x90 <= head <= 0x9F:
        return head & 0x0F
    if head == 0xDC:
        return int.from_bytes(data[9:11], "big")
    if head == 0xDD:
        return int.from_bytes(data[9:13], "big")
    return 1

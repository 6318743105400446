"""Client protocol values: every result survives the trip, malformed ones are refused."""

from __future__ import annotations

import msgpack
import pytest

from kvstore.errors import ProtocolError
from kvstore.mvcc.types import (
    CompactResult,
    DeleteRangeResult,
    KeyValue,
    LeaseGrantResult,
    LeaseRevokeResult,
    PutResult,
    RangeResult,
    Response,
    TxnResult,
)
from kvstore.transport.wire import decode_result, encode_result

KV = KeyValue(b"/k", b"v", 2, 5, 3, 0)


@pytest.mark.parametrize(
    "result",
    [
        PutResult(7, None),
        PutResult(8, KV),
        RangeResult((KV,), 1, False, 9),
        DeleteRangeResult(1, 10, (KV,)),
        TxnResult(True, (PutResult(11, None), RangeResult((), 0, False, 11)), 11),
        CompactResult(12, 4),
        LeaseGrantResult(99, 10, 13),
        LeaseRevokeResult(2, 14),
    ],
)
def test_results_round_trip_through_msgpack(result: Response) -> None:
    wire = msgpack.unpackb(msgpack.packb(encode_result(result), use_bin_type=True), raw=False)
    back = decode_result(wire)
    assert back == result and type(back) is type(result)


@pytest.mark.parametrize("value", [["put", "7", None], ["put"], ["put", 7, [1, 2]], ["nope", 1]])
def test_malformed_results_raise_protocol_error(value: object) -> None:
    with pytest.raises(ProtocolError):
        decode_result(value)

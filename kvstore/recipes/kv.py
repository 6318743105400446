"""What the recipes add to the key-value API (``kvstore.kv``) for reading txn answers.

Recipes are written against ``kvstore.kv.KV``; a watch from a compacted
revision fails with ``Compacted``, which the recipes treat as "look again".
"""

from __future__ import annotations

from kvstore.errors import InvariantError
from kvstore.mvcc.types import RangeResult, Response

__all__ = ["range_response"]


def range_response(resp: Response) -> RangeResult:
    """``resp`` as the ``RangeResult`` a txn's range operation must have produced.

    Raises:
        InvariantError: the store answered a range with something else.
    """
    if not isinstance(resp, RangeResult):
        raise InvariantError(f"expected a RangeResult in the txn answer, got {type(resp).__name__}")
    return resp

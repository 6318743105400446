"""Choosing a txn's path: its compares, and those of nested txns, on the state before it.

As in etcd, every compare of a txn (nested ones included) is evaluated
before the txn writes anything, so a nested txn's compares do not see the
writes of the operations before it. ``plan_txn`` returns the operations that
will run, with each nested txn replaced by its own plan; the store then
checks that whole path and only then applies it, which is what makes a txn
all or nothing.

A compare with a range must hold for every live key in it. A missing key
compares as version, create and mod revision and lease 0, but a ``VALUE``
compare on a missing key is false (there is no value to compare).
"""

from __future__ import annotations

from dataclasses import dataclass

from kvstore.mvcc.index import TreeIndex
from kvstore.mvcc.request import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    TxnRequest,
)
from kvstore.mvcc.types import KeyValue

__all__ = ["Plan", "compare_holds", "plan_txn"]


@dataclass(frozen=True, slots=True)
class Plan:
    """The branch a txn takes; nested txns as nested plans."""

    succeeded: bool
    ops: tuple[RangeRequest | PutRequest | DeleteRangeRequest | Plan, ...]


def plan_txn(index: TreeIndex, txn: TxnRequest) -> Plan:
    """Evaluate the compares of ``txn`` and of its nested txns on the current state."""
    succeeded = all(compare_holds(index, c) for c in txn.compare)
    ops = txn.success if succeeded else txn.failure
    return Plan(succeeded, tuple(plan_txn(index, op) if isinstance(op, TxnRequest) else op for op in ops))


def compare_holds(index: TreeIndex, c: Compare) -> bool:
    """True if ``c`` holds for every live key it names (see the module docstring)."""
    histories = index.histories
    matched = False
    for k in index.keys(c.key, c.range_end):
        kv = histories[k][-1]
        if not kv.version:
            continue
        matched = True
        if not _compare_kv(c, kv):
            return False
    if matched:
        return True
    if c.target == CompareTarget.VALUE:
        return False
    return _compare_kv(c, None)


def _compare_kv(c: Compare, kv: KeyValue | None) -> bool:
    target = c.target
    field: bytes | int
    if target == CompareTarget.VALUE:
        field = kv.value if kv is not None else b""
    elif kv is None:
        field = 0
    elif target == CompareTarget.VERSION:
        field = kv.version
    elif target == CompareTarget.CREATE:
        field = kv.create_revision
    elif target == CompareTarget.MOD:
        field = kv.mod_revision
    else:
        field = kv.lease
    value = c.value
    result = c.result
    if result == CompareResult.EQUAL:
        return field == value
    if result == CompareResult.NOT_EQUAL:
        return field != value
    if result == CompareResult.GREATER:
        return field > value  # type: ignore[operator]
    return field < value  # type: ignore[operator]

"""The ``steer kv txn`` grammar, after etcdctl's interactive txn.

Three blocks, each ended by an empty line (or end of input)::

    compares:
    value("key1") = "v1"
    mod("key2") > "0"

    success requests (get, put, del):
    put key1 "new value"
    del key2

    failure requests (get, put, del):
    get key1 --prefix

A compare is ``TARGET("KEY") OP "VALUE"`` with TARGET one of value, version,
create, mod, lease and OP one of ``= != < >``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

from kvstore.errors import InvalidRequest
from kvstore.mvcc.request import (
    Compare,
    CompareResult,
    CompareTarget,
    RequestOp,
    compare,
    op_delete,
    op_put,
    op_range,
)

__all__ = ["parse_compare", "parse_op", "parse_txn"]

_COMPARE = re.compile(
    r'^\s*(value|version|create|mod|lease)\s*\(\s*"((?:[^"\\]|\\.)*)"\s*\)\s*(=|!=|<|>)\s*"((?:[^"\\]|\\.)*)"\s*$'
)
_TARGETS = {
    "value": CompareTarget.VALUE,
    "version": CompareTarget.VERSION,
    "create": CompareTarget.CREATE,
    "mod": CompareTarget.MOD,
    "lease": CompareTarget.LEASE,
}
_OPS = {"=": CompareResult.EQUAL, "!=": CompareResult.NOT_EQUAL, "<": CompareResult.LESS,
        ">": CompareResult.GREATER}


def parse_compare(line: str) -> Compare:
    m = _COMPARE.match(line)
    if m is None:
        raise InvalidRequest(f'bad compare {line!r}: expected TARGET("KEY") OP "VALUE"')
    target, key, op, raw = m.groups()
    key = key.encode().decode("unicode_escape")
    raw = raw.encode().decode("unicode_escape")
    t = _TARGETS[target]
    value: int | str
    if t == CompareTarget.VALUE:
        value = raw
    else:
        try:
            value = int(raw, 16) if t == CompareTarget.LEASE else int(raw)
        except ValueError:
            raise InvalidRequest(f"bad compare {line!r}: {target} needs a number") from None
    return compare(key, t, _OPS[op], value)


def parse_op(line: str) -> RequestOp:
    words = shlex.split(line)
    if not words:
        raise InvalidRequest("empty request")
    verb, args = words[0], words[1:]
    prefix = "--prefix" in args
    args = [a for a in args if a != "--prefix"]
    if verb == "put" and len(args) == 2 and not prefix:
        return op_put(args[0], args[1])
    if verb == "get" and len(args) == 1:
        return op_range(args[0], prefix=prefix)
    if verb in ("del", "delete") and len(args) == 1:
        return op_delete(args[0], prefix=prefix)
    raise InvalidRequest(f"bad request {line!r}: expected put KEY VALUE | get KEY | del KEY")


def parse_txn(lines: Iterable[str]) -> tuple[list[Compare], list[RequestOp], list[RequestOp]]:
    """Parse the three blocks; raises ``InvalidRequest`` naming the bad line."""
    blocks: list[list[str]] = [[]]
    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip():
            if len(blocks) == 3:
                break
            blocks.append([])
            continue
        blocks[-1].append(line)
    while len(blocks) < 3:
        blocks.append([])
    return (
        [parse_compare(x) for x in blocks[0]],
        [parse_op(x) for x in blocks[1]],
        [parse_op(x) for x in blocks[2]],
    )

"""Recording what concurrent clients saw, for the linearizability checker.

``History`` wraps calls to any key-value client (an embedded ``Node`` or a
remote ``Client``) and records each as an ``Operation`` of
``kvstore.testing.models.KvModel``, with call and return times read from one
``Clock``. How an outcome is recorded:

- a call that returns is recorded with its output (``Get`` answers the value
  as ``str``, or ``None``; ``Delete`` answers the number of keys removed);
- a write that fails with a ``RequestError``, ``NotLeader`` or
  ``ProposalDropped`` was refused before it reached the log, and is left out;
- a write that fails any other way (``Unavailable``, ``Timeout``, another
  ``KvError``, an ``OSError``) has an unknown outcome: it is recorded with ``ret=None``, so the
  checker may place it anywhere after its call, or nowhere;
- a read that fails had no effect and is left out.

Values are ``str`` (sent UTF-8 encoded). Give every write a distinct value:
the checker is then fast, and a wrong answer names the write it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from kvstore.clock import Clock, MonotonicClock
from kvstore.errors import KvError, NotLeader, ProposalDropped, RequestError
from kvstore.mvcc.types import DeleteRangeResult, KeyValue, PutResult
from kvstore.testing.linearizability import CheckResult, check
from kvstore.testing.models import Delete, Get, KvModel, Operation, Put

__all__ = ["History", "HistoryStats", "KvClient"]

_REFUSED = (RequestError, NotLeader, ProposalDropped)
_FAILED = (KvError, OSError, TimeoutError)


class KvClient(Protocol):
    """The part of the key-value API a history records."""

    async def put(self, key: bytes | str, value: bytes | str) -> PutResult:
        ...

    async def get(self, key: bytes | str) -> KeyValue | None:
        ...

    async def delete(self, key: bytes | str) -> DeleteRangeResult:
        ...


@dataclass(frozen=True, slots=True)
class HistoryStats:
    """How the recorded calls ended."""

    completed: int
    unknown: int
    refused: int
    failed_reads: int


class History:
    """Concurrent clients' operations on string keys (see the module docstring)."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or MonotonicClock()
        self._ops: list[Operation] = []
        self._refused = 0
        self._failed_reads = 0

    @property
    def operations(self) -> tuple[Operation, ...]:
        """Everything recorded so far, in the order calls returned or failed."""
        return tuple(self._ops)

    def stats(self) -> HistoryStats:
        unknown = sum(1 for op in self._ops if op.ret is None)
        return HistoryStats(len(self._ops) - unknown, unknown, self._refused, self._failed_reads)

    async def put(self, client: int, kv: KvClient, key: str, value: str) -> PutResult | None:
        """Put ``value``; returns the result, or ``None`` if the call failed (it is recorded)."""
        call = self._clock.now()
        try:
            result = await kv.put(key, value)
        except _REFUSED:
            self._refused += 1
            return None
        except _FAILED:
            self._ops.append(Operation(client, call, None, Put(key, value)))
            return None
        self._ops.append(Operation(client, call, self._clock.now(), Put(key, value)))
        return result

    async def get(self, client: int, kv: KvClient, key: str) -> KeyValue | None:
        """Read ``key`` (linearizably, as the client's ``get`` does); failures are not recorded."""
        call = self._clock.now()
        try:
            kv_ = await kv.get(key)
        except _FAILED:
            self._failed_reads += 1
            return None
        value = None if kv_ is None else kv_.value.decode()
        self._ops.append(Operation(client, call, self._clock.now(), Get(key), value))
        return kv_

    async def delete(self, client: int, kv: KvClient, key: str) -> DeleteRangeResult | None:
        """Delete ``key``; returns the result, or ``None`` if the call failed (it is recorded)."""
        call = self._clock.now()
        try:
            result = await kv.delete(key)
        except _REFUSED:
            self._refused += 1
            return None
        except _FAILED:
            self._ops.append(Operation(client, call, None, Delete(key)))
            return None
        self._ops.append(
            Operation(client, call, self._clock.now(), Delete(key), result.deleted)
        )
        return result

    def check(self, *, timeout: float | None = None, max_steps: int | None = None) -> CheckResult:
        """Is what the clients saw linearizable for a key-value map? (``KvModel``)"""
        return check(self._ops, KvModel(), timeout=timeout, max_steps=max_steps)

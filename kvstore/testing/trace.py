"""The simulator's trace: one line per event, prefixed with the tick.

Events are recorded as small tuples and turned into text only when asked
(``lines()``), so a run pays almost nothing for its trace unless it fails or
``--trace`` is on. Messages, entries and ready batches print with the core's
``describe_*`` functions, the same text as the Raft scenario tests::

       41 n2 ready Ready MustSync: HardState Term:3 Vote:2 Commit:7 ...
       41 n2 sync
       42 deliver 2->1 APP Term:3 Log:3/7 Commit:7 Entries:[3/8 'c1.4 w 100004']
       42 drop 2->3 HEARTBEAT Term:3 Log:0/0 Commit:7
       57 crash n2
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Iterable

from kvstore.raft.describe import describe_message, describe_ready
from kvstore.raft.messages import Message
from kvstore.raft.rawnode import Ready
from kvstore.testing.network import Fate

__all__ = ["Event", "Trace"]


class Event(enum.Enum):
    READY = "ready"
    SYNC = "sync"
    MESSAGE = "message"
    TEXT = "text"


_Record = tuple[int, Event, object, object]


class Trace:
    """Recorded events; ``keep`` bounds how many are kept (None: all)."""

    def __init__(self, *, keep: int | None = None) -> None:
        self._records: collections.deque[_Record] = collections.deque(maxlen=keep)
        self.count = 0

    def ready(self, tick: int, member: int, rd: Ready) -> None:
        self.count += 1
        self._records.append((tick, Event.READY, member, rd))

    def sync(self, tick: int, member: int) -> None:
        self.count += 1
        self._records.append((tick, Event.SYNC, member, None))

    def message(self, tick: int, fate: Fate, msg: Message) -> None:
        self.count += 1
        self._records.append((tick, Event.MESSAGE, fate, msg))

    def text(self, tick: int, text: str) -> None:
        self.count += 1
        self._records.append((tick, Event.TEXT, text, None))

    def lines(self, last: int | None = None) -> list[str]:
        """The recorded events as text, the last ``last`` of them if given."""
        records: Iterable[_Record] = self._records
        if last is not None:
            records = list(self._records)[-last:]
        return [_format(r) for r in records]


def _format(record: _Record) -> str:
    tick, kind, a, b = record
    if kind is Event.READY and isinstance(b, Ready):
        body = f"n{a} ready {describe_ready(b)}"
    elif kind is Event.SYNC:
        body = f"n{a} sync"
    elif kind is Event.MESSAGE and isinstance(a, Fate) and isinstance(b, Message):
        body = f"{a.value} {describe_message(b)}"
    else:
        body = str(a)
    return f"{tick:6d} {body}"

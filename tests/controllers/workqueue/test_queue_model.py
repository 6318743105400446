"""The work queue against a plain model of its contract, driven by hypothesis.

The model keeps three things: the items waiting to be handed out, in order;
the items in process; and the items added again while in process. Every
``get`` that the model says answers at once is run without an event loop, so
a queue that would wait instead fails loudly.
"""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from controllers.workqueue import Queue
from tests.controllers.workqueue.loop import run_now

ITEMS = st.sampled_from("abcde")


class QueueMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.queue: Queue[str] = Queue()
        self.waiting: list[str] = []
        self.in_process: set[str] = set()
        self.again: set[str] = set()
        self.shut = False

    @rule(item=ITEMS)
    def add(self, item: str) -> None:
        self.queue.add(item)
        if self.shut:
            return
        if item in self.in_process:
            self.again.add(item)
        elif item not in self.waiting:
            self.waiting.append(item)

    @precondition(lambda self: bool(self.waiting) or self.shut)
    @rule()
    def get(self) -> None:
        got = run_now(self.queue.get())
        if self.waiting:
            item = self.waiting.pop(0)
            assert got == (item, False)
            self.in_process.add(item)
        else:
            assert got == (None, True)

    @precondition(lambda self: bool(self.in_process))
    @rule(data=st.data())
    def done(self, data: st.DataObject) -> None:
        item = data.draw(st.sampled_from(sorted(self.in_process)))
        self.queue.done(item)
        self.in_process.remove(item)
        if item in self.again:
            self.again.remove(item)
            self.waiting.append(item)

    @rule(item=ITEMS)
    def done_out_of_turn(self, item: str) -> None:
        if item in self.in_process:
            return
        with pytest.raises(ValueError):
            self.queue.done(item)

    @rule()
    def shut_down(self) -> None:
        self.queue.shut_down()
        self.shut = True

    @invariant()
    def lengths_agree(self) -> None:
        assert self.queue.len() == len(self.waiting)
        assert self.queue.shutting_down() == self.shut


QueueMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)
TestQueueModel = QueueMachine.TestCase

"""Random save/sync/snapshot/release/crash/reopen sequences against a model of the log.

After every crash the recovered log must be exactly one of the states the
log passed through since its last sync: never older (a synced record lost),
never anything else (a torn or corrupt record returned).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kvstore.raft.messages import Entry, HardState, NodeId
from kvstore.storage.memory_disk import MemoryDisk
from kvstore.storage.wal import WAL


@dataclass(frozen=True)
class Model:
    snapshot_index: int = 0
    snapshot_term: int = 0
    hard_state: HardState = HardState()
    entries: tuple[Entry, ...] = ()

    @property
    def last_index(self) -> int:
        return self.entries[-1].index if self.entries else self.snapshot_index

    def term_at(self, index: int) -> int:
        if index == self.snapshot_index:
            return self.snapshot_term
        return self.entries[index - self.snapshot_index - 1].term

    def append(self, batch: list[Entry]) -> Model:
        keep = self.entries[: batch[0].index - self.snapshot_index - 1]
        return replace(self, entries=keep + tuple(batch))

    def snapshot(self, index: int, term: int, restore: bool) -> Model:
        kept = () if restore else self.entries[index - self.snapshot_index :]
        return replace(self, snapshot_index=index, snapshot_term=term, entries=kept)


SEGMENT_BYTES = 160

ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("save"),
            st.integers(0, 1000),  # where the batch starts, folded into the valid range
            st.integers(0, 4),  # entries in the batch (0: hard state only)
            st.booleans(),  # with a hard state
            st.binary(max_size=24),
        ),
        st.tuples(st.just("sync")),
        st.tuples(st.just("marker"), st.integers(0, 1000), st.booleans()),
        st.tuples(st.just("release")),
        st.tuples(st.just("crash"), st.integers(0, 2**32 - 1), st.booleans()),
        st.tuples(st.just("reopen")),
    ),
    max_size=50,
)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_crashes_never_lose_a_synced_record_nor_return_a_torn_one(
    script: list[tuple[Any, ...]],
) -> None:
    disk = MemoryDisk()
    wal = WAL.create(disk, "/w", segment_bytes=SEGMENT_BYTES)
    state = Model()
    possible = [state]  # states a crash may leave: the synced one, then every record since
    synced = state
    term = 1
    for op in script:
        kind = op[0]
        segments = len(wal.segment_paths)
        if kind == "save":
            _, where, count, with_hs, data = op
            first = state.snapshot_index + 1 + where % (state.last_index - state.snapshot_index + 1)
            term += where % 2
            batch = [Entry(term, first + k, data + bytes([k])) for k in range(count)]
            hs = None
            if with_hs or not batch:
                hs = HardState(term, NodeId(where % 3), state.last_index)
            wal.save(hs, batch)
            if len(wal.segment_paths) > segments:  # the cut synced what came before
                possible, synced = [state], state
            if batch:
                state = state.append(batch)
                possible.append(state)
            if hs is not None:
                state = replace(state, hard_state=hs)
                possible.append(state)
        elif kind == "sync":
            wal.sync()
            possible, synced = [state], state
        elif kind == "marker":
            _, where, restore = op
            if restore:
                index = state.snapshot_index + where % (state.last_index - state.snapshot_index + 4)
                snap_term = term
            else:
                index = state.snapshot_index + where % (state.last_index - state.snapshot_index + 1)
                snap_term = state.term_at(index)
            wal.save_snapshot_marker(index, snap_term, restore=restore)
            if len(wal.segment_paths) > segments:
                possible, synced = [state], state
            state = state.snapshot(index, snap_term, restore)
            possible.append(state)
        elif kind == "release":
            wal.release_to(synced.snapshot_index)
        else:
            if kind == "crash":
                _, seed, torn = op
                disk.crash(random.Random(seed) if torn else None)
            else:
                wal.close()
            wal, rec = WAL.open(disk, "/w", segment_bytes=SEGMENT_BYTES)
            got = Model(rec.snapshot_index, rec.snapshot_term, rec.hard_state, tuple(rec.entries))
            assert got in possible, (got, possible)
            if kind == "reopen":
                assert got == state
            assert wal.last_index == got.last_index
            state = synced = got
            possible = [state]

"""The command language of the Raft scenario files, over a ``ScriptedCluster``.

Commands (ids are member ids; ``[..]`` is optional)::

    add-nodes N [voters=(1,2,3)] [index=I] [pre-vote=true] [check-quorum=true]
              [disable-proposal-forwarding=true] [election-tick=T]
              [heartbeat-tick=T] [max-size-per-msg=B]
    campaign ID | propose ID DATA | read-index ID CTX | transfer-leader from=ID to=ID
    tick ID N | tick-heartbeat ID.. | tick-election ID..
    process-ready ID.. | deliver-msgs [ID..] [drop=(ID,..)] | stabilize [ID..]
    raft-log ID | raft-state | status ID | state-machine ID | compact ID INDEX
    isolate ID | partition (1) (2,3) | heal | crash ID | restart ID
    log-level debug|info|warning|error|none

Pre-vote and check-quorum are off unless asked for, so each scenario shows
the mechanism it is about. ``tick-election`` ticks ``election_tick`` times
(the shortest timeout: a follower's randomized one may need two), and
``tick-heartbeat`` ``heartbeat_tick`` times. The core's log records at or above
the chosen level (``debug`` by default) are printed where they happen.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

from kvstore.raft.describe import describe_entry, describe_snapshot
from kvstore.raft.messages import NodeId
from tests.support.datadriven import TestData
from tests.support.scripted_cluster import ScriptedCluster

__all__ = ["InteractionEnv"]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "none": logging.CRITICAL + 1,
}
_FLAGS = ("pre-vote", "check-quorum", "disable-proposal-forwarding")
_NUMBERS = ("election-tick", "heartbeat-tick", "max-size-per-msg")


class _Capture(logging.Handler):
    """Writes the core's log records into the scenario output."""

    def __init__(self, env: InteractionEnv) -> None:
        super().__init__(logging.DEBUG)
        self.env = env

    def emit(self, record: logging.LogRecord) -> None:
        self.env.line(f"{record.levelname} {record.getMessage()}")


def _ids(td: TestData) -> list[NodeId]:
    """The bare numeric arguments, as member ids."""
    return [NodeId(int(a.key)) for a in td.args if a.key.isdigit()]


def _id(td: TestData, i: int = 0) -> NodeId:
    return NodeId(int(td.args[i].key))


class InteractionEnv(ScriptedCluster):
    """Runs one command of a scenario file and returns what it printed."""

    def __init__(self) -> None:
        super().__init__()
        self.log_level = logging.DEBUG

    def handle(self, td: TestData) -> str:
        self._out = []
        self._indent = ""
        fn = getattr(self, "cmd_" + td.cmd.replace("-", "_"), None)
        if fn is None:
            raise ValueError(f"{td.pos}: unknown command {td.cmd!r}")
        with self._capture_logs():
            fn(td)
        return "".join(ln.rstrip() + "\n" for ln in self._out)

    @contextmanager
    def _capture_logs(self) -> Iterator[None]:
        log = logging.getLogger("kvstore.raft")
        handler = _Capture(self)
        saved = (log.level, log.propagate)
        log.setLevel(self.log_level)
        log.propagate = False
        log.addHandler(handler)
        try:
            yield
        finally:
            log.removeHandler(handler)
            log.setLevel(saved[0])
            log.propagate = saved[1]

    # -- building and breaking the cluster ------------------------------------
    def cmd_add_nodes(self, td: TestData) -> None:
        config: dict[str, object] = {}
        voters: list[NodeId] = []
        index = 0
        for a in td.args[1:]:
            v = a.vals[0] if a.vals else ""
            if a.key == "voters":
                voters = [NodeId(int(x)) for x in a.vals]
            elif a.key == "index":
                index = int(v)
            elif a.key in _FLAGS:
                config[a.key.replace("-", "_")] = v == "true"
            elif a.key in _NUMBERS:
                config[a.key.replace("-", "_")] = int(v)
            else:
                raise ValueError(f"{td.pos}: unknown add-nodes option {a.key!r}")
        self.add_members(int(td.args[0].key), voters=voters, index=index, **config)

    def cmd_isolate(self, td: TestData) -> None:
        self.isolate(_id(td))

    def cmd_partition(self, td: TestData) -> None:
        self.partition([[NodeId(int(v)) for v in a.vals] for a in td.args])

    def cmd_heal(self, td: TestData) -> None:
        self.heal()

    def cmd_crash(self, td: TestData) -> None:
        self.crash(_id(td))

    def cmd_restart(self, td: TestData) -> None:
        self.restart(_id(td))

    def cmd_compact(self, td: TestData) -> None:
        self.compact(_id(td), int(td.args[1].key))
        self.cmd_raft_log(td)

    def cmd_log_level(self, td: TestData) -> None:
        self.log_level = _LEVELS[td.args[0].key]

    # -- input to members -------------------------------------------------------
    def cmd_campaign(self, td: TestData) -> None:
        self.guard(self.live(_id(td)).campaign)

    def cmd_propose(self, td: TestData) -> None:
        self.guard(partial(self.live(_id(td)).propose, td.args[1].key.encode()))

    def cmd_read_index(self, td: TestData) -> None:
        self.guard(partial(self.live(_id(td)).read_index, td.args[1].key.encode()))

    def cmd_transfer_leader(self, td: TestData) -> None:
        src, dst = td.arg("from"), td.arg("to")
        if src is None or dst is None:
            raise ValueError(f"{td.pos}: transfer-leader needs from= and to=")
        node = self.live(NodeId(int(src.vals[0])))
        self.guard(partial(node.transfer_leader, NodeId(int(dst.vals[0]))))

    def _tick(self, nid: NodeId, times: int) -> None:
        node = self.live(nid)
        for _ in range(times):
            node.tick()

    def cmd_tick(self, td: TestData) -> None:
        self._tick(_id(td), int(td.args[1].key))

    def cmd_tick_heartbeat(self, td: TestData) -> None:
        for nid in _ids(td):
            self._tick(nid, self.member(nid).config.heartbeat_tick)

    def cmd_tick_election(self, td: TestData) -> None:
        for nid in _ids(td):
            self._tick(nid, self.member(nid).config.election_tick)

    # -- the driver loop --------------------------------------------------------
    def cmd_process_ready(self, td: TestData) -> None:
        for nid in _ids(td):
            self.process_ready(nid)

    def cmd_deliver_msgs(self, td: TestData) -> None:
        drop = td.arg("drop")
        self.deliver(_ids(td), [NodeId(int(x)) for x in drop.vals] if drop is not None else [])

    def cmd_stabilize(self, td: TestData) -> None:
        self.stabilize(_ids(td) or self.ids())

    # -- inspection -------------------------------------------------------------
    def cmd_raft_log(self, td: TestData) -> None:
        st = self.member(_id(td)).storage
        snap = st.snapshot()
        if not snap.is_empty():
            self.line("snapshot " + describe_snapshot(snap))
        first, last = st.first_index(), st.last_index()
        if last < first:
            self.line(f"log is empty: first index={first}, last index={last}")
            return
        for e in st.entries(first, last + 1, 1 << 62):
            self.line(describe_entry(e))

    def cmd_raft_state(self, td: TestData) -> None:
        for nid in self.ids():
            node = self.members[nid].node
            if node is None:
                self.line(f"{nid}: down")
                continue
            s = node.status()
            self.line(f"{nid}: {s.raft_state.name} Term:{s.term} Lead:{s.lead}")

    def cmd_status(self, td: TestData) -> None:
        s = self.live(_id(td)).status()
        self.line(
            f"Term:{s.term} Vote:{s.vote} Commit:{s.commit} Applied:{s.applied} "
            f"Lead:{s.lead} State:{s.raft_state.name} LastIndex:{s.last_index}"
            + (f" Transferee:{s.lead_transferee}" if s.lead_transferee else "")
        )
        for member, pr in s.progress.items():
            self.line(f"{member}: {pr.state.name} match={pr.match} next={pr.next}")

    def cmd_state_machine(self, td: TestData) -> None:
        m = self.member(_id(td))
        data = " ".join(d.decode(errors="replace") for _, d in m.applied)
        self.line(f"applied up to {m.applied_index}: [{data}]")

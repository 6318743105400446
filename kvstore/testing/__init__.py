"""Tools that prove the store correct: a linearizability checker and a cluster simulator.

General layout:

- ``linearizability`` + ``models``: is a concurrent history linearizable with
  respect to a register, a counter or a key-value map? (Wing & Gong search
  with Lowe's just-in-time linearization and memoization.)
- The deterministic simulator, run as ``python -m kvstore.testing.simulate``:
  ``network`` (SimNetwork: loss, delay, duplication, partitions), ``statemachine``
  (the replicated register or counter), ``cluster`` (members, their disks and
  the driver loop around each RawNode), ``workload`` (clients and their
  history), ``checker`` (Raft's safety properties, checked after every step),
  ``trace`` (one line per event) and ``simulate`` (options, phases, the CLI).
- ``variants``: deliberately broken cores, to show the simulator catches them.
"""

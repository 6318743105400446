"""The peers ``steer bench --compare`` measures next to Steersman, by name.

``run_peer(name, levels, seconds)`` runs one peer under the load shape of
``runtime.bench.throughput`` (closed-loop puts of 8-byte keys and 256-byte values, ``levels``
puts in flight, ``seconds`` measured per level after a 1 s warm-up) and returns one ``Row`` per
level. A peer that cannot run here (not installed, binary missing, run failed) gives None, with
a note on stderr saying why, so the benchmark still prints the other systems.

    pysyncobj   three pysyncobj processes, load inside the leader (runtime.bench.pysyncobj_peer)
    etcd        three etcd members driven over gRPC with aetcd (runtime.bench.etcd_peer)
"""

from __future__ import annotations

from collections.abc import Callable

from runtime.bench.throughput import Row

__all__ = ["PEERS", "run_peer"]

PEERS = ("etcd", "pysyncobj")


def run_peer(name: str, levels: list[int], seconds: float) -> list[Row] | None:
    """Measure the peer ``name`` at each level; None if it is unavailable here.

    Raises:
        ValueError: ``name`` is not one of ``PEERS``, or ``levels``/``seconds`` are not positive.
    """
    if name not in PEERS:
        raise ValueError(f"unknown benchmark peer {name!r}; known: {', '.join(PEERS)}")
    if not levels or any(n < 1 for n in levels):
        raise ValueError(f"levels must be positive numbers of puts in flight, got {levels}")
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    return _runner(name)(levels, seconds)


def _runner(name: str) -> Callable[[list[int], float], list[Row] | None]:
    # Imported on use: each peer module pulls in its own client libraries.
    if name == "pysyncobj":
        from runtime.bench.pysyncobj_peer import run_pysyncobj

        return run_pysyncobj
    from runtime.bench.etcd_peer import run_etcd

    return run_etcd

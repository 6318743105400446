"""The MVCC state machine on its own: puts, ranges and memory per key, in one process.

    python3 benchmarks/mvcc_bench.py [--puts 200000] [--keys 200000] [--memory-keys 1000000] [--json]

Each ``measure_*`` function returns a dict of figures (``name -> number``) so
other benchmark scripts can import and print them:

- ``measure_puts(n)``: ``KVStore.put`` of n new keys, then n updates of
  existing keys, then the same through ``KVStateMachine.apply`` of
  pre-encoded commands (decode included, encoding not), then updates with
  one synced prefix watcher that is drained every 1,000 puts, then new keys
  again with the cyclic garbage collector off.
- ``measure_ranges(n)``: on a store of n keys: single-key gets, 100-key
  prefix ranges, a count over everything, historical gets, and the first
  range after a burst of new keys (the cost of merging them into key order).
- ``measure_memory_per_key(n_keys, value_size)``: bytes allocated per key
  (``tracemalloc``) for n keys of 16 bytes with distinct values.

Keys are 16 bytes (``/registry/%08d`` in shuffled order), values 256 bytes,
unless told otherwise. Figures are medians of three runs where cheap.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kvstore.clock import FakeClock  # noqa: E402
from kvstore.mvcc import ALL_KEYS, KVStateMachine, encode_put  # noqa: E402

VALUE = b"v" * 256


def _keys(n: int, seed: int = 1) -> list[bytes]:
    keys = [b"/registry/%08d" % i for i in range(n)]
    random.Random(seed).shuffle(keys)
    return keys


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def _timed(fn: Callable[[], object]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _put_all(m: KVStateMachine, keys: list[bytes]) -> None:
    put = m.store.put
    for k in keys:
        put(k, VALUE)


def _put_new(keys: list[bytes]) -> float:
    m = KVStateMachine(FakeClock())
    return _timed(lambda: _put_all(m, keys))


def _put_update(keys: list[bytes]) -> float:
    m = KVStateMachine(FakeClock())
    _put_all(m, keys)
    return _timed(lambda: _put_all(m, keys))


def _apply_new(keys: list[bytes]) -> float:
    m = KVStateMachine(FakeClock())
    commands = [encode_put(k, VALUE) for k in keys]

    def run() -> None:
        apply = m.apply
        for i, data in enumerate(commands, 1):
            apply(i, data)

    return _timed(run)


def _put_update_watched(keys: list[bytes]) -> float:
    m = KVStateMachine(FakeClock())
    put, poll = m.store.put, m.hub.poll
    _put_all(m, keys)
    wid = m.hub.watch("/registry/", prefix=True)

    def run() -> None:
        for i, k in enumerate(keys):
            put(k, VALUE)
            if i % 1000 == 999:
                while poll(wid, 1000) is not None:
                    pass

    return _timed(run)


def _put_new_gc_off(keys: list[bytes]) -> float:
    # The collector off: how much of a put is the cyclic GC walking the
    # growing heap (a host process can gc.freeze() its loaded state).
    gc.disable()
    try:
        return _put_new(keys)
    finally:
        gc.enable()


def measure_puts(n: int) -> dict[str, float]:
    """Puts per second: new keys, updates, through apply, with a watcher, without GC.

    Each figure is measured on a fresh store with nothing else left on the
    heap, since the garbage collector's cost grows with the heap.
    """
    keys = _keys(n)
    cases = {
        "put_new_per_s": _put_new,
        "put_update_per_s": _put_update,
        "apply_put_new_per_s": _apply_new,
        "put_update_watched_per_s": _put_update_watched,
        "put_new_gc_off_per_s": _put_new_gc_off,
    }
    figures: dict[str, float] = {}
    for name, case in cases.items():
        figures[name] = statistics.median(_rate(n, case(keys)) for _ in range(3))
    figures["us_per_put_new"] = 1e6 / figures["put_new_per_s"]
    figures["us_per_put_update"] = 1e6 / figures["put_update_per_s"]
    figures["us_per_apply_put"] = 1e6 / figures["apply_put_new_per_s"]
    figures["n"] = n
    return figures


def measure_ranges(n: int) -> dict[str, float]:
    """Reads per second on a store of ``n`` keys (each written twice, so history exists)."""
    keys = _keys(n)
    m = KVStateMachine(FakeClock())
    store = m.store
    for k in keys:
        store.put(k, VALUE)
    half = store.revision
    for k in keys:
        store.put(k, VALUE)
    merge_seconds = _timed(lambda: store.range("/", prefix=True, limit=1))
    rng = random.Random(2)
    probes = [rng.choice(keys) for _ in range(min(n, 50_000))]
    starts = [b"/registry/%08d" % rng.randrange(max(n - 100, 1)) for _ in range(2_000)]

    def gets() -> None:
        get = store.range
        for k in probes:
            get(k)

    def old_gets() -> None:
        get = store.range
        for k in probes:
            get(k, revision=half)

    def ranges() -> None:
        get = store.range
        for s in starts:
            get(s, ALL_KEYS, limit=100)

    figures = {
        "get_per_s": _rate(len(probes), _timed(gets)),
        "historical_get_per_s": _rate(len(probes), _timed(old_gets)),
        "range100_per_s": _rate(len(starts), _timed(ranges)),
        "count_all_ms": 1e3 * _timed(lambda: store.range("", ALL_KEYS, count_only=True)),
        "first_range_after_n_new_keys_ms": 1e3 * merge_seconds,
        "n": n,
    }
    return figures


def measure_memory_per_key(n_keys: int = 1_000_000, value_size: int = 256) -> dict[str, float]:
    """Bytes allocated per key for ``n_keys`` distinct keys and values (one version each)."""
    keys = [b"/registry/%08d" % i for i in range(n_keys)]
    random.Random(3).shuffle(keys)
    filler = b"x" * (value_size - 8)
    gc.collect()
    tracemalloc.start()
    m = KVStateMachine(FakeClock())
    put = m.store.put
    base = tracemalloc.get_traced_memory()[0]
    for i, k in enumerate(keys):
        put(k, b"%08d" % i + filler)  # a distinct value object per key
    m.store.range("", ALL_KEYS, limit=1)  # merge the key order
    with_log = tracemalloc.get_traced_memory()[0] - base
    m.store.compact(m.store.revision)  # drop the change log: steady state
    gc.collect()
    compacted = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    payload = len(keys[0]) + value_size
    return {
        "bytes_per_key": compacted / n_keys,
        "bytes_per_key_with_change_log": with_log / n_keys,
        "payload_bytes_per_key": payload,
        "overhead_bytes_per_key": compacted / n_keys - payload,
        "n_keys": n_keys,
    }


def _print_table(title: str, figures: dict[str, float]) -> None:
    print(title)
    width = max(len(name) for name in figures)
    for name, value in figures.items():
        text = f"{value:,.0f}" if abs(value) >= 100 or float(value).is_integer() else f"{value:,.2f}"
        print(f"  {name:<{width}}  {text:>14}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--puts", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=200_000)
    parser.add_argument("--memory-keys", type=int, default=1_000_000)
    parser.add_argument("--value-size", type=int, default=256)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = {
        "puts": measure_puts(args.puts),
        "ranges": measure_ranges(args.keys),
        "memory": measure_memory_per_key(args.memory_keys, args.value_size),
    }
    if args.json:
        print(json.dumps({"benchmark": "mvcc", **report}, indent=2))
        return 0
    _print_table(f"puts ({args.puts:,} keys, 256-byte values)", report["puts"])
    _print_table(f"ranges ({args.keys:,} keys)", report["ranges"])
    _print_table(f"memory ({args.memory_keys:,} keys, {args.value_size}-byte values)", report["memory"])
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Free loopback ports for members started by the tests."""

from __future__ import annotations

import random
import socket

__all__ = ["free_port_block"]


def free_port_block(count: int, *, rng: random.Random | None = None) -> int:
    """A base port such that ``base .. base + count - 1`` are all free on 127.0.0.1.

    The ports are only known to be free when this returns; the caller binds
    them at once. Bases are drawn at random in 20000-60000 so concurrent test
    runs rarely pick the same block.
    """
    rng = rng or random.Random()
    for _ in range(500):
        base = rng.randrange(20000, 60000 - count)
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base
    raise RuntimeError(f"no block of {count} free ports found")

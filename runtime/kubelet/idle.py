"""The built-in idle process: what a container with no ``command`` runs.

A container names an image, but the kubelet runs containers as plain OS
processes and pulls no images. A container whose spec gives no ``command``
therefore runs this module in the image's stead::

    python -m runtime.kubelet.idle [args...]

It writes one line naming itself, then sleeps until it gets SIGTERM (or
SIGINT) and exits 0, as a well-behaved long-running server would. Arguments
are accepted and ignored, so a container's ``args`` never break it.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Sleep until SIGTERM or SIGINT; return the exit status (0)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print("steersman idle container: sleeping until SIGTERM", flush=True)
    while not stop.wait(3600.0):
        continue
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

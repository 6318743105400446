"""Simulated containers: no processes, only futures resolved on the injected clock.

For tests and for many kubelets in one process. An attempt "runs" until it
is stopped, except:

- a container whose ``command`` is exactly ``["false"]`` exits 1, and one
  whose ``command`` is exactly ``["true"]`` exits 0, at once;
- an app container of a pod annotated ``steersman.io/simulate-exit-code: "N"``
  exits with code N, after ``steersman.io/simulate-run-seconds`` (default 0)
  on the clock;
- an init container exits 0 at once (unless its command is ``["false"]``).

``terminate()`` makes a running attempt exit 0, like the idle process;
``kill()`` makes it exit 137 (SIGKILL). Each attempt costs one future and
at most one timer; nothing polls.

``SimulatedProbeRunner`` answers every probe with success. A simulated
kubelet records no Events about pods (see ``kubelet``): with hundreds of
nodes in one process, each pod costs only its status writes.
"""

from __future__ import annotations

import asyncio
import itertools
import logging

from controllers.clock import Clock, Timer
from runtime.kubelet.containers import ContainerLaunch, ContainerProcess
from runtime.kubelet.probes import ProbeKind, ProbeResult, ProbeSpec

__all__ = [
    "EXIT_CODE_ANNOTATION",
    "RUN_SECONDS_ANNOTATION",
    "SimulatedProbeRunner",
    "SimulatedProcess",
    "SimulatedRuntime",
    "simulated_exit",
]

log = logging.getLogger(__name__)

EXIT_CODE_ANNOTATION = "steersman.io/simulate-exit-code"
RUN_SECONDS_ANNOTATION = "steersman.io/simulate-run-seconds"


def simulated_exit(launch: ContainerLaunch) -> tuple[int, float] | None:
    """``(exit code, seconds until it exits)`` of a simulated attempt, or None if it runs on."""
    if launch.command == ("false",):
        return 1, 0.0
    if launch.command == ("true",) or launch.is_init:
        return 0, 0.0
    raw = launch.annotations.get(EXIT_CODE_ANNOTATION)
    if raw is None:
        return None
    try:
        code = int(raw)
    except ValueError:
        log.warning("pod %s/%s: annotation %s=%r is not an integer; ignored",
                    launch.namespace, launch.pod_name, EXIT_CODE_ANNOTATION, raw)
        return None
    try:
        seconds = max(0.0, float(launch.annotations.get(RUN_SECONDS_ANNOTATION, "0")))
    except ValueError:
        seconds = 0.0
    return code, seconds


class SimulatedProcess:
    """One simulated attempt (see the module docstring)."""

    def __init__(self, container_id: str, exit_at: tuple[float, int] | None,
                 clock: Clock) -> None:
        self._id = container_id
        self._done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._timer: Timer | None = None
        if exit_at is not None:
            when, code = exit_at
            if when <= clock.now():
                self._done.set_result(code)
            else:
                self._timer = clock.call_at(when, lambda: self._finish(code))

    @property
    def container_id(self) -> str:
        return self._id

    def _finish(self, code: int) -> None:
        if not self._done.done():
            self._done.set_result(code)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def wait(self) -> int:
        return await asyncio.shield(self._done)

    def terminate(self) -> None:
        self._finish(0)

    def kill(self) -> None:
        self._finish(137)


class SimulatedRuntime:
    """Starts simulated attempts at once (see the module docstring)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._ids = itertools.count(1)

    async def start(self, launch: ContainerLaunch) -> ContainerProcess:
        outcome = simulated_exit(launch)
        exit_at = None if outcome is None else (self.clock.now() + outcome[1], outcome[0])
        return SimulatedProcess(f"simulated://{next(self._ids)}", exit_at, self.clock)


class SimulatedProbeRunner:
    """A probe runner whose every probe succeeds."""

    async def run(self, kind: ProbeKind, launch: ContainerLaunch,
                  probe: ProbeSpec) -> ProbeResult:
        return ProbeResult(True)

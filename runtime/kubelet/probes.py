"""Liveness and readiness probes: their settings, the runner seam, and the loop that drives them.

``ProbeSpec.parse`` reads a container's ``livenessProbe`` / ``readinessProbe``
with Kubernetes' defaults (``initialDelaySeconds`` 0, ``periodSeconds`` 10,
``timeoutSeconds`` 1, ``successThreshold`` 1, ``failureThreshold`` 3). Only
``exec`` handlers run; a probe with another handler (``httpGet``,
``tcpSocket``, ``grpc``) is reported once in the log and always succeeds.

A ``ProbeRunner`` runs one probe once: ``ExecProbeRunner`` runs the command
as a process (the container's env and working dir, its own process group)
and succeeds on exit 0; one that outlives ``timeoutSeconds`` (on the
injected clock) is killed and fails. Tests inject their own runner.

A ``Prober`` drives one probe of one container attempt: it waits
``initialDelaySeconds``, then probes every ``periodSeconds``, and calls
``on_result(True)`` after ``successThreshold`` successes in a row or
``on_result(False)`` after ``failureThreshold`` failures in a row, only when
the result changes. A readiness result starts as not ready; a liveness
result starts as alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from controllers.clock import Clock
from runtime.kubelet.containers import ContainerLaunch
from runtime.kubelet.process import signal_group

__all__ = ["ExecProbeRunner", "ProbeKind", "ProbeRunner", "ProbeSpec", "Prober"]

log = logging.getLogger(__name__)


class ProbeKind(str, enum.Enum):
    LIVENESS = "liveness"
    READINESS = "readiness"


def _number(probe: Mapping[str, Any], key: str, default: float, minimum: float) -> float:
    value = probe.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return max(minimum, float(value))


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    """One probe's settings (see the module docstring for defaults)."""

    command: tuple[str, ...]
    handler: str = "exec"
    initial_delay_seconds: float = 0.0
    period_seconds: float = 10.0
    timeout_seconds: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def parse(cls, probe: Mapping[str, Any], kind: ProbeKind) -> ProbeSpec:
        exec_ = probe.get("exec")
        handlers = sorted(k for k in ("exec", "httpGet", "tcpSocket", "grpc") if k in probe)
        command: tuple[str, ...] = ()
        if isinstance(exec_, Mapping):
            command = tuple(str(c) for c in exec_.get("command") or ())
        success = int(_number(probe, "successThreshold", 1, 1))
        return cls(
            command=command,
            handler=handlers[0] if handlers else "",
            initial_delay_seconds=_number(probe, "initialDelaySeconds", 0.0, 0.0),
            period_seconds=_number(probe, "periodSeconds", 10.0, 1.0),
            timeout_seconds=_number(probe, "timeoutSeconds", 1.0, 1.0),
            # A liveness probe needs one success, as Kubernetes requires.
            success_threshold=1 if kind is ProbeKind.LIVENESS else success,
            failure_threshold=int(_number(probe, "failureThreshold", 3, 1)),
        )


class ProbeRunner(Protocol):
    """Runs a probe once."""

    async def run(self, kind: ProbeKind, launch: ContainerLaunch, probe: ProbeSpec) -> bool:
        """True if the probe succeeded."""
        ...


class ExecProbeRunner:
    """Runs ``exec`` probes as processes, with timeouts on ``clock``."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def run(self, kind: ProbeKind, launch: ContainerLaunch, probe: ProbeSpec) -> bool:
        if not probe.command:
            return False
        try:
            proc = await asyncio.create_subprocess_exec(
                *probe.command, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                cwd=str(launch.working_dir), env=launch.env_dict(), start_new_session=True)
        except OSError as e:
            log.info("%s probe of %s/%s %s: %s", kind.value, launch.namespace, launch.pod_name,
                     launch.container, e)
            return False
        waiter: asyncio.Future[int] = asyncio.ensure_future(proc.wait())
        expired: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        timer = self.clock.call_at(self.clock.now() + probe.timeout_seconds,
                                   lambda: None if expired.done() else expired.set_result(None))
        timed_out = True
        try:
            await asyncio.wait([waiter, expired], return_when=asyncio.FIRST_COMPLETED)
            timed_out = not waiter.done()
        finally:
            timer.cancel()
            expired.cancel()
            if not waiter.done():
                signal_group(proc.pid, signal.SIGKILL)
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
            # Whatever the probe left behind in its group goes too.
            signal_group(proc.pid, signal.SIGKILL)
        if timed_out:
            log.info("%s probe of %s/%s %s timed out after %ss", kind.value, launch.namespace,
                     launch.pod_name, launch.container, probe.timeout_seconds)
            return False
        return waiter.result() == 0


class Prober:
    """Drives one probe of one attempt (see the module docstring)."""

    def __init__(
        self,
        kind: ProbeKind,
        spec: ProbeSpec,
        runner: ProbeRunner,
        launch: ContainerLaunch,
        clock: Clock,
        on_result: Callable[[bool], None],
    ) -> None:
        self.kind = kind
        self.spec = spec
        self.runner = runner
        self.launch = launch
        self.clock = clock
        self.on_result = on_result
        self.result = kind is ProbeKind.LIVENESS
        self.runs = 0
        """Probes run so far (for tests and metrics)."""
        self.busy = False
        """Whether a probe is running now."""

    async def _once(self) -> bool:
        if self.spec.handler != "exec":
            return True
        self.runs += 1
        self.busy = True
        try:
            return await self.runner.run(self.kind, self.launch, self.spec)
        except asyncio.CancelledError:
            raise
        except Exception:  # a broken runner is a failed probe, not a dead prober
            log.exception("%s probe of %s/%s %s failed to run", self.kind.value,
                          self.launch.namespace, self.launch.pod_name, self.launch.container)
            return False
        finally:
            self.busy = False

    async def run(self) -> None:
        """Probe until cancelled."""
        if self.spec.handler != "exec":
            log.warning("%s probe of %s/%s %s: %s probes are not supported; treated as "
                        "succeeding", self.kind.value, self.launch.namespace,
                        self.launch.pod_name, self.launch.container, self.spec.handler or "empty")
        await self.clock.sleep(self.spec.initial_delay_seconds)
        successes = failures = 0
        while True:
            if await self._once():
                successes, failures = successes + 1, 0
                if successes >= self.spec.success_threshold:
                    self._report(True)
            else:
                successes, failures = 0, failures + 1
                if failures >= self.spec.failure_threshold:
                    self._report(False)
            await self.clock.sleep(self.spec.period_seconds)

    def _report(self, result: bool) -> None:
        if result != self.result:
            self.result = result
            self.on_result(result)

"""Liveness and readiness probes: their settings, the runner seam, and the loop that drives them.

``ProbeSpec.parse`` reads a container's ``livenessProbe`` / ``readinessProbe``
with Kubernetes' defaults (``initialDelaySeconds`` 0, ``periodSeconds`` 10,
``timeoutSeconds`` 1, ``successThreshold`` 1, ``failureThreshold`` 3) and
its handler: ``exec`` (``command``), ``httpGet`` (``host``, default
127.0.0.1 as pods are local processes; ``port``, a number or the name of
one of the container's ``ports``; ``path``, default ``/``; ``scheme`` HTTP
or HTTPS; ``httpHeaders``) or ``tcpSocket`` (``host``, ``port``). ``grpc``
probes are not supported: such a probe (or one with no handler) is reported
once in the log as a warning, never run, and always succeeds.

A ``ProbeRunner`` runs one probe once and returns a ``ProbeResult`` (success
and the output shown in events), or raises ``ProbeError`` when the probe
cannot run at all (a named port the container does not declare): as in
Kubernetes, such a result is thrown away, not counted as a failure.
``probe_runner.LocalProbeRunner`` runs the handlers above; tests inject
their own runner.

A ``Prober`` drives one probe of one container attempt: it waits
``initialDelaySeconds``, then probes every ``periodSeconds``, and calls
``on_result(True)`` after ``successThreshold`` successes in a row or
``on_result(False)`` after ``failureThreshold`` failures in a row, only when
the result changes. A readiness result starts as not ready; a liveness
result starts as alive. Each failed (or errored) probe also calls
``on_unhealthy`` with the message of the ``Unhealthy`` event the kubelet
records ("Liveness probe failed: OUTPUT").
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from controllers.clock import Clock
from runtime.kubelet import events
from runtime.kubelet.containers import ContainerLaunch

__all__ = [
    "DEFAULT_PROBE_HOST",
    "ProbeError",
    "ProbeKind",
    "ProbeResult",
    "ProbeRunner",
    "ProbeSpec",
    "Prober",
    "SUPPORTED_HANDLERS",
    "resolve_port",
]

log = logging.getLogger(__name__)

DEFAULT_PROBE_HOST = "127.0.0.1"
SUPPORTED_HANDLERS = ("exec", "httpGet", "tcpSocket")


class ProbeKind(str, enum.Enum):
    LIVENESS = "liveness"
    READINESS = "readiness"


class ProbeError(Exception):
    """A probe could not run at all (its result is thrown away, not counted as a failure)."""


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe's outcome: ``success``, and what the probe said (shown in events)."""

    success: bool
    output: str = ""


def _number(probe: Mapping[str, Any], key: str, default: float, minimum: float) -> float:
    value = probe.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return max(minimum, float(value))


def resolve_port(port: Any, container_ports: Sequence[Any]) -> int:
    """The number of a probe's ``port``: a number, the name of a container port, or a
    number written as a string (as Kubernetes resolves it).

    Raises:
        ProbeError: no such named port, or not a port number (1-65535).
    """
    number: Any = port
    if isinstance(port, str):
        named = [p.get("containerPort") for p in container_ports
                 if isinstance(p, Mapping) and p.get("name") == port]
        if named:
            number = named[0]
        else:
            try:
                number = int(port)
            except ValueError:
                raise ProbeError(f"port {port!r} not found in the container's ports") from None
    if isinstance(number, bool) or not isinstance(number, int) or not 0 < number < 65536:
        raise ProbeError(f"invalid port number: {port!r}")
    return number


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    """One probe's settings (see the module docstring for defaults)."""

    command: tuple[str, ...] = ()
    handler: str = "exec"
    host: str = DEFAULT_PROBE_HOST
    port: int = 0
    path: str = "/"
    scheme: str = "HTTP"
    http_headers: tuple[tuple[str, str], ...] = ()
    invalid: str = ""
    """Why this probe cannot run (``ProbeError``); empty if it can."""
    initial_delay_seconds: float = 0.0
    period_seconds: float = 10.0
    timeout_seconds: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def parse(cls, probe: Mapping[str, Any], kind: ProbeKind,
              container_ports: Sequence[Any] = ()) -> ProbeSpec:
        """The settings of ``probe``; ``container_ports`` resolves named ports."""
        handlers = sorted(k for k in ("exec", "httpGet", "tcpSocket", "grpc") if k in probe)
        handler = handlers[0] if handlers else ""
        action = probe.get(handler) if handler else None
        action = action if isinstance(action, Mapping) else {}
        command: tuple[str, ...] = ()
        port = 0
        invalid = ""
        headers: tuple[tuple[str, str], ...] = ()
        if handler == "exec":
            command = tuple(str(c) for c in action.get("command") or ())
        elif handler in ("httpGet", "tcpSocket"):
            try:
                port = resolve_port(action.get("port"), container_ports)
            except ProbeError as e:
                invalid = str(e)
            headers = tuple((str(h.get("name", "")), str(h.get("value", "")))
                            for h in action.get("httpHeaders") or ()
                            if isinstance(h, Mapping) and h.get("name"))
        success = int(_number(probe, "successThreshold", 1, 1))
        return cls(
            command=command,
            handler=handler,
            host=str(action.get("host") or DEFAULT_PROBE_HOST),
            port=port,
            path=str(action.get("path") or "/"),
            scheme=str(action.get("scheme") or "HTTP").upper(),
            http_headers=headers,
            invalid=invalid,
            initial_delay_seconds=_number(probe, "initialDelaySeconds", 0.0, 0.0),
            period_seconds=_number(probe, "periodSeconds", 10.0, 1.0),
            timeout_seconds=_number(probe, "timeoutSeconds", 1.0, 1.0),
            # A liveness probe needs one success, as Kubernetes requires.
            success_threshold=1 if kind is ProbeKind.LIVENESS else success,
            failure_threshold=int(_number(probe, "failureThreshold", 3, 1)),
        )


class ProbeRunner(Protocol):
    """Runs a probe once."""

    async def run(self, kind: ProbeKind, launch: ContainerLaunch,
                  probe: ProbeSpec) -> ProbeResult:
        """The probe's result.

        Raises:
            ProbeError: the probe could not run at all.
        """
        ...


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
        on_unhealthy: Callable[[str], None] | None = None,
    ) -> None:
        self.kind = kind
        self.spec = spec
        self.runner = runner
        self.launch = launch
        self.clock = clock
        self.on_result = on_result
        self.on_unhealthy = on_unhealthy
        self.result = kind is ProbeKind.LIVENESS
        self.runs = 0
        """Probes run so far (for tests and metrics)."""
        self.busy = False
        """Whether a probe is running now."""

    @property
    def supported(self) -> bool:
        return self.spec.handler in SUPPORTED_HANDLERS

    def _where(self) -> str:
        return (f"{self.kind.value} probe of {self.launch.namespace}/{self.launch.pod_name} "
                f"{self.launch.container}")

    async def _once(self) -> bool | None:
        """True or False, or None when the probe could not run (the result is dropped)."""
        if not self.supported:
            return True
        self.runs += 1
        self.busy = True
        try:
            if self.spec.invalid:
                raise ProbeError(self.spec.invalid)
            result = await self.runner.run(self.kind, self.launch, self.spec)
        except asyncio.CancelledError:
            raise
        except ProbeError as e:
            log.info("%s errored: %s", self._where(), e)
            self._unhealthy(events.probe_errored_message(self.kind.value, str(e)))
            return None
        except Exception as e:  # a broken runner is a failed probe, not a dead prober
            log.exception("%s failed to run", self._where())
            result = ProbeResult(False, f"{type(e).__name__}: {e}")
        finally:
            self.busy = False
        if not result.success:
            log.info("%s failed: %s", self._where(), result.output)
            self._unhealthy(events.probe_failed_message(self.kind.value, result.output))
        return result.success

    def _unhealthy(self, message: str) -> None:
        if self.on_unhealthy is not None:
            self.on_unhealthy(message)

    async def run(self) -> None:
        """Probe until cancelled."""
        if not self.supported:
            log.warning("%s: %s probes are not supported; treated as succeeding",
                        self._where(), self.spec.handler or "handler-less")
        await self.clock.sleep(self.spec.initial_delay_seconds)
        successes = failures = 0
        while True:
            ok = await self._once()
            if ok is True:
                successes, failures = successes + 1, 0
                if successes >= self.spec.success_threshold:
                    self._report(True)
            elif ok is False:
                successes, failures = 0, failures + 1
                if failures >= self.spec.failure_threshold:
                    self._report(False)
            await self.clock.sleep(self.spec.period_seconds)

    def _report(self, result: bool) -> None:
        if result != self.result:
            self.result = result
            self.on_result(result)

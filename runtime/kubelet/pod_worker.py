"""``PodWorker``: runs one pod on this node, from its first container to its last signal.

One worker per pod uid. Its main task runs the init containers one at a
time, in order, each to a successful exit, then every app container at once,
each in its own task, until none will run again:

- An attempt is started through the ``ContainerRuntime``; a container's
  first attempt waits ``start_delay`` on the clock first (creation time; 0
  for real processes). An attempt that cannot start ends at once with exit
  code 128, reason ``StartError``.
- When an attempt ends, ``restartPolicy`` decides: Always restarts it,
  OnFailure restarts it after a non-zero exit or a liveness failure, Never
  does not. An init container is restarted until it succeeds unless the
  policy is Never, which fails the pod. Each restart waits the crash-loop
  back-off (``backoff``) with the container ``waiting`` in
  ``CrashLoopBackOff``; ``restartCount`` counts restarts.
- While an app container runs, its readiness probe sets ``ready`` (ready at
  once without one), and its liveness probe, failing, stops the attempt:
  SIGTERM, then SIGKILL after the grace period.
- An update that changes an app container's ``image`` stops its running
  attempt the same way and starts a new one at once, whatever the policy.

Stopping (``begin_deletion`` when the pod gets ``deletionTimestamp``,
``shutdown`` when the kubelet stops, ``kill_now`` when the pod vanishes):
no attempt starts any more, every running attempt gets SIGTERM, and each
still running when the grace period ends (``deletionGracePeriodSeconds``,
else ``terminationGracePeriodSeconds``, else 30 s; a later, shorter one
wins) gets SIGKILL. A deletion then reports the final status (Succeeded if
every container exited 0, else Failed) and calls ``finish_deletion``.

A pod running longer than ``spec.activeDeadlineSeconds`` (counted from
``startTime``) is stopped the same way and fails with reason
``DeadlineExceeded``.

Every change calls ``on_change`` so the status manager writes ``status()``;
the worker itself never writes to the store. What happens to the pod's
containers is told through ``recorder`` as the kubelet's Events (see
``events``: Created, Started, Failed, Killing, BackOff, Unhealthy,
DeadlineExceeded); none is recorded about a pod that vanished.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from controllers.api.objects import Obj, WallClock, format_timestamp, parse_timestamp
from controllers.clock import Clock, Timer
from runtime.kubelet import events, logs
from runtime.kubelet.backoff import CrashLoopBackoff
from runtime.kubelet.containers import (
    ContainerLaunch,
    ContainerProcess,
    ContainerRuntime,
    ContainerStartError,
    build_launch,
)
from runtime.kubelet.events import EventSink, NoEvents
from runtime.kubelet.probes import ProbeKind, Prober, ProbeRunner, ProbeSpec
from runtime.kubelet.status import ContainerRecord, pod_status

__all__ = ["DEFAULT_GRACE_SECONDS", "PodWorker"]

log = logging.getLogger(__name__)

DEFAULT_GRACE_SECONDS = 30


def _grace_of(pod: Obj) -> int:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    for value in (meta.get("deletionGracePeriodSeconds"),
                  spec.get("terminationGracePeriodSeconds")):
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return DEFAULT_GRACE_SECONDS


def _resource_version(pod: Obj) -> int:
    try:
        return int((pod.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


class PodWorker:
    """Runs one pod (see the module docstring)."""

    def __init__(
        self,
        pod: Obj,
        *,
        runtime: ContainerRuntime,
        probe_runner: ProbeRunner,
        clock: Clock,
        wall: WallClock,
        root_dir: Path,
        host_ip: str,
        pod_ip: str,
        start_delay: float = 0.0,
        on_change: Callable[[PodWorker], None],
        on_finished: Callable[[PodWorker], None],
        finish_deletion: Callable[[PodWorker], Awaitable[None]],
        recorder: EventSink | None = None,
    ) -> None:
        self.pod = pod
        meta = pod.get("metadata") or {}
        self.namespace = str(meta.get("namespace", ""))
        self.name = str(meta.get("name", ""))
        self.uid = str(meta.get("uid", ""))
        self.key = f"{self.namespace}/{self.name}"
        self.runtime = runtime
        self.probe_runner = probe_runner
        self.clock = clock
        self.wall = wall
        self.root_dir = root_dir
        self.pod_dir = logs.pod_dir(root_dir, self.namespace, self.name, self.uid)
        self.host_ip = host_ip
        self.pod_ip = pod_ip
        self.start_delay = start_delay
        self._on_change = on_change
        self._on_finished = on_finished
        self._finish_deletion = finish_deletion
        self.recorder: EventSink = recorder if recorder is not None else NoEvents()
        spec = pod.get("spec") or {}
        self._init_specs = [c for c in spec.get("initContainers") or () if isinstance(c, dict)]
        self._app_specs = [c for c in spec.get("containers") or () if isinstance(c, dict)]
        self.restart_policy = str(spec.get("restartPolicy") or "Always")
        previous = pod.get("status") or {}
        self.start_time = str(previous.get("startTime") or self._stamp())
        counts = {str(s.get("name")): s.get("restartCount", 0)
                  for key in ("initContainerStatuses", "containerStatuses")
                  for s in previous.get(key) or () if isinstance(s, dict)}
        first_wait = "PodInitializing" if self._init_specs else "ContainerCreating"
        self.init = [self._record(c, "PodInitializing", counts) for c in self._init_specs]
        self.app = [self._record(c, first_wait, counts) for c in self._app_specs]
        self.init_failed = False
        self.final = False
        self.finished = False
        self.deleting = False
        self.deadline_exceeded = False
        self._deadline_seconds = 0
        self._deadline_timer: Timer | None = None
        self._stopping = False
        self._killing = False
        self._kill_at = float("inf")
        self._deadline_wake: asyncio.Future[None] | None = None
        self._pauses: list[asyncio.Future[None]] = []
        self._procs: dict[str, ContainerProcess] = {}
        self._kill_timers: dict[str, Timer] = {}
        self._liveness_failed: dict[str, bool] = {}
        self._probers: dict[str, list[Prober]] = {}
        # App containers stopped because their image changed (restarted at once).
        self._image_changed: dict[str, bool] = {}
        # Containers that have had a first attempt (only the first waits ``start_delay``).
        self._attempted: set[str] = set()
        self._main: asyncio.Task[None] | None = None
        self._stopper: asyncio.Task[None] | None = None
        self._deleter: asyncio.Task[None] | None = None

    def _record(self, c: Obj, reason: str, counts: dict[str, Any]) -> ContainerRecord:
        rec = ContainerRecord(str(c.get("name", "")), str(c.get("image", "")))
        rec.set_waiting(reason)
        count = counts.get(rec.name)
        if isinstance(count, int) and count > 0:
            rec.restart_count = count
        return rec

    # -- life cycle ----------------------------------------------------------------
    def start(self) -> None:
        """Start the main task, then act on the pod as first seen (it may be deleting)."""
        if self._main is None:
            self._main = asyncio.create_task(self._run(), name=f"pod {self.key}")
            self.update(self.pod)

    def update(self, pod: Obj) -> None:
        """Take a newer version of the pod (older ones are ignored)."""
        if _resource_version(pod) < _resource_version(self.pod):
            return
        self.pod = pod
        self._arm_deadline()
        self._maybe_change_images()
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            self.begin_deletion()

    def _arm_deadline(self) -> None:
        """(Re)schedule the end of ``spec.activeDeadlineSeconds``, counted from ``startTime``."""
        seconds = (self.pod.get("spec") or {}).get("activeDeadlineSeconds")
        if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds <= 0:
            return
        if seconds == self._deadline_seconds or self._main is None:
            return
        self._deadline_seconds = seconds
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
        try:
            started = parse_timestamp(self.start_time)
        except ValueError:
            started = self.wall.now()
        left = started + seconds - self.wall.now()
        self._deadline_timer = self.clock.call_at(self.clock.now() + max(0.0, left),
                                                  self._deadline_passed)

    def _maybe_change_images(self) -> None:
        """Restart each app container whose image was changed (the only mutable field)."""
        containers = (self.pod.get("spec") or {}).get("containers") or ()
        if len(containers) != len(self._app_specs) or self._stopping:
            return
        for i, c in enumerate(containers):
            if not isinstance(c, dict) or c.get("image") == self._app_specs[i].get("image"):
                continue
            self._app_specs[i] = c
            rec = self.app[i]
            rec.image = str(c.get("image", ""))
            proc = self._procs.get(rec.name)
            if proc is not None and rec.name not in self._image_changed:
                log.info("pod %s container %s: image changed; restarting it", self.key,
                         rec.name)
                self._image_changed[rec.name] = True
                self._event(events.NORMAL, events.KILLING,
                            f"Container {rec.name} definition changed, will be restarted")
                proc.terminate()
                self._kill_timers[rec.name] = self.clock.call_at(
                    self.clock.now() + _grace_of({"spec": self.pod.get("spec") or {}}),
                    proc.kill)
            self._changed()

    def _deadline_passed(self) -> None:
        if self.finished or self._stopping:
            return
        log.info("pod %s passed its activeDeadlineSeconds; stopping it", self.key)
        self.deadline_exceeded = True
        self._event(events.NORMAL, events.DEADLINE_EXCEEDED, events.DEADLINE_MESSAGE)
        self._begin_stop(_grace_of(self.pod))
        self._changed()

    def begin_deletion(self) -> None:
        """Stop the pod for its deletion (idempotent; a shorter grace shortens the wait)."""
        self._begin_stop(_grace_of(self.pod))
        if self._deleter is None:
            self.deleting = True
            self._deleter = asyncio.create_task(self._delete_flow(), name=f"delete {self.key}")

    async def shutdown(self) -> None:
        """Stop every container within the pod's grace period and wait (the kubelet stops)."""
        await self._begin_stop(_grace_of(self.pod))
        await self._close()

    async def kill_now(self) -> None:
        """Stop every container at once (the pod vanished) and wait."""
        await self._begin_stop(0, announce=False)
        await self._close()

    async def _close(self) -> None:
        tasks = [t for t in (self._deleter,) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def is_running(self, container: str) -> bool:
        return container in self._procs

    def status(self) -> dict[str, Any]:
        """The pod's status as this worker sees it now."""
        failure = (("DeadlineExceeded", "Pod was active on the node longer than the specified "
                    "deadline") if self.deadline_exceeded else None)
        return pod_status(self.pod, init=self.init, app=self.app, init_failed=self.init_failed,
                          final=self.final, host_ip=self.host_ip, pod_ip=self.pod_ip,
                          start_time=self.start_time, now=self._stamp(), failure=failure)

    def observe(self, pod: Obj) -> None:
        """Take the pod as just written or read by the status manager."""
        self.update(pod)

    # -- logs ----------------------------------------------------------------------
    def log_path(self, container: str) -> Path:
        return logs.container_log_path(self.root_dir, self.namespace, self.name, self.uid,
                                       container)

    def attempt_alive(self, container: str) -> Callable[[], bool]:
        """A check that stays true while the attempt of ``container`` running now runs."""
        proc = self._procs.get(container)
        if proc is None:
            return lambda: False
        return lambda: self._procs.get(container) is proc

    def probers(self, container: str) -> list[Prober]:
        """The probers of the attempt of ``container`` running now."""
        return list(self._probers.get(container, ()))

    def has_container(self, container: str) -> bool:
        return any(r.name == container for r in (*self.init, *self.app))

    # -- helpers -------------------------------------------------------------------
    def _stamp(self) -> str:
        return format_timestamp(self.wall.now())

    def _changed(self) -> None:
        self._on_change(self)

    def _event(self, type_: str, reason: str, message: str) -> None:
        self.recorder.event(events.pod_ref(self.pod), type_, reason, message)

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` on the clock, or less if the pod starts stopping."""
        if self._stopping:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timer = self.clock.call_at(self.clock.now() + seconds,
                                   lambda: None if fut.done() else fut.set_result(None))
        self._pauses.append(fut)
        try:
            await fut
        finally:
            timer.cancel()
            self._pauses.remove(fut)

    def _launch(self, c: Obj, *, is_init: bool) -> ContainerLaunch:
        name = str(c.get("name", ""))
        return build_launch(self.pod, c, is_init=is_init, log_path=self.log_path(name),
                            pod_dir=self.pod_dir, pod_ip=self.pod_ip, host_ip=self.host_ip)

    # -- running -------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            if not await self._run_init():
                return
            for rec in self.app:
                rec.set_waiting("ContainerCreating")
            self._changed()
            runners = [asyncio.create_task(self._run_container(i))
                       for i in range(len(self.app))]
            try:
                await asyncio.gather(*runners)
            finally:
                for task in runners:
                    task.cancel()
                await asyncio.gather(*runners, return_exceptions=True)
        except Exception:  # a bug must stop this pod only, with its processes
            log.exception("pod %s: worker failed; its containers were stopped", self.key)
        finally:
            self.finished = True
            if self._deadline_timer is not None:
                self._deadline_timer.cancel()
            self._changed()
            self._on_finished(self)

    async def _run_init(self) -> bool:
        for rec, c in zip(self.init, self._init_specs):
            backoff = CrashLoopBackoff()
            while True:
                outcome = await self._attempt(rec, c, is_init=True)
                if outcome is None or self._stopping:
                    return False
                code, ran_for, _ = outcome
                if code == 0:
                    break
                if self.restart_policy == "Never":
                    self.init_failed = True
                    return False
                await self._back_off(rec, backoff, ran_for)
                if self._stopping:
                    return False
        return True

    async def _run_container(self, index: int) -> None:
        rec = self.app[index]
        backoff = CrashLoopBackoff()
        while True:
            outcome = await self._attempt(rec, self._app_specs[index], is_init=False)
            if outcome is None or self._stopping:
                return
            code, ran_for, liveness_failed = outcome
            if self._image_changed.pop(rec.name, False):
                rec.restart_count += 1  # a new image: restarted at once, whatever the policy
                continue
            policy = self.restart_policy
            if not (policy == "Always" or (policy == "OnFailure" and
                                           (code != 0 or liveness_failed))):
                return
            await self._back_off(rec, backoff, ran_for)
            if self._stopping:
                return

    async def _back_off(self, rec: ContainerRecord, backoff: CrashLoopBackoff,
                        ran_for: float) -> None:
        delay = backoff.next_delay(ran_for)
        rec.set_waiting("CrashLoopBackOff", f"back-off {delay:g}s restarting failed container="
                        f"{rec.name} pod={self.name}_{self.namespace}({self.uid})")
        self._event(events.WARNING, events.BACK_OFF,
                    events.back_off_message(rec.name, self.name, self.namespace, self.uid))
        self._changed()
        await self._pause(delay)
        if not self._stopping:
            rec.restart_count += 1

    async def _attempt(self, rec: ContainerRecord, c: Obj, *,
                       is_init: bool) -> tuple[int, float, bool] | None:
        """Run one attempt to its end: (exit code, seconds it ran, liveness failed); None if
        the pod began stopping before it started."""
        if self._stopping:
            return None
        if self.start_delay > 0 and rec.name not in self._attempted:
            rec.set_waiting("ContainerCreating")
            self._changed()
            await self._pause(self.start_delay)
            if self._stopping:
                return None
        self._attempted.add(rec.name)
        launch = self._launch(c, is_init=is_init)
        try:
            proc = await self.runtime.start(launch)
        except ContainerStartError as e:
            log.warning("pod %s container %s: %s", self.key, rec.name, e)
            rec.container_id = ""
            rec.set_terminated(128, finished_at=self._stamp(), reason="StartError",
                               message=str(e))
            self._event(events.WARNING, events.FAILED, f"Error: {e}")
            self._changed()
            return 128, 0.0, False
        self._procs[rec.name] = proc
        self._event(events.NORMAL, events.CREATED, f"Created container {rec.name}")
        self._event(events.NORMAL, events.STARTED, f"Started container {rec.name}")
        if self._killing:
            proc.kill()
        elif self._stopping:
            proc.terminate()
        rec.set_running(self._stamp(), proc.container_id, self.clock.now())
        probers = [] if is_init else self._start_probers(rec, c, launch, proc)
        self._probers[rec.name] = [p for p, _ in probers]
        if not is_init and not any(p.kind is ProbeKind.READINESS for p, _ in probers):
            rec.ready = True
        self._changed()
        try:
            code = await proc.wait()
        except BaseException:
            # A cancelled wait must not leave the attempt behind.
            proc.kill()
            raise
        finally:
            for _, task in probers:
                task.cancel()
            await asyncio.gather(*(t for _, t in probers), return_exceptions=True)
            self._probers.pop(rec.name, None)
            timer = self._kill_timers.pop(rec.name, None)
            if timer is not None:
                timer.cancel()
            if self._procs.get(rec.name) is proc:
                del self._procs[rec.name]
        liveness_failed = self._liveness_failed.pop(rec.name, False)
        rec.set_terminated(code, finished_at=self._stamp())
        self._changed()
        return code, self.clock.now() - rec.started_clock, liveness_failed

    def _start_probers(self, rec: ContainerRecord, c: Obj, launch: ContainerLaunch,
                       proc: ContainerProcess) -> list[tuple[Prober, asyncio.Task[None]]]:
        out = []
        for kind, key in ((ProbeKind.READINESS, "readinessProbe"),
                          (ProbeKind.LIVENESS, "livenessProbe")):
            probe = c.get(key)
            if not isinstance(probe, dict):
                continue
            spec = ProbeSpec.parse(probe, kind, c.get("ports") or ())

            def on_result(ok: bool, kind: ProbeKind = kind, probe: Obj = probe) -> None:
                self._probe_result(rec, proc, kind, ok, probe)

            def on_unhealthy(message: str) -> None:
                if self._procs.get(rec.name) is proc:
                    self._event(events.WARNING, events.UNHEALTHY, message)

            prober = Prober(kind, spec, self.probe_runner, launch, self.clock, on_result,
                            on_unhealthy)
            out.append((prober, asyncio.create_task(prober.run())))
        return out

    def _probe_result(self, rec: ContainerRecord, proc: ContainerProcess, kind: ProbeKind,
                      ok: bool, probe: Obj) -> None:
        if self._procs.get(rec.name) is not proc:
            return
        if kind is ProbeKind.READINESS:
            rec.ready = ok
            self._changed()
            return
        if ok or rec.name in self._liveness_failed:
            return
        log.info("pod %s container %s failed its liveness probe; stopping it", self.key, rec.name)
        self._liveness_failed[rec.name] = True
        restarts = ", will be restarted" if self.restart_policy != "Never" else ""
        self._event(events.NORMAL, events.KILLING,
                    f"Container {rec.name} failed liveness probe{restarts}")
        grace = probe.get("terminationGracePeriodSeconds")
        if not isinstance(grace, int) or isinstance(grace, bool) or grace < 0:
            grace = _grace_of({"spec": self.pod.get("spec") or {}})
        proc.terminate()
        self._kill_timers[rec.name] = self.clock.call_at(self.clock.now() + grace, proc.kill)

    # -- stopping ------------------------------------------------------------------
    def _begin_stop(self, grace: float, *, announce: bool = True) -> asyncio.Task[None]:
        deadline = self.clock.now() + max(0.0, grace)
        if self._stopper is None:
            self._stopping = True
            self._kill_at = deadline
            for fut in list(self._pauses):
                if not fut.done():
                    fut.set_result(None)
            for name, proc in list(self._procs.items()):
                if announce:
                    self._event(events.NORMAL, events.KILLING, f"Stopping container {name}")
                proc.terminate()
            self._stopper = asyncio.create_task(self._stop_containers(),
                                                name=f"stop {self.key}")
        elif deadline < self._kill_at:
            self._kill_at = deadline
            if self._deadline_wake is not None and not self._deadline_wake.done():
                self._deadline_wake.set_result(None)
        return self._stopper

    async def _stop_containers(self) -> None:
        main = self._main
        if main is None:
            return
        loop = asyncio.get_running_loop()
        while not main.done() and self.clock.now() < self._kill_at:
            wake: asyncio.Future[None] = loop.create_future()

            def fire(*_: object, wake: asyncio.Future[None] = wake) -> None:
                if not wake.done():
                    wake.set_result(None)

            timer = self.clock.call_at(self._kill_at, fire)
            main.add_done_callback(fire)
            self._deadline_wake = wake
            try:
                await wake
            finally:
                timer.cancel()
                main.remove_done_callback(fire)
                self._deadline_wake = None
        if not main.done():
            self._killing = True
            for proc in list(self._procs.values()):
                proc.kill()
            await asyncio.wait([main])

    async def _delete_flow(self) -> None:
        if self._stopper is not None:
            await self._stopper
        self.final = True
        self._changed()
        await self._finish_deletion(self)

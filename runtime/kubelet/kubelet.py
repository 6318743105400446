"""``Kubelet``: the node agent. It registers a Node, keeps its Lease fresh, and runs the
pods bound to it as OS processes (or, ``simulated=True``, as no processes at all).

    kubelet = Kubelet(Clientset(kv), "node-1", root_dir=Path("/var/lib/steersman"))
    kubelet.start()            # or: await kubelet.run() until cancelled
    await kubelet.wait_ready() # registered, and the first list of pods seen
    ...
    await kubelet.stop()       # every container stopped: SIGTERM, grace, SIGKILL

What it does, in order (each part has its own module):

- serves container logs over HTTP (``log_server``; not in simulated mode,
  where ``daemonEndpoints.kubeletEndpoint.Port`` is 0), then registers the
  Node and starts beating (``node``);
- watches the pods with ``spec.nodeName`` = its node through a
  ``SharedInformer`` (or takes them from a ``pod_source.SharedPodSource``
  shared with other kubelets of the process, which the caller starts and
  stops), and runs each in a ``PodWorker`` (``pod_worker``),
  which gets a pod IP from the node's pod CIDR (``ipam``; kept from the
  pod's status after a restart when possible, freed when the pod finishes
  or goes away);
- writes pod statuses through a ``StatusManager`` (``status_manager``);
- records Events (``events``) through a ``controllers.events.EventRecorder``
  (component ``kubelet``, host the node's name): about the Node always,
  about pods only when not simulated (a simulated kubelet stays cheap when
  hundreds share a process). On the way out the recorder gets up to
  ``EVENT_FLUSH_SECONDS`` on the clock to write what is queued, then closes;
- a pod that gets ``deletionTimestamp`` is stopped within its grace
  period, its final status written, then it is deleted for good (a delete
  with grace 0 and the pod's uid as precondition); a pod that vanishes from
  the store has its processes killed at once and its files removed.

Pods already Succeeded or Failed when first seen are left alone. Processes
of a real kubelet are started by ``process.ProcessRuntime``; probes run
through ``probe_runner.LocalProbeRunner``. Both are seams: tests pass their own.
Everything that waits uses the injected clock; timestamps written to the
store come from the clientset's wall clock.
"""

from __future__ import annotations

import asyncio
import logging
import random
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from controllers.api.clientset import Clientset
from controllers.api.errors import Conflict, NotFound
from controllers.api.objects import Obj, namespaced_name
from controllers.clock import Clock, RealClock
from controllers.events import EventRecorder
from controllers.informers.fifo import DeletedFinalStateUnknown
from controllers.informers.reflector import ListWatch
from controllers.informers.shared_informer import ResourceEventHandlerFuncs, SharedInformer
from controllers.informers.store import thaw
from runtime.kubelet import logs
from runtime.kubelet.containers import ContainerRuntime
from runtime.kubelet.deadline import within
from runtime.kubelet.events import EventSink
from runtime.kubelet.ipam import IPExhausted, PodIPAllocator
from runtime.kubelet.log_server import LogServer, LogTarget
from runtime.kubelet.node import NodeAgent, NodeConfig, default_capacity
from runtime.kubelet.pod_source import SharedPodSource
from runtime.kubelet.pod_worker import PodWorker
from runtime.kubelet.probe_runner import LocalProbeRunner
from runtime.kubelet.probes import ProbeRunner
from runtime.kubelet.process import ProcessRuntime
from runtime.kubelet.simulated import SimulatedProbeRunner, SimulatedRuntime
from runtime.kubelet.status_manager import StatusManager

__all__ = ["EVENT_FLUSH_SECONDS", "Kubelet"]

log = logging.getLogger(__name__)

EVENT_FLUSH_SECONDS = 5.0

_TERMINAL = ("Succeeded", "Failed")


class Kubelet:
    """One node's agent (see the module docstring)."""

    def __init__(
        self,
        clientset: Clientset,
        node_name: str,
        *,
        root_dir: Path,
        capacity: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        taints: Sequence[Mapping[str, Any]] | None = None,
        simulated: bool = False,
        simulated_start_delay: float = 0.0,
        clock: Clock | None = None,
        heartbeat_interval: float = 10.0,
        lease_duration: int = 40,
        pod_cidr: str | None = None,
        log_port: int = 0,
        address: str = "127.0.0.1",
        status_report_interval: float = 300.0,
        runtime: ContainerRuntime | None = None,
        probe_runner: ProbeRunner | None = None,
        pod_source: SharedPodSource | None = None,
    ) -> None:
        self.clientset = clientset
        self.node_name = node_name
        self.root_dir = Path(root_dir)
        self.simulated = simulated
        self.clock: Clock = clock if clock is not None else RealClock()
        self.address = address
        self.start_delay = simulated_start_delay if simulated else 0.0
        self.runtime: ContainerRuntime = runtime if runtime is not None else (
            SimulatedRuntime(self.clock) if simulated else ProcessRuntime())
        self.probe_runner: ProbeRunner = probe_runner if probe_runner is not None else (
            SimulatedProbeRunner() if simulated else LocalProbeRunner(self.clock))
        self._config = NodeConfig(
            name=node_name,
            capacity=dict(capacity) if capacity is not None else default_capacity(),
            address=address, labels=dict(labels or {}), taints=list(taints or ()),
            pod_cidr=pod_cidr, lease_duration_seconds=lease_duration)
        self._heartbeat_interval = heartbeat_interval
        self._status_report_interval = status_report_interval
        self.pods = clientset.resource("pods")
        self.recorder = EventRecorder(clientset, "kubelet", host=node_name)
        self._pod_events: EventSink | None = None if simulated else self.recorder
        self.status_manager = StatusManager(self.pods, self.clock)
        self.log_server = None if simulated else LogServer(self, host=address, port=log_port)
        self.node_agent: NodeAgent | None = None
        self.ip_allocator: PodIPAllocator | None = None
        self.informer: SharedInformer | None = None
        self.pod_source = pod_source
        self._handler = ResourceEventHandlerFuncs(
            add=lambda pod, _initial: self._on_pod(pod),
            update=lambda _old, pod: self._on_pod(pod),
            delete=self._on_pod_gone)
        self._workers: dict[str, PodWorker] = {}
        self._background: list[asyncio.Task[None]] = []
        self._task: asyncio.Task[None] | None = None
        self._registered = asyncio.Event()
        self._ran = False

    # -- public --------------------------------------------------------------------
    @property
    def log_port(self) -> int:
        """The log server's port (0 before it listens, and in simulated mode)."""
        return self.log_server.port if self.log_server is not None else 0

    def start(self) -> asyncio.Task[None]:
        """Run in a new task (idempotent); returns it."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"kubelet {self.node_name}")
        return self._task

    async def stop(self) -> None:
        """Stop running: every pod's containers are stopped first."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def wait_ready(self) -> None:
        """Return once the node is registered and the first list of pods was handled."""
        await self._registered.wait()
        if self.pod_source is not None:
            await self.pod_source.wait_for_cache_sync()
        elif self.informer is not None:
            await self.informer.wait_for_cache_sync()

    def worker(self, namespace: str, name: str) -> PodWorker | None:
        """The worker running pod ``namespace/name``, if any."""
        return self._workers.get(f"{namespace}/{name}")

    def workers(self) -> list[PodWorker]:
        return [self._workers[k] for k in sorted(self._workers)]

    async def run(self) -> None:
        """Register, then run pods until cancelled; stops every pod on the way out.

        Raises:
            RuntimeError: this kubelet already ran.
        """
        if self._ran:
            raise RuntimeError("a Kubelet runs only once")
        self._ran = True
        tasks: list[asyncio.Task[None]] = []
        try:
            port = await self.log_server.start() if self.log_server is not None else 0
            self._config = NodeConfig(**{**_fields(self._config), "kubelet_port": port})
            agent = NodeAgent(self.clientset, self._config, clock=self.clock,
                              heartbeat_interval=self._heartbeat_interval,
                              status_report_interval=self._status_report_interval,
                              recorder=self.recorder)
            self.node_agent = agent
            await self._register(agent)
            self.ip_allocator = PodIPAllocator(agent.pod_cidr)
            tasks = [asyncio.create_task(agent.run()),
                     asyncio.create_task(self.status_manager.run())]
            if self.pod_source is not None:
                self.pod_source.subscribe(self.node_name, self._handler)
                self.pod_source.start()
            else:
                informer = SharedInformer(
                    ListWatch(self.pods, None,
                              field_selector=f"spec.nodeName={self.node_name}"),
                    clock=self.clock, rng=random.Random(self.node_name), resource="pods")
                informer.add_event_handler(self._handler)
                self.informer = informer
                tasks.append(asyncio.create_task(informer.run()))
            self._registered.set()
            await asyncio.gather(*tasks)
        finally:
            await self._shutdown(tasks)

    # -- registration --------------------------------------------------------------
    async def _register(self, agent: NodeAgent) -> None:
        delay = 0.5
        while True:
            try:
                await agent.register()
                await agent.renew_lease()
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the store may not be up yet: keep trying
                log.warning("node %s: registration failed: %s: %s; retrying in %.1fs",
                            self.node_name, type(e).__name__, e, delay)
                await self.clock.sleep(delay)
                delay = min(delay * 2, 10.0)

    # -- pods ----------------------------------------------------------------------
    def _on_pod(self, obj: Any) -> None:
        pod: Obj = thaw(obj)
        key = namespaced_name(pod)
        uid = str((pod.get("metadata") or {}).get("uid", ""))
        worker = self._workers.get(key)
        if worker is not None and worker.uid != uid:
            self._drop(key)
            worker = None
        if worker is not None:
            worker.update(pod)
            return
        if (pod.get("status") or {}).get("phase") in _TERMINAL:
            return
        worker = PodWorker(
            pod, runtime=self.runtime, probe_runner=self.probe_runner, clock=self.clock,
            wall=self.clientset.clock, root_dir=self.root_dir, host_ip=self.address,
            pod_ip=self._pod_ip(pod, uid), start_delay=self.start_delay,
            on_change=lambda w: self.status_manager.mark(w.key),
            on_finished=self._on_finished, finish_deletion=self._finish_deletion,
            recorder=self._pod_events)
        self._workers[key] = worker
        self.status_manager.register(key, worker)
        worker.start()
        self.status_manager.mark(key)

    def _pod_ip(self, pod: Obj, uid: str) -> str:
        allocator = self.ip_allocator
        if allocator is None:
            return ""
        previous = (pod.get("status") or {}).get("podIP")
        try:
            if isinstance(previous, str) and previous and allocator.reserve(uid, previous):
                return previous
        except ValueError:
            pass
        try:
            return allocator.allocate(uid)
        except IPExhausted as e:
            log.error("pod %s gets no IP: %s", namespaced_name(pod), e)
            return ""

    def _on_finished(self, worker: PodWorker) -> None:
        if self.ip_allocator is not None and self._workers.get(worker.key) is worker:
            self.ip_allocator.release(worker.uid)

    def _on_pod_gone(self, obj: Any) -> None:
        if isinstance(obj, DeletedFinalStateUnknown):
            key = obj.key
        else:
            key = namespaced_name(obj)
        if key in self._workers:
            self._drop(key)

    def _drop(self, key: str) -> None:
        worker = self._workers.pop(key)
        self.status_manager.forget(key, worker)
        task = asyncio.create_task(self._reap(worker), name=f"reap {key}")
        self._background.append(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[None]) -> None:
        if task in self._background:
            self._background.remove(task)

    async def _reap(self, worker: PodWorker) -> None:
        await worker.kill_now()
        if self.ip_allocator is not None:
            self.ip_allocator.release(worker.uid)
        if not self.simulated:
            await asyncio.to_thread(shutil.rmtree, worker.pod_dir, True)

    async def _finish_deletion(self, worker: PodWorker) -> None:
        delay = 0.5
        while True:
            try:
                await self.status_manager.sync(worker.key)
                await self.pods.delete(worker.name, worker.namespace, grace_period_seconds=0,
                                       uid=worker.uid)
                return
            except (NotFound, Conflict):
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the store may be away: try again
                log.warning("pod %s: final delete failed: %s: %s", worker.key,
                            type(e).__name__, e)
                await self.clock.sleep(delay)
                delay = min(delay * 2, 10.0)

    # -- logs ----------------------------------------------------------------------
    def locate(self, namespace: str, pod: str, container: str, *,
               previous: bool) -> LogTarget | None:
        """The log of ``container`` of pod ``namespace/pod`` (see ``log_server``)."""
        worker = self._workers.get(f"{namespace}/{pod}")
        if worker is not None:
            if not worker.has_container(container):
                return None
            path = worker.log_path(container)
            alive = worker.attempt_alive(container)
        else:
            dirs = logs.find_pod_dirs(self.root_dir, namespace, pod)
            if not dirs:
                return None
            path = dirs[0] / f"{container}.log"
            alive = _never
        if previous:
            path, alive = logs.previous_log_path(path), _never
        return LogTarget(path, alive) if path.exists() else None

    # -- shutdown ------------------------------------------------------------------
    async def _shutdown(self, tasks: list[asyncio.Task[None]]) -> None:
        if self.pod_source is not None:
            self.pod_source.unsubscribe(self.node_name, self._handler)
        if self.informer is not None:
            await self.informer.stop()
        workers = list(self._workers.values())
        await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
        await asyncio.gather(*list(self._background), return_exceptions=True)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.log_server is not None:
            await self.log_server.stop()
        await self._close_recorder()

    async def _close_recorder(self) -> None:
        try:
            await within(self.clock, EVENT_FLUSH_SECONDS, self.recorder.flush())
        except TimeoutError:
            log.warning("node %s: events not written within %ss of stopping were dropped",
                        self.node_name, EVENT_FLUSH_SECONDS)
        finally:
            await self.recorder.close()


def _never() -> bool:
    return False


def _fields(config: NodeConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in NodeConfig.__slots__}

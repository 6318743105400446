"""The controller manager: runs every enabled controller with N workers, under leader election.

``Manager.run()`` runs until cancelled. With ``leader_election`` it first
wins a ``LeaderElector``; without, it leads at once. Each time it starts
leading (a "term"):

1. it makes one informer per resource name the controllers need (a new
   ``SharedInformerFactory`` per term, or ``informer_factory`` if given),
   and per controller a new ``RateLimitingQueue`` and ``EventRecorder``
   named after it, the queue reporting to the manager's
   ``InMemoryMetricsProvider``;
2. it calls each controller's ``setup(context)``, then runs the informers;
3. once all the informers a controller needs have synced (and their
   handlers have handled the initial list), it starts that
   controller's ``workers_per_controller`` workers. Each loops ``get`` ->
   ``reconcile`` -> route the outcome (see ``controllers.controller``) ->
   ``done``; the queue guarantees no key is reconciled by two workers at once.

When leadership is lost the term ends at once: workers are cancelled, queues
shut down, informers stopped. When ``run`` is cancelled, every queue is shut
down with drain first (workers finish what is queued and in process, and
requeues are dropped), still under the lease; then the term ends and the
lease is released. ``metrics()`` returns the work queues' metrics.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from controllers.api.clientset import Clientset
from controllers.clock import Clock, RealClock
from controllers.controller import (
    REGISTRY,
    Controller,
    ControllerContext,
    ControllerRegistry,
    Informer,
    PermanentError,
    TemporaryError,
)
from controllers.events import EventRecorder
from controllers.informers.factory import SharedInformerFactory
from controllers.leaderelection import LeaderCallbacks, LeaderElector
from controllers.workqueue.metrics import InMemoryMetricsProvider
from controllers.workqueue.rate_limiters import RateLimiter
from controllers.workqueue.rate_limiting import RateLimitingQueue

__all__ = ["LeaderElectionConfig", "Manager"]

_log = logging.getLogger(__name__)

InformerFactory = Callable[[str], Informer]
RateLimiterFactory = Callable[[], RateLimiter[str]]


@dataclass(frozen=True, slots=True)
class LeaderElectionConfig:
    """Where and how the manager's leader election runs (see ``LeaderElector``)."""

    lock_name: str
    identity: str
    namespace: str = "kube-system"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    release_on_cancel: bool = True


class _Runner:
    """One controller in one term: its queue and its workers."""

    def __init__(self, controller: Controller, queue: RateLimitingQueue[str], workers: int,
                 informers: Sequence[Informer], clock: Clock, sync_poll: float) -> None:
        self.controller = controller
        self.queue = queue
        self._workers = workers
        self._informers = informers
        self._clock = clock
        self._sync_poll = sync_poll

    async def run(self) -> None:
        """Wait for the informers to sync, then run the workers until the queue shuts down."""
        while not all(_initial_list_handled(informer) for informer in self._informers):
            if self.queue.shutting_down():
                return
            await self._clock.sleep(self._sync_poll)
        tasks = [asyncio.ensure_future(self._work()) for _ in range(self._workers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)

    async def _work(self) -> None:
        while True:
            key, shutdown = await self.queue.get()
            if shutdown or key is None:
                return
            try:
                await self._process(key)
            finally:
                self.queue.done(key)

    async def _process(self, key: str) -> None:
        name = self.controller.name
        try:
            result = await self.controller.reconcile(key)
        except TemporaryError as e:
            _log.info("controller %s: %s: %s; retrying in %gs", name, key, e, e.delay)
            self.queue.add_after(key, e.delay)
            return
        except PermanentError as e:
            _log.error("controller %s: %s: %s; giving up", name, key, e)
            self.queue.forget(key)
            return
        except Exception:  # noqa: BLE001 - a failed reconcile is retried, not fatal
            _log.warning("controller %s: reconciling %s failed", name, key, exc_info=True)
            self.queue.add_rate_limited(key)
            return
        if result is not None and result.requeue_after > 0:
            self.queue.forget(key)
            self.queue.add_after(key, result.requeue_after)
        elif result is not None and result.requeue:
            self.queue.add_rate_limited(key)
        else:
            self.queue.forget(key)


def _initial_list_handled(informer: Informer) -> bool:
    """Synced, and (for a ``SharedInformer``) its handlers have seen the initial list."""
    if not informer.has_synced():
        return False
    idle = getattr(informer, "handlers_idle", None)
    return bool(idle()) if callable(idle) else True


class Manager:
    """Runs controllers under one leader election (see the module docstring)."""

    def __init__(
        self,
        clientset: Clientset,
        controllers: Sequence[Controller] | None = None,
        *,
        workers_per_controller: int = 1,
        workers: Mapping[str, int] | None = None,
        leader_election: LeaderElectionConfig | None = None,
        informer_factory: InformerFactory | None = None,
        registry: ControllerRegistry | None = None,
        enabled: Sequence[str] | None = None,
        rate_limiter_factory: RateLimiterFactory | None = None,
        clock: Clock | None = None,
        cache_sync_poll: float = 0.1,
    ) -> None:
        """Create a manager; nothing runs until ``run``.

        Args:
            clientset: given to every controller and used for the election.
            controllers: the controllers to run; if None, every controller of
                ``registry`` (``REGISTRY`` by default) after discovering the
                ``steersman.controllers`` entry points, limited to ``enabled``.
            workers_per_controller: workers per controller (at least 1).
            workers: workers of particular controllers, by name, overriding
                ``workers_per_controller`` (kube-controller-manager's
                ``--concurrent-*-syncs``; ``CONCURRENT_SYNCS`` has its defaults).
            leader_election: None to lead at once, without a lease.
            informer_factory: makes the informer of a resource name; by
                default each term's ``SharedInformerFactory`` on ``clientset``.
            rate_limiter_factory: makes each queue's limiter (client-go's
                default controller limiter if None).
            clock: for queues, cache-sync polling and the election.
            cache_sync_poll: seconds between checks that informers synced.

        Raises:
            ValueError: fewer than one worker, or two controllers with one name.
        """
        if workers_per_controller < 1 or any(n < 1 for n in (workers or {}).values()):
            raise ValueError("every controller needs at least one worker")
        if cache_sync_poll <= 0:
            raise ValueError("cache_sync_poll must be positive")
        if controllers is None:
            source = registry if registry is not None else REGISTRY
            source.discover()
            controllers = source.create(enabled)
        names = [c.name for c in controllers]
        if len(set(names)) != len(names):
            raise ValueError(f"controller names must be unique: {sorted(names)}")
        self.clientset = clientset
        self._controllers = list(controllers)
        self._workers = workers_per_controller
        self._workers_of = dict(workers or {})
        self._informer_factory = informer_factory
        self._rate_limiter_factory = rate_limiter_factory
        self._clock: Clock = clock if clock is not None else RealClock()
        self._sync_poll = cache_sync_poll
        self._metrics = InMemoryMetricsProvider()
        self._runners: list[_Runner] = []
        self._leading = False
        self._running = False
        self.elector: LeaderElector | None = None
        if leader_election is not None:
            cfg = leader_election
            self.elector = LeaderElector(
                clientset, cfg.lock_name, cfg.namespace, cfg.identity,
                lease_duration=cfg.lease_duration, renew_deadline=cfg.renew_deadline,
                retry_period=cfg.retry_period, release_on_cancel=cfg.release_on_cancel,
                callbacks=LeaderCallbacks(self._lead, self._on_stopped_leading,
                                          self._on_new_leader),
                clock=self._clock)

    @property
    def controllers(self) -> list[Controller]:
        """The controllers this manager runs, in the order given (or by name)."""
        return list(self._controllers)

    def is_leading(self) -> bool:
        """Whether a term is running (queues exist and workers may run)."""
        return self._leading

    def metrics(self) -> dict[str, dict[str, object]]:
        """Every work queue's metrics by controller name (``InMemoryMetricsProvider.snapshot``)."""
        return self._metrics.snapshot()

    async def run(self) -> None:
        """Run the controllers (under the election, if any) until cancelled.

        Raises:
            RuntimeError: the manager is already running.
        """
        if self._running:
            raise RuntimeError("the manager is already running")
        self._running = True
        main = asyncio.ensure_future(self.elector.run() if self.elector is not None
                                     else self._lead())
        try:
            await asyncio.wait({main})
            main.result()
        except asyncio.CancelledError:
            try:
                await self._drain()
            finally:
                main.cancel()
                await asyncio.wait({main})
            raise
        finally:
            self._running = False

    async def _drain(self) -> None:
        runners = list(self._runners)
        if runners:
            await asyncio.gather(*(r.queue.shut_down_with_drain() for r in runners))

    async def _lead(self) -> None:
        """One term: informers, queues and workers, until cancelled."""
        needed = sorted({name for c in self._controllers for name in c.informers})
        make = self._informer_factory
        if make is None:
            make = SharedInformerFactory(self.clientset, clock=self._clock).informer_for
        informers: dict[str, Informer] = {name: make(name) for name in needed}
        runners: list[_Runner] = []
        recorders: list[EventRecorder] = []
        for controller in self._controllers:
            limiter = self._rate_limiter_factory() if self._rate_limiter_factory else None
            queue: RateLimitingQueue[str] = RateLimitingQueue(
                limiter, name=controller.name, clock=self._clock,
                metrics_provider=self._metrics)
            source = getattr(controller, "event_source", None) or controller.name
            recorder = EventRecorder(self.clientset, str(source))
            recorders.append(recorder)
            mine = {name: informers[name] for name in controller.informers}
            controller.setup(ControllerContext(self.clientset, mine, queue.add, queue.add_after,
                                               recorder))
            count = self._workers_of.get(controller.name, self._workers)
            runners.append(_Runner(controller, queue, count, list(mine.values()),
                                   self._clock, self._sync_poll))
        self._runners = runners
        self._leading = True
        tasks = [asyncio.ensure_future(informer.run()) for informer in informers.values()]
        tasks += [asyncio.ensure_future(runner.run()) for runner in runners]
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            self._leading = False
            for runner in runners:
                runner.queue.shut_down()
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks)
            for informer in informers.values():
                await informer.stop()
            for recorder in recorders:
                await recorder.close()
            for task in tasks:
                if not task.cancelled() and task.exception() is not None:
                    _log.error("controller manager: a task failed", exc_info=task.exception())
            self._runners = []

    def _on_stopped_leading(self) -> None:
        _log.info("controller manager: no longer leading; controllers stopped")

    def _on_new_leader(self, identity: str) -> None:
        _log.info("controller manager: the leader is now %s", identity)

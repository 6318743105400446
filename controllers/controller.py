"""The controller plugin contract, and how plugins are found.

A controller is a ``Controller``: a ``name``, the ``informers`` it needs (by
resource name), a ``setup(context)`` called at the start of every leadership
term, and ``async reconcile(key)``. The manager hands ``reconcile`` one key
at a time from the controller's work queue (a key is never reconciled by two
workers at once) and routes the outcome:

- ``DONE`` (or ``None``): the key is forgotten by the rate limiter.
- ``REQUEUE``: the key is added again, rate limited (growing delays).
- ``requeue_after(seconds)``: forgotten, then added again after ``seconds``.
- ``TemporaryError(delay)`` raised: added again after ``delay``.
- ``PermanentError`` raised: logged and forgotten.
- any other ``Exception``: logged and added again, rate limited.

``setup`` receives a ``ControllerContext``: the clientset, this term's
informers (one shared instance per resource name; ``informer(name)`` gives
the ``SharedInformer`` with its lister and indexer), ``enqueue`` /
``enqueue_after`` into this term's queue, and an ``EventRecorder`` named
after the controller (or after its ``event_source`` attribute, if it has
one: the component its Events name, as ``replicaset-controller`` in
Kubernetes). It registers event handlers there; informers and
queues are new in every term, so nothing registered in an earlier term
fires again.

Plugins are found in a ``ControllerRegistry``: by ``register`` in code, and
through the ``steersman.controllers`` entry point group, where each entry
point names a class or function that takes no arguments and returns a
``Controller``.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from controllers.api.clientset import Clientset
    from controllers.events import EventRecorder
    from controllers.informers.shared_informer import SharedInformer

__all__ = [
    "DONE",
    "ENTRY_POINT_GROUP",
    "REGISTRY",
    "REQUEUE",
    "Controller",
    "ControllerContext",
    "ControllerFactory",
    "ControllerRegistry",
    "Informer",
    "PermanentError",
    "Result",
    "TemporaryError",
    "register_controller",
    "requeue_after",
]

_log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "steersman.controllers"
"""The entry point group third-party controllers register under."""


@dataclass(frozen=True, slots=True)
class Result:
    """What ``reconcile`` asks for next: nothing, a rate-limited requeue, or a requeue later."""

    requeue: bool = False
    requeue_after: float = 0.0

    def __post_init__(self) -> None:
        if self.requeue_after < 0:
            raise ValueError("requeue_after must not be negative")


DONE = Result()
"""The key is reconciled; forget its failures."""

REQUEUE = Result(requeue=True)
"""Reconcile the key again after the rate limiter's delay."""


def requeue_after(seconds: float) -> Result:
    """Reconcile the key again after ``seconds`` (forgetting its failures)."""
    return Result(requeue_after=seconds)


class TemporaryError(Exception):
    """The reconcile failed for now; try the key again after ``delay`` seconds."""

    def __init__(self, message: str = "", *, delay: float = 60.0) -> None:
        if delay < 0:
            raise ValueError("delay must not be negative")
        super().__init__(message or f"temporary failure, retry in {delay:g}s")
        self.delay = delay


class PermanentError(Exception):
    """The reconcile failed in a way retrying cannot fix; the key is dropped."""


class Informer(Protocol):
    """The part of an informer the manager uses: run it, stop it, know when it has synced."""

    async def run(self) -> None:
        """List and watch until ``stop`` is called or the task is cancelled."""
        ...

    async def stop(self) -> None:
        """Make ``run`` return, and wait for it."""
        ...

    def has_synced(self) -> bool:
        """Whether the cache holds the initial list."""
        ...


@dataclass(frozen=True, slots=True)
class ControllerContext:
    """What a controller gets at the start of a leadership term."""

    clientset: Clientset
    informers: Mapping[str, Informer]
    enqueue: Callable[[str], None]
    enqueue_after: Callable[[str, float], None]
    recorder: EventRecorder

    def informer(self, resource: str) -> SharedInformer:
        """The ``SharedInformer`` of ``resource`` (a name the controller listed).

        Raises:
            KeyError: the controller did not list ``resource``.
            TypeError: the manager was given informers that are not ``SharedInformer``.
        """
        from controllers.informers.shared_informer import SharedInformer

        found = self.informers[resource]
        if not isinstance(found, SharedInformer):
            raise TypeError(f"the informer of {resource!r} is a {type(found).__name__}, "
                            "not a SharedInformer")
        return found


@runtime_checkable
class Controller(Protocol):
    """A reconciler of keys, run by the manager (see the module docstring)."""

    @property
    def name(self) -> str:
        """Unique among the manager's controllers; also its work queue's name."""
        ...

    @property
    def informers(self) -> Sequence[str]:
        """The resource names whose informers must have synced before ``reconcile`` runs."""
        ...

    def setup(self, context: ControllerContext) -> None:
        """Register handlers for this leadership term; called before the informers run."""
        ...

    async def reconcile(self, key: str) -> Result | None:
        """Bring the object named ``key`` to its desired state."""
        ...


ControllerFactory = Callable[[], Controller]
"""Makes one controller; a controller class with a no-argument constructor is one."""


class ControllerRegistry:
    """Controller factories by name: registered in code or found through entry points."""

    def __init__(self) -> None:
        self._factories: dict[str, ControllerFactory] = {}

    def register(self, name: str, factory: ControllerFactory) -> None:
        """Register ``factory`` under ``name``.

        Raises:
            ValueError: ``name`` is empty or taken.
        """
        if not name:
            raise ValueError("a controller needs a name")
        if name in self._factories:
            raise ValueError(f"a controller named {name!r} is already registered")
        self._factories[name] = factory

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._factories)

    def factory(self, name: str) -> ControllerFactory:
        """The factory registered under ``name``; raises ``KeyError``."""
        return self._factories[name]

    def discover(self, group: str = ENTRY_POINT_GROUP) -> list[str]:
        """Register every entry point of ``group`` not registered yet, by its name.

        An entry point that fails to load is logged and skipped.

        Returns:
            The names newly registered, sorted.
        """
        added: list[str] = []
        for entry in sorted(importlib.metadata.entry_points(group=group), key=lambda e: e.name):
            if entry.name in self._factories:
                continue
            try:
                factory = entry.load()
            except Exception:  # noqa: BLE001 - one broken plugin must not stop the others
                _log.error("controller plugin %s (%s) failed to load", entry.name, entry.value,
                           exc_info=True)
                continue
            if not callable(factory):
                _log.error("controller plugin %s (%s) is not callable", entry.name, entry.value)
                continue
            self._factories[entry.name] = factory
            added.append(entry.name)
        return added

    def create(self, enabled: Sequence[str] | None = None) -> list[Controller]:
        """One new controller per registered name (only those in ``enabled``, if given), by name.

        Raises:
            KeyError: a name in ``enabled`` is not registered.
            TypeError: a factory returned something that is not a ``Controller``.
        """
        names = self.names() if enabled is None else sorted(enabled)
        controllers: list[Controller] = []
        for name in names:
            made = self._factories[name]()
            if not isinstance(made, Controller):
                raise TypeError(f"controller factory {name!r} returned {type(made).__name__}, "
                                "not a Controller")
            controllers.append(made)
        return controllers


REGISTRY = ControllerRegistry()
"""The registry ``Manager`` uses by default."""


def register_controller(
    name: str, registry: ControllerRegistry | None = None
) -> Callable[[ControllerFactory], ControllerFactory]:
    """A decorator registering a controller class (or factory) under ``name``."""

    def decorate(factory: ControllerFactory) -> ControllerFactory:
        (registry if registry is not None else REGISTRY).register(name, factory)
        return factory

    return decorate

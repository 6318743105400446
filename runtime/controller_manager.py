"""A controller manager process: controllers under leader election, on a remote store.

    python -m runtime.controller_manager --endpoints 127.0.0.1:2379,127.0.0.1:2381 \\
        --identity cm-1 --controller controllers.examples.namespace_configmap:NamespaceConfigMapController

Any number of these may run against one cluster: they elect a leader
through the Lease ``kube-system/<lock>`` and only the leader's controllers
work. Controllers are named by ``module:attribute`` (a class or a function
that takes no argument, or one keyword argument ``identity``) or by the name
they are registered under (``steersman.controllers`` entry points included).
SIGTERM or SIGINT stops it cleanly: queued work is drained and the Lease is
released so another manager takes over at once.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import logging
import signal
import sys
from collections.abc import Sequence

import kvstore
from controllers.api.clientset import Clientset
from controllers.controller import REGISTRY, Controller
from controllers.manager import LeaderElectionConfig, Manager
from kvstore.kv import KV

__all__ = ["load_controller", "main", "run_manager"]

_log = logging.getLogger("steer.controller-manager")


def load_controller(spec: str, identity: str) -> Controller:
    """The controller named by ``spec``: ``module:attribute`` or a registered name.

    Raises:
        ValueError: ``spec`` names nothing that makes a controller.
    """
    if ":" not in spec:
        REGISTRY.discover()
        try:
            return REGISTRY.create([spec])[0]
        except KeyError:
            raise ValueError(f"no controller is registered as {spec!r}; registered: "
                             f"{', '.join(REGISTRY.names()) or 'none'}") from None
    module_name, _, attribute = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot load controller {spec!r}: {e}") from e
    takes_identity = "identity" in inspect.signature(factory).parameters
    made = factory(identity=identity) if takes_identity else factory()
    if not isinstance(made, Controller):
        raise ValueError(f"{spec!r} made a {type(made).__name__}, not a Controller")
    return made


async def run_manager(kv: KV, identity: str, controllers: Sequence[Controller], *,
                      lock_name: str = "steersman-controller-manager",
                      lease_duration: float = 15.0, renew_deadline: float = 10.0,
                      retry_period: float = 2.0, workers: int = 2) -> None:
    """Run ``controllers`` under leader election on ``kv`` until cancelled."""
    api = Clientset(kv)
    await api.ensure_default_namespaces()
    election = LeaderElectionConfig(lock_name, identity, lease_duration=lease_duration,
                                    renew_deadline=renew_deadline, retry_period=retry_period)
    manager = Manager(api, controllers, leader_election=election,
                      workers_per_controller=workers)
    await manager.run()


async def _serve(args: argparse.Namespace) -> None:
    controllers = [load_controller(spec, args.identity) for spec in args.controller]
    endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
    loop = asyncio.get_running_loop()
    async with kvstore.connect(endpoints) as kv:
        task = asyncio.ensure_future(run_manager(
            kv, args.identity, controllers, lock_name=args.lock_name,
            lease_duration=args.lease_duration, renew_deadline=args.renew_deadline,
            retry_period=args.retry_period, workers=args.workers))
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        _log.info("controller manager %s running %s", args.identity,
                  ", ".join(c.name for c in controllers))
        try:
            await task
        except asyncio.CancelledError:
            _log.info("controller manager %s stopped", args.identity)


def main(argv: list[str] | None = None) -> int:
    """Run a controller manager process (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m runtime.controller_manager",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--endpoints", required=True, help="comma-separated host:port")
    ap.add_argument("--identity", required=True, help="this manager's name in the election")
    ap.add_argument("--controller", action="append", required=True,
                    help="module:attribute or a registered name (repeatable)")
    ap.add_argument("--lock-name", default="steersman-controller-manager")
    ap.add_argument("--lease-duration", type=float, default=15.0)
    ap.add_argument("--renew-deadline", type=float, default=10.0)
    ap.add_argument("--retry-period", type=float, default=2.0)
    ap.add_argument("--workers", type=int, default=2, help="workers per controller")
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format=f"%(asctime)s {args.identity} %(levelname)s %(name)s: "
                               "%(message)s")
    try:
        asyncio.run(_serve(args))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What a pod asks of a node and what a node offers, as integer amounts per resource name.

Amounts are ``dict[str, int]``: ``cpu`` in millicores, every other resource
(``memory``, ``ephemeral-storage``, ``pods``, extended resources) in whole
units rounded up.

A pod's request follows Kubernetes:

- a container's request for a resource is ``resources.requests``, or its
  ``resources.limits`` when only a limit is given;
- the pod asks for the sum over ``containers``, or the largest single
  ``initContainers`` request if that is larger (init containers run one at a
  time); an init container with ``restartPolicy: Always`` (a sidecar) keeps
  running, so it adds to the sum and to every later init container;
- ``spec.overhead`` is added on top.

For scoring, Kubernetes counts a container that asks for no CPU or memory as
asking for 100m and 200Mi (``NON_ZERO_DEFAULTS``), so empty pods still spread.
A node offers ``status.allocatable``, or ``status.capacity`` when no
allocatable is given.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from controllers.builtin.scheduler.quantity import milli_value, value

__all__ = [
    "CPU",
    "DEFAULT_MEMORY_REQUEST",
    "DEFAULT_MILLI_CPU_REQUEST",
    "MEMORY",
    "NON_ZERO_DEFAULTS",
    "PODS",
    "Amounts",
    "amount",
    "amounts",
    "node_allocatable",
    "pod_requests",
]

CPU = "cpu"
MEMORY = "memory"
PODS = "pods"

DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024
NON_ZERO_DEFAULTS: Mapping[str, int] = {CPU: DEFAULT_MILLI_CPU_REQUEST,
                                        MEMORY: DEFAULT_MEMORY_REQUEST}

Amounts = dict[str, int]


def amount(resource: str, quantity: Any) -> int:
    """``quantity`` of ``resource`` as an integer (millicores for CPU).

    Raises:
        ValueError: ``quantity`` is not a quantity.
    """
    if isinstance(quantity, str):
        return _string_amount(resource == CPU, quantity)
    return milli_value(quantity) if resource == CPU else value(quantity)


@functools.lru_cache(maxsize=4096)
def _string_amount(milli: bool, text: str) -> int:
    """``amount`` of a quantity string, remembered: pods repeat a handful of quantities."""
    return milli_value(text) if milli else value(text)


def amounts(raw: Any) -> Amounts:
    """A resource list (``{"cpu": "500m", ...}``) as amounts; raises ``ValueError``."""
    if not isinstance(raw, Mapping):
        return {}
    return {str(name): amount(str(name), q) for name, q in raw.items()}


def _container_request(container: Any, defaults: Mapping[str, int] | None) -> Amounts:
    if not isinstance(container, Mapping):
        return {}
    res = container.get("resources")
    res = res if isinstance(res, Mapping) else {}
    found = amounts(res.get("limits"))
    found.update(amounts(res.get("requests")))
    for name, default in (defaults or {}).items():
        found.setdefault(name, default)
    return found


def _add(into: Amounts, more: Mapping[str, int]) -> None:
    for name, n in more.items():
        into[name] = into.get(name, 0) + n


def _max(into: Amounts, other: Mapping[str, int]) -> None:
    for name, n in other.items():
        if n > into.get(name, 0):
            into[name] = n


def pod_requests(pod: Mapping[str, Any], defaults: Mapping[str, int] | None = None) -> Amounts:
    """What ``pod`` asks for (see the module docstring); ``defaults`` fill missing requests.

    Raises:
        ValueError: a quantity in the pod cannot be read.
    """
    spec = pod.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    total: Amounts = {}
    containers = spec.get("containers")
    for c in containers if isinstance(containers, (list, tuple)) else ():
        _add(total, _container_request(c, defaults))
    sidecars: Amounts = {}
    init_peak: Amounts = {}
    inits = spec.get("initContainers")
    for c in inits if isinstance(inits, (list, tuple)) else ():
        request = _container_request(c, defaults)
        if isinstance(c, Mapping) and c.get("restartPolicy") == "Always":
            _add(total, request)
            _add(sidecars, request)
            _max(init_peak, sidecars)
        else:
            running = dict(request)
            _add(running, sidecars)
            _max(init_peak, running)
    _max(total, init_peak)
    _add(total, amounts(spec.get("overhead")))
    return {name: n for name, n in total.items() if n}


def node_allocatable(node: Mapping[str, Any]) -> Amounts:
    """What ``node`` offers: ``status.allocatable``, else ``status.capacity``.

    Raises:
        ValueError: a quantity in the node cannot be read.
    """
    status = node.get("status")
    if not isinstance(status, Mapping):
        return {}
    raw = status.get("allocatable")
    if not isinstance(raw, Mapping) or not raw:
        raw = status.get("capacity")
    return amounts(raw)

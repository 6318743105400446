"""Service cluster IPs: allocated from a range at create, held in the store, released on delete.

As the Kubernetes API server does, a Service of type ClusterIP, NodePort or
LoadBalancer gets a ``spec.clusterIP`` when it is created:

- none given (absent or ``""``): a free address of the service range, chosen
  at random, preferring the upper part of the range (the lower band, of
  ``min(max(16, size // 16), 256)`` addresses, is kept for addresses asked
  for by name, such as ``10.96.0.10`` for DNS);
- an address given: kept if it is in the range and free, else ``Invalid``
  (``provided IP is already allocated`` / ``is not in the valid range``);
- ``"None"``: a headless Service, no address (not allowed for NodePort and
  LoadBalancer). An ExternalName Service has no address and may not ask for
  one.

The range excludes the network address and, for IPv4, the broadcast
address. It is ``DEFAULT_SERVICE_CIDR`` unless ``configure_service_cidr``
stored another one under ``RANGE_KEY``: the range lives in the store, so
every process writing Services agrees on it.

The allocation map is the store itself: one key per held address,
``/registry/ranges/serviceips/<ip>``, whose value names its Service
(``<namespace>/<name>/<uid>``). The key is created in the same txn as the
Service, guarded by ``create_revision == 0``, so two creates never get the
same address, whichever process makes them; the txn that removes the
Service removes the key, guarded by its value, so both happen or neither.
An update gives an address to a Service that has none but needs one (an
ExternalName Service turned into a ClusterIP one); an address once given
never changes (the update validator refuses it).

The functions return a ``TxnPart``: the compares and operations the
client adds to its own txn.
"""

from __future__ import annotations

import ipaddress
import random
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

from controllers.api.errors import ApiError, FieldError, FieldErrorType, Invalid
from controllers.api.kinds import Kind
from controllers.api.objects import Obj, deep_copy
from kvstore.kv import KV
from kvstore.mvcc.request import (
    Compare,
    CompareTarget,
    RequestOp,
    compare,
    op_delete,
    op_put,
    op_txn,
)

__all__ = [
    "DEFAULT_SERVICE_CIDR",
    "HEADLESS",
    "IP_KEY_PREFIX",
    "NO_TXN_PART",
    "RANGE_KEY",
    "ServiceIPRange",
    "ServiceIPRangeFull",
    "TxnPart",
    "allocated_ips",
    "configure_service_cidr",
    "ip_key",
    "on_create",
    "on_update",
    "release",
    "service_cidr",
]

DEFAULT_SERVICE_CIDR = "10.96.0.0/12"
"""The service range when none is stored (kube-apiserver's default)."""

RANGE_KEY = "/registry/ranges/serviceips"
"""Where the configured range (a CIDR, as text) is stored."""

IP_KEY_PREFIX = RANGE_KEY + "/"
"""The prefix of the keys of held addresses."""

HEADLESS = "None"
"""The ``spec.clusterIP`` of a headless Service."""

_FIELD = "spec.clusterIP"


class ServiceIPRangeFull(ApiError):
    """No address of the service range is free."""

    code = 500
    reason = "InternalError"

    def __init__(self, cidr: str) -> None:
        super().__init__(f"Internal error occurred: failed to allocate a serviceIP: "
                         f"range is full ({cidr})", resource="services")
        self.cidr = cidr


@dataclass(frozen=True, slots=True)
class TxnPart:
    """Compares and operations to add to the txn that writes a Service."""

    compares: tuple[Compare, ...] = ()
    ops: tuple[RequestOp, ...] = ()


NO_TXN_PART = TxnPart()


@dataclass(frozen=True, slots=True)
class ServiceIPRange:
    """The allocatable addresses of a CIDR, as integers in ``[first, first + size)``."""

    cidr: str
    first: int
    size: int
    version: int

    @classmethod
    def parse(cls, cidr: str) -> ServiceIPRange:
        """The range of ``cidr``.

        Raises:
            ValueError: not a CIDR, or one with no allocatable address.
        """
        net = ipaddress.ip_network(cidr, strict=False)
        first = int(net.network_address) + 1
        last = int(net.broadcast_address) - (1 if net.version == 4 else 0)
        if last < first:
            raise ValueError(f"the service range {net} has no allocatable address")
        return cls(str(net), first, last - first + 1, net.version)

    @property
    def static_band(self) -> int:
        """How many addresses at the bottom are left to requested addresses first."""
        cidr_size = ipaddress.ip_network(self.cidr).num_addresses
        return 0 if cidr_size <= 16 else min(max(16, cidr_size // 16), 256)

    def contains(self, value: int) -> bool:
        return self.first <= value < self.first + self.size

    def text(self, value: int) -> str:
        return str(ipaddress.ip_address(value))

    def pick(self, taken: list[int], rng: random.Random) -> int | None:
        """A random free address (upper band first), or ``None``; ``taken`` sorted."""
        split = self.first + self.static_band
        for lo, hi in ((split, self.first + self.size), (self.first, split)):
            held = taken[bisect_right(taken, lo - 1):bisect_right(taken, hi - 1)]
            free = (hi - lo) - len(held)
            if free <= 0:
                continue
            # The k-th free address of [lo, hi): step over each held one below it.
            candidate = lo + rng.randrange(free)
            for value in held:
                if value > candidate:
                    break
                candidate += 1
            return candidate
        return None


def ip_key(ip: str) -> str:
    """The store key holding ``ip``."""
    return IP_KEY_PREFIX + ip


def _owner(obj: Obj) -> str:
    m = obj.get("metadata") or {}
    return f"{m.get('namespace', '')}/{m.get('name', '')}/{m.get('uid', '')}"


def _is_service(kind: Kind) -> bool:
    return kind.group == "" and kind.kind == "Service"


def _spec(obj: Obj) -> dict[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _held_ip(obj: Obj) -> str:
    """The address ``obj`` holds: its ``spec.clusterIP`` unless empty or headless."""
    ip = _spec(obj).get("clusterIP")
    return ip if isinstance(ip, str) and ip not in ("", HEADLESS) else ""


async def configure_service_cidr(kv: KV, cidr: str) -> str:
    """Store ``cidr`` as the service range for every later allocation; returns it normalised.

    Addresses already held outside the new range stay held until released.

    Raises:
        ValueError: not a CIDR with an allocatable address.
    """
    rng = ServiceIPRange.parse(cidr)
    await kv.put(RANGE_KEY, rng.cidr)
    return rng.cidr


async def service_cidr(kv: KV) -> str:
    """The service range in force (the stored one, else ``DEFAULT_SERVICE_CIDR``)."""
    entry = await kv.get(RANGE_KEY)
    return entry.value.decode() if entry is not None else DEFAULT_SERVICE_CIDR


async def allocated_ips(kv: KV) -> dict[str, str]:
    """Every held address -> the Service holding it (``namespace/name/uid``)."""
    res = await kv.range(IP_KEY_PREFIX, prefix=True)
    return {kv_.key.decode()[len(IP_KEY_PREFIX):]: kv_.value.decode() for kv_ in res.kvs}


async def _state(kv: KV) -> tuple[ServiceIPRange, list[int]]:
    """The range in force and the held addresses in it, sorted, from one read."""
    res = await kv.range(RANGE_KEY, prefix=True)
    cidr, taken = DEFAULT_SERVICE_CIDR, []
    for entry in res.kvs:
        key = entry.key.decode()
        if key == RANGE_KEY:
            cidr = entry.value.decode()
        elif key.startswith(IP_KEY_PREFIX):
            try:
                taken.append(int(ipaddress.ip_address(key[len(IP_KEY_PREFIX):])))
            except ValueError:
                continue  # not an address key: holds nothing
    rng = ServiceIPRange.parse(cidr)
    return rng, sorted(v for v in taken if rng.contains(v))


def _refusal(obj: Obj, value: Any, detail: str, *, forbidden: bool = False) -> Invalid:
    """The ``Invalid`` refusing ``value`` as the Service's ``spec.clusterIP``."""
    kind = FieldErrorType.FORBIDDEN if forbidden else FieldErrorType.INVALID
    name = str((obj.get("metadata") or {}).get("name", ""))
    return Invalid("Service", name, [FieldError(kind, _FIELD, detail, value)])


async def _allocate(kv: KV, obj: Obj, rng: random.Random) -> tuple[Obj, TxnPart]:
    """``obj`` with its address, and the txn part holding it; ``obj`` is not changed."""
    spec = _spec(obj)
    svc_type = spec.get("type", "ClusterIP")
    requested = spec.get("clusterIP")
    if svc_type == "ExternalName":
        if requested not in (None, ""):
            raise _refusal(obj, requested, "may not be set for ExternalName services",
                           forbidden=True)
        return obj, NO_TXN_PART
    if requested == HEADLESS:
        if svc_type != "ClusterIP":
            raise _refusal(obj, requested, f"may not be set to 'None' for {svc_type} services")
        return obj, NO_TXN_PART
    ip_range, taken = await _state(kv)
    if requested in (None, ""):
        value = ip_range.pick(taken, rng)
        if value is None:
            raise ServiceIPRangeFull(ip_range.cidr)
    else:
        try:
            value = int(ipaddress.ip_address(str(requested)))
        except ValueError:
            raise _refusal(obj, requested, "must be a valid IP address") from None
        if not ip_range.contains(value) or ipaddress.ip_address(value).version != ip_range.version:
            raise _refusal(obj, requested, "provided IP is not in the valid range. "
                           f"The range of valid IPs is {ip_range.cidr}")
        if value in taken:
            raise _refusal(obj, requested, "provided IP is already allocated")
    ip = ip_range.text(value)
    out = deep_copy(obj)
    out["spec"]["clusterIP"] = ip
    key = ip_key(ip)
    return out, TxnPart((compare(key, CompareTarget.CREATE, "=", 0),),
                        (op_put(key, _owner(out)),))


async def on_create(kv: KV, kind: Kind, obj: Obj, rng: random.Random) -> tuple[Obj, TxnPart]:
    """The object to store for a create (a Service gets its address) and the txn part.

    Objects of other kinds come back as they are, with ``NO_TXN_PART``.

    Raises:
        Invalid: a requested address that is taken, out of range or not allowed.
        ServiceIPRangeFull: no address is free.
    """
    if not _is_service(kind):
        return obj, NO_TXN_PART
    return await _allocate(kv, obj, rng)


async def on_update(kv: KV, kind: Kind, new: Obj, old: Obj, rng: random.Random
                    ) -> tuple[Obj, TxnPart]:
    """The object to store for an update, and the txn part.

    Only a Service that held no address and now needs one gets one (as on
    create); anything else comes back as it is.
    """
    if not _is_service(kind) or _held_ip(old) or _spec(old).get("clusterIP") == HEADLESS:
        return new, NO_TXN_PART
    if _spec(new).get("type", "ClusterIP") == "ExternalName":
        return new, NO_TXN_PART
    return await _allocate(kv, new, rng)


def release(kind: Kind, old: Obj) -> tuple[RequestOp, ...]:
    """Operations freeing the address the stored ``old`` holds, to run with its removal.

    The key is removed only if it still names ``old``, so an address held by
    another Service is never freed by mistake.
    """
    ip = _held_ip(old) if _is_service(kind) else ""
    if not ip:
        return ()
    key = ip_key(ip)
    return (op_txn([compare(key, CompareTarget.VALUE, "=", _owner(old))], [op_delete(key)]),)

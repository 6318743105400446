"""Pod IPs from the node's pod CIDR, and the CIDR itself when none is given.

``pod_cidr_for(node_name)`` picks a /24 inside 10.244.0.0/16 from a hash of
the node name, so a node gets the same range on every start. A
``PodIPAllocator`` hands out the addresses of a CIDR except the network
address, the first host address (the bridge's, by convention) and the
broadcast address, next-fit: it keeps going round the range, so a
released address is not handed out again before the others have been.
An address is held by one pod uid until released.
"""

from __future__ import annotations

import hashlib
import ipaddress

__all__ = ["CLUSTER_CIDR", "IPExhausted", "PodIPAllocator", "pod_cidr_for"]

CLUSTER_CIDR = "10.244.0.0/16"


class IPExhausted(Exception):
    """Every address of the pod CIDR is held."""


def pod_cidr_for(node_name: str, cluster_cidr: str = CLUSTER_CIDR) -> str:
    """The /24 of ``cluster_cidr`` chosen for ``node_name`` (deterministic)."""
    net = ipaddress.ip_network(cluster_cidr)
    subnets = 2 ** max(0, 24 - net.prefixlen)
    digest = hashlib.sha256(node_name.encode("utf-8")).digest()
    index = int.from_bytes(digest[:8], "big") % subnets
    base = int(net.network_address) + index * 256
    return f"{ipaddress.ip_address(base)}/24"


class PodIPAllocator:
    """Addresses of one CIDR, each held by at most one pod uid (see the module docstring)."""

    def __init__(self, cidr: str) -> None:
        net = ipaddress.ip_network(cidr, strict=False)
        self.cidr = str(net)
        first = int(net.network_address) + 2
        last = int(net.broadcast_address) - 1
        self._first = first
        self._size = max(0, last - first + 1)
        self._next = 0
        self._by_uid: dict[str, int] = {}
        self._held: set[int] = set()

    def allocate(self, uid: str) -> str:
        """The address held by ``uid`` (a new one if it holds none).

        Raises:
            IPExhausted: no address is free.
        """
        if uid in self._by_uid:
            return str(ipaddress.ip_address(self._by_uid[uid]))
        for step in range(self._size):
            candidate = self._first + (self._next + step) % self._size
            if candidate not in self._held:
                self._next = (self._next + step + 1) % self._size
                self._held.add(candidate)
                self._by_uid[uid] = candidate
                return str(ipaddress.ip_address(candidate))
        raise IPExhausted(f"no free address in {self.cidr}")

    def reserve(self, uid: str, address: str) -> bool:
        """Let ``uid`` keep ``address`` (e.g. from a status written before a restart).

        Returns False if the address is outside the range or held by another uid.
        """
        value = int(ipaddress.ip_address(address))
        if not self._first <= value < self._first + self._size:
            return False
        if value in self._held:
            return self._by_uid.get(uid) == value
        self.release(uid)
        self._held.add(value)
        self._by_uid[uid] = value
        return True

    def release(self, uid: str) -> None:
        """Free the address ``uid`` holds, if any."""
        value = self._by_uid.pop(uid, None)
        if value is not None:
            self._held.discard(value)

    def in_use(self) -> int:
        return len(self._held)

"""Service cluster IPs: the range arithmetic, and allocation through the client on a real store."""

from __future__ import annotations

import asyncio
import ipaddress
import random
from typing import Any

import pytest

from controllers.api import AlreadyExists, Clientset, Invalid, NotFound
from controllers.api.errors import FieldErrorType
from controllers.api.service_ips import (
    DEFAULT_SERVICE_CIDR,
    RANGE_KEY,
    ServiceIPRange,
    ServiceIPRangeFull,
    allocated_ips,
    configure_service_cidr,
    ip_key,
    service_cidr,
)
from kvstore.node import Node


def service(name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ports": [{"port": 80}], "selector": {"app": name}}
    body.update(spec)
    return {"metadata": {"name": name, "namespace": namespace}, "spec": body}


def as_int(ip: str) -> int:
    return int(ipaddress.ip_address(ip))


# -- the range, as pure functions ----------------------------------------------------


def test_range_of_the_default_cidr_skips_network_and_broadcast() -> None:
    r = ServiceIPRange.parse(DEFAULT_SERVICE_CIDR)
    assert r.cidr == "10.96.0.0/12"
    assert r.text(r.first) == "10.96.0.1"
    assert r.text(r.first + r.size - 1) == "10.111.255.254"
    assert r.size == 2 ** 20 - 2
    assert r.static_band == 256
    assert r.contains(as_int("10.96.0.1")) and not r.contains(as_int("10.96.0.0"))
    assert not r.contains(as_int("10.112.0.0"))


@pytest.mark.parametrize(("cidr", "size", "band"), [
    ("10.0.0.0/29", 6, 0),      # 8 addresses: too small for a static band
    ("10.0.0.0/28", 14, 0),
    ("10.0.0.0/27", 30, 16),    # at least 16
    ("10.0.0.0/20", 4094, 256),  # size / 16 = 256
    ("10.0.0.0/16", 65534, 256),  # at most 256
    ("fd00::/120", 255, 16),    # IPv6: only the network address is skipped
])
def test_range_sizes_and_static_bands(cidr: str, size: int, band: int) -> None:
    r = ServiceIPRange.parse(cidr)
    assert (r.size, r.static_band) == (size, band)


def test_range_refuses_garbage_and_ranges_without_addresses() -> None:
    with pytest.raises(ValueError):
        ServiceIPRange.parse("not-a-cidr")
    with pytest.raises(ValueError):
        ServiceIPRange.parse("10.0.0.0/31")


def test_pick_hands_out_every_free_address_and_only_those() -> None:
    r = ServiceIPRange.parse("10.0.0.0/27")  # 30 addresses, lower band of 16
    rng = random.Random(3)
    taken: list[int] = []
    order = []
    while (value := r.pick(taken, rng)) is not None:
        assert r.contains(value) and value not in taken
        taken = sorted([*taken, value])
        order.append(value)
    assert len(order) == 30 and len(set(order)) == 30
    # The upper band (the last 14) goes first; the static band only once it is full.
    upper = set(range(r.first + 16, r.first + 30))
    assert set(order[:14]) == upper


def test_pick_is_uniform_over_the_free_addresses_of_a_band() -> None:
    r = ServiceIPRange.parse("10.0.0.0/29")  # 6 addresses, no static band
    taken = [r.first + 1, r.first + 3]
    seen = {r.pick(taken, random.Random(seed)) for seed in range(200)}
    assert seen == {r.first, r.first + 2, r.first + 4, r.first + 5}


# -- allocation through the client ---------------------------------------------------


async def test_auto_allocation_takes_a_free_address_from_the_upper_band(
        api: Clientset, kv: Node) -> None:
    created = await api.resource("services").create(service("web"))
    ip = created["spec"]["clusterIP"]
    r = ServiceIPRange.parse(DEFAULT_SERVICE_CIDR)
    assert r.contains(as_int(ip)) and as_int(ip) >= r.first + r.static_band
    stored = await api.resource("services").get("web")
    assert stored["spec"]["clusterIP"] == ip
    assert await allocated_ips(kv) == {ip: f"default/web/{created['metadata']['uid']}"}
    assert await service_cidr(kv) == DEFAULT_SERVICE_CIDR


async def test_a_requested_address_is_kept_if_free_and_refused_if_taken(
        api: Clientset, kv: Node) -> None:
    services = api.resource("services")
    dns = await services.create(service("dns", clusterIP="10.96.0.10"))
    assert dns["spec"]["clusterIP"] == "10.96.0.10"
    with pytest.raises(Invalid) as info:
        await services.create(service("other", clusterIP="10.96.0.10"))
    assert "provided IP is already allocated" in str(info.value)
    assert info.value.fields() == ["spec.clusterIP"]
    with pytest.raises(NotFound):
        await services.get("other")
    with pytest.raises(Invalid, match="provided IP is not in the valid range"):
        await services.create(service("far", clusterIP="192.168.0.1"))
    with pytest.raises(Invalid, match="must be a valid IP address"):
        await services.create(service("bad", clusterIP="10.96.0.300"))
    with pytest.raises(Invalid, match="not in the valid range"):
        await services.create(service("net", clusterIP="10.96.0.0"))  # the network address
    assert list(await allocated_ips(kv)) == ["10.96.0.10"]


async def test_headless_and_external_name_services_hold_no_address(
        api: Clientset, kv: Node) -> None:
    services = api.resource("services")
    headless = await services.create(service("db", clusterIP="None", ports=[]))
    assert headless["spec"]["clusterIP"] == "None"
    external = await services.create({"metadata": {"name": "ext"}, "spec": {
        "type": "ExternalName", "externalName": "db.example.com"}})
    assert "clusterIP" not in external["spec"]
    assert await allocated_ips(kv) == {}
    with pytest.raises(Invalid) as info:
        await services.create(service("np", type="NodePort", clusterIP="None"))
    assert "may not be set to 'None' for NodePort services" in str(info.value)
    with pytest.raises(Invalid) as info:
        await services.create({"metadata": {"name": "ext2"}, "spec": {
            "type": "ExternalName", "externalName": "x.example.com",
            "clusterIP": "10.96.0.20"}})
    assert info.value.causes[0].type is FieldErrorType.FORBIDDEN
    await services.delete("db")
    await services.delete("ext")
    assert await allocated_ips(kv) == {}


async def test_node_port_and_load_balancer_services_get_an_address(api: Clientset) -> None:
    for name, svc_type in (("np", "NodePort"), ("lb", "LoadBalancer")):
        created = await api.resource("services").create(service(name, type=svc_type))
        assert ServiceIPRange.parse(DEFAULT_SERVICE_CIDR).contains(
            as_int(created["spec"]["clusterIP"]))


async def test_delete_releases_the_address_for_reuse_and_a_full_range_is_refused(
        api: Clientset, kv: Node) -> None:
    assert await configure_service_cidr(kv, "10.0.0.5/29") == "10.0.0.0/29"
    services = api.resource("services")
    ips = [(await services.create(service(f"s{i}")))["spec"]["clusterIP"] for i in range(6)]
    assert sorted(ips, key=as_int) == [f"10.0.0.{i}" for i in range(1, 7)]
    with pytest.raises(ServiceIPRangeFull, match="range is full") as info:
        await services.create(service("one-too-many"))
    assert info.value.code == 500 and info.value.cidr == "10.0.0.0/29"
    with pytest.raises(NotFound):
        await services.get("one-too-many")
    await services.delete("s2")
    assert ips[2] not in await allocated_ips(kv)
    again = await services.create(service("reuse"))
    assert again["spec"]["clusterIP"] == ips[2]
    # A requested address is free again once its Service is gone, too.
    await services.delete("s4")
    wanted = await services.create(service("wanted", clusterIP=ips[4]))
    assert wanted["spec"]["clusterIP"] == ips[4]


async def test_the_last_finalizer_leaving_releases_the_address(api: Clientset, kv: Node) -> None:
    services = api.resource("services")
    body = service("held")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    ip = (await services.create(body))["spec"]["clusterIP"]
    await services.delete("held")
    assert ip in await allocated_ips(kv)  # only marked: still holds its address
    marked = await services.get("held")
    marked["metadata"]["finalizers"] = []
    await services.update(marked)
    with pytest.raises(NotFound):
        await services.get("held")
    assert await allocated_ips(kv) == {}


async def test_failed_creates_hold_no_address(api: Clientset, kv: Node) -> None:
    services = api.resource("services")
    first = await services.create(service("web"))
    with pytest.raises(AlreadyExists):
        await services.create(service("web"))
    with pytest.raises(NotFound):
        await services.create(service("web", namespace="missing"))
    assert list(await allocated_ips(kv)) == [first["spec"]["clusterIP"]]


async def test_release_never_frees_an_address_another_service_holds(
        api: Clientset, kv: Node) -> None:
    services = api.resource("services")
    created = await services.create(service("web"))
    ip = created["spec"]["clusterIP"]
    # The address key names someone else (as after a repair): deleting web leaves it.
    await kv.put(ip_key(ip), "default/other/some-uid")
    await services.delete("web")
    assert await allocated_ips(kv) == {ip: "default/other/some-uid"}


async def test_cluster_ip_is_immutable_on_update(api: Clientset) -> None:
    services = api.resource("services")
    created = await services.create(service("web"))
    changed = {**created, "spec": {**created["spec"], "clusterIP": "10.96.0.77"}}
    with pytest.raises(Invalid) as info:
        await services.update(changed)
    assert info.value.causes[0].type is FieldErrorType.IMMUTABLE
    relabelled = {**created, "metadata": {**created["metadata"], "labels": {"a": "b"}}}
    updated = await services.update(relabelled)
    assert updated["spec"]["clusterIP"] == created["spec"]["clusterIP"]


async def test_an_external_name_service_turned_cluster_ip_gets_an_address(
        api: Clientset, kv: Node) -> None:
    services = api.resource("services")
    ext = await services.create({"metadata": {"name": "ext"}, "spec": {
        "type": "ExternalName", "externalName": "db.example.com"}})
    spec = {k: v for k, v in ext["spec"].items() if k != "externalName"}
    turned = await services.update({**ext, "spec": {**spec, "type": "ClusterIP",
                                                    "ports": [{"port": 5432}]}})
    ip = turned["spec"]["clusterIP"]
    assert ServiceIPRange.parse(DEFAULT_SERVICE_CIDR).contains(as_int(ip))
    assert await allocated_ips(kv) == {ip: f"default/ext/{ext['metadata']['uid']}"}


async def test_concurrent_creates_from_several_clients_never_share_an_address(
        api: Clientset, kv: Node) -> None:
    await configure_service_cidr(kv, "10.1.0.0/26")  # 62 addresses, 16 of them static
    await api.ensure_default_namespaces()
    # Three clients drawing the same random sequence: their picks collide, the
    # store's guard on the address key makes all but one retry.
    clients = [Clientset(kv, clock=api.clock, rng=random.Random(11)) for _ in range(3)]
    names = [f"s{i}" for i in range(45)]

    async def create(i: int, name: str) -> str:
        made = await clients[i % 3].resource("services").create(service(name))
        return str(made["spec"]["clusterIP"])

    ips = await asyncio.gather(*(create(i, n) for i, n in enumerate(names)))
    assert len(set(ips)) == len(names)
    held = await allocated_ips(kv)
    assert sorted(held) == sorted(ips)
    listed = (await api.resource("services").list("default"))["items"]
    assert sorted(s["spec"]["clusterIP"] for s in listed) == sorted(ips)
    r = ServiceIPRange.parse("10.1.0.0/26")
    # 46 dynamic addresses in the upper band: 45 Services fit without the static band.
    assert all(as_int(ip) >= r.first + r.static_band for ip in ips)


async def test_configure_refuses_a_bad_range_and_changes_later_allocations(
        api: Clientset, kv: Node) -> None:
    with pytest.raises(ValueError):
        await configure_service_cidr(kv, "10.0.0.0/32")
    assert await kv.get(RANGE_KEY) is None
    await configure_service_cidr(kv, "172.30.0.0/24")
    ip = (await api.resource("services").create(service("web")))["spec"]["clusterIP"]
    assert ipaddress.ip_address(ip) in ipaddress.ip_network("172.30.0.0/24")

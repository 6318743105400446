"""``EndpointsController``: for each Service with a selector (not ExternalName), an
Endpoints of the same name listing the pods of its namespace it selects, as in Kubernetes:

- a pod counts once it has an IP (``status.podIP``), while neither finished
  (Succeeded, Failed) nor, unless ``publishNotReadyAddresses``, being deleted;
- its address (``ip``, ``nodeName``, ``targetRef``, ``hostname`` when the
  pod's ``subdomain`` names the Service) goes to ``addresses`` when the pod
  is ready (or ``publishNotReadyAddresses``), else to ``notReadyAddresses``;
- each Service port becomes a port (same ``name``, ``protocol``,
  ``appProtocol``) numbered by its ``targetPort``: a number as is, a name
  through the pod's container port of that name and protocol (a pod without
  one is left out of that port); a headless Service without ports lists
  its pods without ports;
- addresses offering the same ports share a subset, and everything is
  sorted, so an unchanged Endpoints is never written again;
- beyond ``max_capacity`` (1000) addresses the list is cut, not-ready ones
  first, and annotated ``endpoints.kubernetes.io/over-capacity: truncated``.

It carries the Service's labels, ``endpoints.kubernetes.io/managed-by: endpoint-controller``
and, if headless, ``service.kubernetes.io/headless``. It has no owner: the controller
deletes it with its Service (also one left over from a Service deleted while no
controller ran). When the selector goes (or the type becomes ExternalName) an Endpoints
this controller manages is deleted; one written by someone else is left alone.

Keys are Service keys (``namespace/name``). A pod event maps to the Services
of its namespace selecting the pod before or after the change; an Endpoints
deleted or edited by someone else brings its Service's key back.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from controllers.api import errors
from controllers.api.client import ResourceClient
from controllers.api.objects import Obj
from controllers.api.selectors import LabelSelector
from controllers.builtin.podutil import is_pod_ready
from controllers.controller import DONE, REQUEUE, ControllerContext, Result
from controllers.informers import (
    DeletedFinalStateUnknown,
    ResourceEventHandlerFuncs,
    SharedInformer,
    split_meta_namespace_key,
    thaw,
)

__all__ = [
    "CONTROLLER_NAME",
    "HEADLESS_LABEL",
    "MANAGED_BY_LABEL",
    "MAX_CAPACITY",
    "OVER_CAPACITY_ANNOTATION",
    "EndpointsController",
    "desired_labels",
    "desired_subsets",
    "endpoint_address",
    "find_port",
    "pod_ip",
    "repack_subsets",
    "should_pod_be_in_endpoints",
    "truncate_subsets",
]

_log = logging.getLogger(__name__)

MANAGED_BY_LABEL = "endpoints.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpoint-controller"
HEADLESS_LABEL = "service.kubernetes.io/headless"
OVER_CAPACITY_ANNOTATION = "endpoints.kubernetes.io/over-capacity"
MAX_CAPACITY = 1000

_NO_PORT = -1  # the sentinel port of addresses listed without ports


def _seq(value: Any) -> Sequence[Any]:
    return value if isinstance(value, Sequence) and not isinstance(value, str) else ()


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def pod_ip(pod: Mapping[str, Any]) -> str:
    """The pod's primary IP (``status.podIP``, else the first of ``status.podIPs``), or ""."""
    status = _map(pod.get("status"))
    ip = status.get("podIP")
    if isinstance(ip, str) and ip:
        return ip
    ips = [str(e["ip"]) for e in _seq(status.get("podIPs")) if _map(e).get("ip")]
    return ips[0] if ips else ""


def should_pod_be_in_endpoints(pod: Mapping[str, Any], include_terminating: bool) -> bool:
    """Not finished, has an IP, and not being deleted (unless ``include_terminating``)."""
    if _map(pod.get("status")).get("phase") in ("Succeeded", "Failed"):
        return False
    if not pod_ip(pod):
        return False
    return include_terminating or not _map(pod.get("metadata")).get("deletionTimestamp")


def find_port(pod: Mapping[str, Any], service_port: Mapping[str, Any]) -> int | None:
    """The pod's port number for ``service_port``'s ``targetPort`` (None: the pod has none)."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int) and not isinstance(target, bool):
        return target
    protocol = service_port.get("protocol") or "TCP"
    for container in _seq(_map(pod.get("spec")).get("containers")):
        for port in _seq(_map(container).get("ports")):
            port = _map(port)
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                number = port.get("containerPort")
                return number if isinstance(number, int) else None
    return None


def endpoint_address(pod: Mapping[str, Any], service: Mapping[str, Any]) -> dict[str, Any]:
    """The address of ``pod`` in the Endpoints of ``service``."""
    meta, spec = _map(pod.get("metadata")), _map(pod.get("spec"))
    svc_meta = _map(service.get("metadata"))
    address: dict[str, Any] = {"ip": pod_ip(pod)}
    if spec.get("hostname") and spec.get("subdomain") == svc_meta.get("name") and \
            meta.get("namespace") == svc_meta.get("namespace"):
        address["hostname"] = spec["hostname"]
    if spec.get("nodeName"):
        address["nodeName"] = spec["nodeName"]
    address["targetRef"] = {"kind": "Pod", "namespace": meta.get("namespace", ""),
                            "name": meta.get("name", ""), "uid": meta.get("uid", "")}
    return address


def _endpoint_port(service_port: Mapping[str, Any], number: int) -> dict[str, Any]:
    port: dict[str, Any] = {"port": number, "protocol": service_port.get("protocol") or "TCP"}
    port.update({k: service_port[k] for k in ("name", "appProtocol") if service_port.get(k)})
    return port


def _address_key(address: Mapping[str, Any]) -> tuple[Any, ...]:
    ip = str(address.get("ip", ""))
    parts = ip.split(".")
    numeric = tuple(map(int, parts)) if len(parts) == 4 and all(map(str.isdigit, parts)) else ()
    return (numeric, ip, str(_map(address.get("targetRef")).get("uid", "")))


def _port_key(port: Mapping[str, Any]) -> tuple[Any, ...]:
    return (str(port.get("name", "")), int(port.get("port", 0)), str(port.get("protocol", "")),
            str(port.get("appProtocol", "")))


def repack_subsets(entries: Sequence[tuple[dict[str, Any], dict[str, Any] | None, bool]]
                   ) -> list[dict[str, Any]]:
    """Subsets from ``(address, port or None, ready)``: one per set of ports offered, sorted."""
    addresses: dict[tuple[Any, ...], dict[str, Any]] = {}
    ready: dict[tuple[Any, ...], bool] = {}
    ports_of: dict[tuple[Any, ...], dict[tuple[Any, ...], dict[str, Any] | None]] = {}
    for address, port, is_ready in entries:
        key = _address_key(address)
        addresses.setdefault(key, address)
        ready[key] = ready.get(key, True) and is_ready
        pkey = _port_key(port) if port is not None else (_NO_PORT,)
        ports_of.setdefault(key, {})[pkey] = port
    groups: dict[tuple[tuple[Any, ...], ...], list[tuple[Any, ...]]] = {}
    for key in sorted(addresses):
        groups.setdefault(tuple(sorted(ports_of[key])), []).append(key)
    subsets = []
    for pkeys, keys in groups.items():
        parts = {"addresses": [addresses[k] for k in keys if ready[k]],
                 "notReadyAddresses": [addresses[k] for k in keys if not ready[k]],
                 "ports": [p for p in (ports_of[keys[0]][pk] for pk in pkeys) if p is not None]}
        subsets.append({field: items for field, items in parts.items() if items})
    subsets.sort(key=lambda s: ([_port_key(p) for p in s.get("ports", [])],
                                [_address_key(a) for a in s.get("addresses", [])
                                 + s.get("notReadyAddresses", [])]))
    return subsets


def desired_subsets(service: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]
                    ) -> list[dict[str, Any]]:
    """The subsets the Endpoints of ``service`` should have, given the pods it selects."""
    spec = _map(service.get("spec"))
    publish = spec.get("publishNotReadyAddresses") is True
    ports = [_map(p) for p in _seq(spec.get("ports"))]
    entries: list[tuple[dict[str, Any], dict[str, Any] | None, bool]] = []
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, publish):
            continue
        address = endpoint_address(pod, service)
        is_ready = publish or is_pod_ready(pod)
        if not ports and spec.get("clusterIP") == "None":
            entries.append((address, None, is_ready))
        for service_port in ports:
            if (number := find_port(pod, service_port)) is not None:
                entries.append((address, _endpoint_port(service_port, number), is_ready))
    return repack_subsets(entries)


def truncate_subsets(subsets: list[dict[str, Any]], max_capacity: int = MAX_CAPACITY
                     ) -> tuple[list[dict[str, Any]], bool]:
    """``subsets`` cut to ``max_capacity`` addresses, and whether anything was cut.

    Not-ready addresses go first; when the ready ones alone are too many, all
    not-ready ones go and each subset keeps its share of the ready ones.
    """
    total_ready = sum(len(s.get("addresses", [])) for s in subsets)
    total_not_ready = sum(len(s.get("notReadyAddresses", [])) for s in subsets)
    if total_ready + total_not_ready <= max_capacity:
        return subsets, False
    cut_ready = total_ready > max_capacity
    field = "addresses" if cut_ready else "notReadyAddresses"
    room = max_capacity if cut_ready else max_capacity - total_ready
    total, left, out = (total_ready if cut_ready else total_not_ready), room, []
    for subset in subsets:
        share = min(left, math.ceil(len(subset.get(field, [])) / total * room))
        kept = list(subset.get(field, []))[:share]
        left -= len(kept)
        subset = {k: v for k, v in subset.items()
                  if k != field and not (cut_ready and k == "notReadyAddresses")}
        if kept:
            subset[field] = kept
        if subset.get("addresses") or subset.get("notReadyAddresses"):
            out.append(subset)
    return out, True


def desired_labels(service: Mapping[str, Any]) -> dict[str, str]:
    """The Service's labels, the managed-by label and, if headless, the headless label."""
    labels = {str(k): str(v) for k, v in _map(_map(service.get("metadata")).get("labels")).items()}
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    labels.pop(HEADLESS_LABEL, None)
    if _map(service.get("spec")).get("clusterIP") in (None, "", "None"):
        labels[HEADLESS_LABEL] = ""
    return labels


def _selector(service: Mapping[str, Any]) -> LabelSelector | None:
    """The Service's selector, or None when it has none (or is ExternalName)."""
    spec = _map(service.get("spec"))
    selector = _map(spec.get("selector"))
    if not selector or spec.get("type") == "ExternalName":
        return None
    return LabelSelector.from_set({str(k): str(v) for k, v in selector.items()})


def _is_managed(endpoints: Mapping[str, Any]) -> bool:
    labels = _map(_map(endpoints.get("metadata")).get("labels"))
    return labels.get(MANAGED_BY_LABEL) == CONTROLLER_NAME


def _key_of(obj: Any) -> str:
    """The ``namespace/name`` of ``obj`` (or of the object a tombstone holds)."""
    meta = _map(_unwrap(obj).get("metadata"))
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _unwrap(obj: Any) -> Any:
    return obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj


def _pod_view(pod: Mapping[str, Any]) -> tuple[Any, ...]:
    """What of a pod its Endpoints depend on: a change elsewhere changes nothing."""
    meta, spec = _map(pod.get("metadata")), _map(pod.get("spec"))
    return (thaw(meta.get("labels")), pod_ip(pod), is_pod_ready(pod),
            bool(meta.get("deletionTimestamp")), _map(pod.get("status")).get("phase"),
            spec.get("nodeName"), spec.get("hostname"), spec.get("subdomain"),
            thaw(spec.get("containers")))


class EndpointsController:
    """Keeps the Endpoints of every Service with a selector (see the module docstring)."""

    name = "endpoints"
    event_source = "endpoint-controller"
    informers: Sequence[str] = ("services", "pods", "endpoints")

    def __init__(self, *, max_capacity: int = MAX_CAPACITY, cache_wait: float = 5.0) -> None:
        self.max_capacity = max_capacity
        self.cache_wait = cache_wait
        self._context: ControllerContext | None = None
        self._services: SharedInformer | None = None
        self._pods: SharedInformer | None = None
        self._endpoints: SharedInformer | None = None

    def setup(self, context: ControllerContext) -> None:
        self._context = context
        services = self._services = context.informer("services")
        pods = self._pods = context.informer("pods")
        endpoints = self._endpoints = context.informer("endpoints")

        def service_event(obj: Any, *_: Any) -> None:
            context.enqueue(_key_of(obj))

        def pod_added(obj: Any, *_: Any) -> None:
            for key in self.services_for_pod(_unwrap(obj)):
                context.enqueue(key)

        def pod_updated(old: Any, new: Any) -> None:
            if _pod_view(old) == _pod_view(new):
                return
            for key in sorted(set(self.services_for_pod(old)) | set(self.services_for_pod(new))):
                context.enqueue(key)

        def endpoints_added(obj: Any, *_: Any) -> None:
            if _is_managed(obj):  # e.g. left over from a Service deleted while we were away
                service_event(obj)

        def endpoints_updated(old: Any, new: Any) -> None:
            if _is_managed(old) and (old.get("subsets"), old["metadata"].get("labels")) != (
                    new.get("subsets"), new["metadata"].get("labels")):
                service_event(new)

        services.add_event_handler(ResourceEventHandlerFuncs(
            add=service_event, update=lambda old, new: service_event(new), delete=service_event))
        pods.add_event_handler(ResourceEventHandlerFuncs(
            add=pod_added, update=pod_updated, delete=pod_added))
        endpoints.add_event_handler(ResourceEventHandlerFuncs(
            add=endpoints_added, update=endpoints_updated, delete=service_event))

    def services_for_pod(self, pod: Mapping[str, Any]) -> list[str]:
        """Keys of the Services in the pod's namespace whose selector matches the pod."""
        if self._services is None:
            raise RuntimeError("services_for_pod before setup")
        meta = _map(pod.get("metadata"))
        labels = {str(k): str(v) for k, v in _map(meta.get("labels")).items()}
        services = self._services.lister().list(namespace=str(meta.get("namespace", "")))
        return sorted(_key_of(svc) for svc in services
                      if (sel := _selector(svc)) is not None and sel.matches(labels))

    async def reconcile(self, key: str) -> Result | None:
        context, services, pods, endpoints = (self._context, self._services, self._pods,
                                              self._endpoints)
        if context is None or services is None or pods is None or endpoints is None:
            raise RuntimeError("reconcile before setup")
        namespace, name = split_meta_namespace_key(key)
        client = context.clientset.resource("endpoints")
        try:
            service = services.lister().get(namespace, name)
        except errors.NotFound:
            # The Service is gone; its Endpoints (never owned) goes with it.
            return await _delete(client, namespace, name, None)
        current = endpoints.indexer.get_by_key(key)
        selector = _selector(service)
        if selector is None:
            if current is not None and _is_managed(current):
                return await _delete(client, namespace, name, current)
            return DONE
        selected = pods.lister().list(selector, namespace=namespace)
        subsets, truncated = truncate_subsets(desired_subsets(service, selected),
                                              self.max_capacity)
        labels = desired_labels(service)
        if current is not None:
            old = thaw(current)
            annotations = dict(old["metadata"].get("annotations") or {})
            if (old.get("subsets") or []) == subsets and old["metadata"].get("labels") == labels \
                    and (annotations.get(OVER_CAPACITY_ANNOTATION) == "truncated") == truncated:
                return DONE
            body = old
        else:
            annotations = {}
            body = {"apiVersion": "v1", "kind": "Endpoints",
                    "metadata": {"name": name, "namespace": namespace}}
        annotations.pop(OVER_CAPACITY_ANNOTATION, None)
        annotations.update({OVER_CAPACITY_ANNOTATION: "truncated"} if truncated else {})
        body["metadata"].update(labels=labels, annotations=annotations)
        body["subsets"] = subsets
        try:
            written = await (client.update(body) if current is not None else client.create(body))
        except errors.Forbidden:
            return DONE  # a terminating namespace takes no new objects
        except (errors.AlreadyExists, errors.Conflict, errors.NotFound):
            return REQUEUE  # the cache is behind; look again once it has caught up
        except errors.ApiError as err:
            context.recorder.event(service, "Warning", "FailedToUpdateEndpoint",
                                   f"Failed to update endpoint {key}: {err}")
            raise
        await self._wait_for_cache(endpoints, written)
        return DONE

    async def _wait_for_cache(self, informer: SharedInformer, written: Obj) -> None:
        try:
            async with asyncio.timeout(self.cache_wait):
                await informer.wait_for_resource_version(written["metadata"]["resourceVersion"])
        except TimeoutError:
            _log.info("%s: the cache has not caught up with our write yet", self.name)


async def _delete(client: ResourceClient, ns: str, name: str, current: Obj | None) -> Result:
    """Delete the Endpoints ``ns/name`` (only the version seen, if ``current``)."""
    meta = _map(current.get("metadata")) if current is not None else {}
    try:
        await client.delete(name, ns, uid=meta.get("uid"),
                            resource_version=meta.get("resourceVersion"))
    except errors.Conflict:
        return REQUEUE
    except errors.NotFound:
        pass
    return DONE

"""``steer logs``: a container's log, streamed from the kubelet of the pod's node.

The pod names its node (``spec.nodeName``); the Node object gives the
kubelet's address (``status.addresses``: the InternalIP, else the first
address) and port (``status.daemonEndpoints.kubeletEndpoint.Port``, 10250 if
unset). The log is ``GET http://ADDR:PORT/containerLogs/NAMESPACE/POD/CONTAINER``
with ``follow``, ``tailLines`` and ``previous`` as query parameters, and its
body is copied to stdout as it arrives; an answer other than 200 is
reported as an error from the server, with the kubelet's text. Without ``-c``, a pod of one
container needs none; otherwise the ``kubectl.kubernetes.io/default-container``
annotation or the first container is used, and a note says so on stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import aiohttp

import click

from controllers.api import ApiError, Clientset
from controllers.api.objects import Obj, annotations_of, meta, name_of
from runtime.cli.session import fail, run_api

__all__ = ["DEFAULT_KUBELET_PORT", "choose_container", "kubelet_address", "logs", "stream_logs"]

DEFAULT_KUBELET_PORT = 10250
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"
_REASONS = {400: "BadRequest", 403: "Forbidden", 404: "NotFound"}


def choose_container(pod: Obj, container: str | None) -> tuple[str, str | None]:
    """The container to read, and a note to print when it was chosen for the caller."""
    spec = pod.get("spec") if isinstance(pod.get("spec"), dict) else {}
    names = [str(c.get("name")) for key in ("containers", "initContainers", "ephemeralContainers")
             for c in (spec or {}).get(key) or [] if isinstance(c, dict)]
    main = [str(c.get("name")) for c in (spec or {}).get("containers") or []
            if isinstance(c, dict)]
    if container:
        if container not in names:
            fail(f"container {container} is not valid for pod {name_of(pod)}")
        return container, None
    if not main:
        fail(f"pod {name_of(pod)} has no containers")
    if len(main) == 1:
        return main[0], None
    chosen = annotations_of(pod).get(DEFAULT_CONTAINER)
    if not isinstance(chosen, str) or chosen not in names:
        chosen = main[0]
    return chosen, f'Defaulted container "{chosen}" out of: {", ".join(main)}'


def kubelet_address(node: Obj) -> tuple[str, int]:
    """Where the node's kubelet listens: ``(host, port)``."""
    status = node.get("status") if isinstance(node.get("status"), dict) else {}
    addresses = [a for a in (status or {}).get("addresses") or [] if isinstance(a, dict)]
    internal = [a for a in addresses if a.get("type") == "InternalIP"]
    chosen = (internal or addresses or [{}])[0]
    if not chosen.get("address"):
        fail(f"node {name_of(node)} has no address to reach its kubelet")
    endpoints = (status or {}).get("daemonEndpoints") or {}
    port = (endpoints.get("kubeletEndpoint") or {}).get("Port") or DEFAULT_KUBELET_PORT
    return str(chosen["address"]), int(port)


async def stream_logs(api: Clientset, pod_name: str, namespace: str, *,
                      container: str | None, follow: bool, tail: int, previous: bool,
                      write: Callable[[bytes], None],
                      note: Callable[[str], None] = lambda s: None) -> None:
    """Copy the container's log to ``write`` (see the module docstring)."""
    pod = await api.resource("pods").get(pod_name, namespace)
    name, chosen_note = choose_container(pod, container)
    if chosen_note:
        note(chosen_note)
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        fail(f'container "{name}" in pod "{pod_name}" is waiting to start: the pod is not '
             "scheduled to a node yet")
    host, port = kubelet_address(await api.resource("nodes").get(str(node_name)))
    params = {}
    if follow:
        params["follow"] = "true"
    if tail >= 0:
        params["tailLines"] = str(tail)
    if previous:
        params["previous"] = "true"
    ns = meta(pod).get("namespace") or namespace
    url = f"http://{host}:{port}/containerLogs/{ns}/{pod_name}/{name}"
    try:
        async with aiohttp.ClientSession() as session, session.get(url, params=params) as resp:
            if resp.status != 200:
                err = ApiError((await resp.text()).strip() or resp.reason or "")
                err.code = resp.status
                err.reason = _REASONS.get(resp.status, "InternalError")
                raise err
            async for chunk in resp.content.iter_any():
                write(chunk)
    except aiohttp.ClientError as e:
        fail(f"cannot reach the kubelet of node {node_name} at {host}:{port}: {e}")


@click.command()
@click.argument("pod")
@click.option("-c", "--container", default=None, help="the container (default: the only one)")
@click.option("-f", "--follow", is_flag=True, help="keep streaming as the log grows")
@click.option("--tail", type=int, default=-1, help="only the last N lines (-1: all)")
@click.option("-p", "--previous", is_flag=True, help="the previous instance's log")
@click.option("-n", "--namespace", default=None)
@click.pass_context
def logs(ctx: click.Context, pod: str, container: str | None, follow: bool, tail: int,
         previous: bool, namespace: str | None) -> None:
    """Print a container's log: logs POD [-c CONTAINER] [-f] [--tail N] [--previous]."""
    if "/" in pod:
        kind, _, pod = pod.partition("/")
        if kind not in ("pod", "pods", "po"):
            fail(f"logs of {kind} are not supported: name a pod")
    def write(chunk: bytes) -> None:
        out = sys.stdout.buffer  # looked up per call: test runners swap sys.stdout
        out.write(chunk)
        out.flush()

    run_api(ctx, lambda api: stream_logs(
        api, pod, namespace or "default", container=container, follow=follow, tail=tail,
        previous=previous, write=write, note=lambda s: click.echo(s, err=True)))

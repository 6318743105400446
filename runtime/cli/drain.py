"""``steer cordon``, ``uncordon`` and ``drain``: take a node out of service as kubectl does.

- ``cordon NODE...`` sets the node's ``spec.unschedulable`` (the scheduler
  then places no new pod there, and node lifecycle adds the
  ``node.kubernetes.io/unschedulable`` taint); ``uncordon`` clears it. Each
  prints ``node/x cordoned`` (or ``already cordoned``).
- ``drain NODE...`` cordons, then judges each pod bound to the node with
  kubectl's filters, in order, the last verdict standing unless one refuses
  or skips the pod (see ``classify``): a pod of a DaemonSet is refused, or
  left in place with ``--ignore-daemonsets``; a pod whose DaemonSet is gone
  is refused, or removed with ``--force``; a mirror pod is skipped; a pod
  with an ``emptyDir`` volume is refused without ``--delete-emptydir-data``;
  a pod with no controller is refused without ``--force``. A finished pod is
  never refused. If any pod is refused nothing is removed and the command
  fails with kubectl's message; the node stays cordoned. Otherwise each pod
  is evicted (``evicting pod ns/name``: a delete with ``--grace-period``,
  as there are no disruption budgets to consult) or, with
  ``--disable-eviction``, deleted, and the command waits, on a watch of the
  node's pods, until each is gone or replaced by a pod of another uid
  (``pod/name evicted``), then prints ``node/x drained``. ``--timeout``
  (0: for ever) bounds the wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import click

from controllers.api import (
    ApiError,
    Clientset,
    Gone,
    LabelSelector,
    NotFound,
    ResourceClient,
    WatchEventType,
)
from controllers.api.objects import Obj, annotations_of, meta, name_of, namespace_of
from controllers.builtin.podutil import controller_ref
from runtime.cli.objects import mutate
from runtime.cli.rollout import parse_duration
from runtime.cli.session import fail, run_api

__all__ = [
    "DrainOptions",
    "Verdict",
    "classify",
    "cordon",
    "drain",
    "go_duration",
    "refusals",
    "uncordon",
    "warnings",
]

_log = logging.getLogger(__name__)

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
DAEMONSET_FATAL = "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)"
DAEMONSET_WARNING = "ignoring DaemonSet-managed Pods"
LOCAL_STORAGE_FATAL = "Pods with local storage (use --delete-emptydir-data to override)"
LOCAL_STORAGE_WARNING = "deleting Pods with local storage"
UNMANAGED_FATAL = "cannot delete Pods that declare no controller (use --force to override)"
UNMANAGED_WARNING = "deleting Pods that declare no controller"


@dataclass(frozen=True, slots=True)
class DrainOptions:
    """What ``drain`` may remove."""

    force: bool = False
    ignore_daemonsets: bool = False
    delete_emptydir_data: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether to remove a pod; ``reason`` is okay, skip, warning or error, with a message."""

    pod: Obj
    delete: bool
    reason: str = "okay"
    message: str = ""


def _is_finished(pod: Obj) -> bool:
    status = pod.get("status")
    return isinstance(status, dict) and status.get("phase") in ("Succeeded", "Failed")


def _has_local_storage(pod: Obj) -> bool:
    spec = pod.get("spec")
    volumes = spec.get("volumes") if isinstance(spec, dict) else None
    return any(isinstance(v, dict) and "emptyDir" in v for v in volumes or [])


def _is_daemon_pod(pod: Obj) -> bool:
    ref = controller_ref(pod)
    return ref is not None and ref.get("kind") == "DaemonSet" and not _is_finished(pod)


def _daemonset_filter(pod: Obj, opts: DrainOptions, missing_daemonset: str | None) -> Verdict:
    if not _is_daemon_pod(pod):
        return Verdict(pod, True)
    if missing_daemonset is not None:
        if opts.force:
            return Verdict(pod, True, "warning", missing_daemonset)
        return Verdict(pod, False, "error", missing_daemonset)
    if not opts.ignore_daemonsets:
        return Verdict(pod, False, "error", DAEMONSET_FATAL)
    return Verdict(pod, False, "warning", DAEMONSET_WARNING)


def _mirror_filter(pod: Obj, opts: DrainOptions, missing_daemonset: str | None) -> Verdict:
    if MIRROR_ANNOTATION in annotations_of(pod):
        return Verdict(pod, False, "skip")
    return Verdict(pod, True)


def _local_storage_filter(pod: Obj, opts: DrainOptions, missing_daemonset: str | None
                          ) -> Verdict:
    if not _has_local_storage(pod) or _is_finished(pod):
        return Verdict(pod, True)
    if not opts.delete_emptydir_data:
        return Verdict(pod, False, "error", LOCAL_STORAGE_FATAL)
    return Verdict(pod, True, "warning", LOCAL_STORAGE_WARNING)


def _unreplicated_filter(pod: Obj, opts: DrainOptions, missing_daemonset: str | None
                         ) -> Verdict:
    if _is_finished(pod) or controller_ref(pod) is not None:
        return Verdict(pod, True)
    if opts.force:
        return Verdict(pod, True, "warning", UNMANAGED_WARNING)
    return Verdict(pod, False, "error", UNMANAGED_FATAL)


_FILTERS = (_daemonset_filter, _mirror_filter, _local_storage_filter, _unreplicated_filter)


def classify(pod: Obj, opts: DrainOptions, *, missing_daemonset: str | None = None) -> Verdict:
    """kubectl's filters, in its order; ``missing_daemonset``: the error of finding its DaemonSet.

    The first filter that keeps the pod in place decides; otherwise the last
    filter's verdict stands (so only its warning survives, as in kubectl).
    """
    verdict = Verdict(pod, True)
    for check in _FILTERS:
        verdict = check(pod, opts, missing_daemonset)
        if not verdict.delete:
            break
    return verdict


def _ref(pod: Obj) -> str:
    return f"{namespace_of(pod)}/{name_of(pod)}"


def _grouped(verdicts: Sequence[Verdict], reason: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for v in verdicts:
        if v.reason == reason:
            out.setdefault(v.message or "unexpected error", []).append(_ref(v.pod))
    return out


def refusals(verdicts: Sequence[Verdict]) -> list[str]:
    """kubectl's errors for refused pods: ``cannot delete <why>: ns/a, ns/b``, one per reason."""
    out = []
    for message, pods in _grouped(verdicts, "error").items():
        prefix = "" if message.lower().startswith("cannot delete") else "cannot delete "
        out.append(f"{prefix}{message}: {', '.join(pods)}")
    return out


def warnings(verdicts: Sequence[Verdict]) -> str:
    """kubectl's warning line (without ``WARNING: ``); empty if there is nothing to warn of."""
    return "; ".join(f"{message}: {', '.join(pods)}"
                     for message, pods in _grouped(verdicts, "warning").items())


def go_duration(seconds: float) -> str:
    """A duration as Go prints one: ``30s``, ``1m0s``, ``1h2m3.5s``, ``250ms``."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:.9f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    if minutes:
        return f"{int(minutes)}m{text}"
    return text


class DrainError(Exception):
    """A node could not be drained; ``errors`` are kubectl's lines, one per reason."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__(errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]")


# -- cordon ----------------------------------------------------------------------------------
async def _nodes(api: Clientset, names: Sequence[str], selector: str | None,
                 usage: str) -> list[Obj]:
    if names and selector:
        fail("cannot specify both a node name and a --selector option")
    client = api.resource("nodes")
    if selector:
        return list((await client.list(label_selector=selector))["items"])
    if not names:
        fail(f"USAGE: {usage} [flags]\nSee 'steer {usage.split()[0]} -h' for help and examples")
    return [await client.get(name) for name in names]


async def _set_unschedulable(api: Clientset, nodes: Sequence[Obj], desired: bool) -> None:
    client = api.resource("nodes")
    word = "cordoned" if desired else "uncordoned"

    def change(obj: Obj) -> bool:
        spec = obj.setdefault("spec", {})
        if bool(spec.get("unschedulable")) == desired:
            return False
        if desired:
            spec["unschedulable"] = True
        else:
            spec.pop("unschedulable", None)
        return True

    for node in nodes:
        _, changed = await mutate(client, name_of(node), "", change)
        click.echo(f"node/{name_of(node)} {word if changed else 'already ' + word}")


def _cordon_command(desired: bool) -> click.Command:
    verb = "cordon" if desired else "uncordon"

    @click.command(name=verb)
    @click.argument("names", nargs=-1)
    @click.option("-l", "--selector", default=None, help="every node matching the labels")
    @click.pass_context
    def command(ctx: click.Context, names: tuple[str, ...], selector: str | None) -> None:
        async def go(api: Clientset) -> None:
            nodes = await _nodes(api, names, selector, f"{verb} NODE")
            await _set_unschedulable(api, nodes, desired)

        run_api(ctx, go)

    command.help = ("Mark nodes as unschedulable: cordon NODE..." if desired
                    else "Mark nodes as schedulable again: uncordon NODE...")
    return command


cordon = _cordon_command(True)
uncordon = _cordon_command(False)


# -- drain -----------------------------------------------------------------------------------
async def _missing_daemonset(api: Clientset, pod: Obj) -> str | None:
    """The error of looking up the DaemonSet controlling ``pod`` (None: it exists, or no DS)."""
    ref = controller_ref(pod)
    if not _is_daemon_pod(pod) or ref is None:
        return None
    try:
        await api.resource("daemonsets").get(str(ref.get("name")), namespace_of(pod))
    except NotFound as e:
        return e.message
    return None


def _key(pod: Obj) -> tuple[str, str]:
    return namespace_of(pod), name_of(pod)


async def _watch_until_gone(client: ResourceClient, node: str, pending: dict[tuple[str, str], Obj],
                            resource_version: str, gone: Callable[[Obj], None]) -> None:
    """Wait until every pod in ``pending`` is removed (or replaced: another uid)."""
    selector = f"spec.nodeName={node}"

    def settle(obj: Obj, removed: bool) -> None:
        pod = pending.get(_key(obj))
        if pod is not None and (removed or meta(obj).get("uid") != meta(pod).get("uid")):
            del pending[_key(obj)]
            gone(pod)

    while pending:
        try:
            async with await client.watch(None, field_selector=selector,
                                          resource_version=resource_version,
                                          allow_bookmarks=False) as stream:
                async for ev in stream:
                    if ev.type != WatchEventType.BOOKMARK:
                        settle(ev.object, ev.type == WatchEventType.DELETED)
                    if not pending:
                        return
        except Gone:
            _log.debug("drain %s: the watch fell behind compaction; listing again", node)
        # The watch ended or fell behind compaction: see what is left, and watch again.
        lst = await client.list(None, field_selector=selector)
        present = {_key(p): p for p in lst["items"]}
        for key, pod in list(pending.items()):
            now = present.get(key)
            settle(now if now is not None else pod, now is None)
        resource_version = str(lst["metadata"]["resourceVersion"])


async def _remove_pods(api: Clientset, node: str, doomed: list[Obj], resource_version: str, *,
                       grace: int | None, eviction: bool,
                       pending: dict[tuple[str, str], Obj]) -> None:
    client = api.resource("pods")
    verb = "evicted" if eviction else "deleted"
    for pod in doomed:
        pending[_key(pod)] = pod
    for pod in doomed:
        if eviction:
            click.echo(f"evicting pod {_ref(pod)}")
        try:
            await client.delete(name_of(pod), namespace_of(pod), grace_period_seconds=grace)
        except NotFound:
            pending.pop(_key(pod), None)
    await _watch_until_gone(client, node, pending, resource_version,
                            lambda pod: click.echo(f"pod/{name_of(pod)} {verb}"))


async def _drain_node(api: Clientset, node: str, opts: DrainOptions, *, pod_selector: str | None,
                      grace: int | None, eviction: bool, timeout: float) -> None:
    """Remove ``node``'s pods as ``classify`` allows; raises ``DrainError`` with kubectl's words."""
    client = api.resource("pods")
    lst = await client.list(None, field_selector=f"spec.nodeName={node}",
                            label_selector=pod_selector)
    verdicts = [classify(p, opts, missing_daemonset=await _missing_daemonset(api, p))
                for p in lst["items"]]
    errors = refusals(verdicts)
    if errors:
        raise DrainError(errors)
    text = warnings(verdicts)
    if text:
        click.echo(f"WARNING: {text}", err=True)
    pending: dict[tuple[str, str], Obj] = {}
    try:
        async with asyncio.timeout(timeout or None):
            await _remove_pods(api, node, [v.pod for v in verdicts if v.delete],
                               str(lst["metadata"]["resourceVersion"]), grace=grace,
                               eviction=eviction, pending=pending)
    except TimeoutError:
        limit = f"global timeout reached: {go_duration(timeout)}"
        err = DrainError([f'error when waiting for pod "{name_of(p)}" in namespace '
                          f'"{namespace_of(p)}" to terminate: {limit}'
                          for p in pending.values()] if eviction else [limit])
        click.echo(f'There are pending pods in node "{node}" when an error occurred: {err}',
                   err=True)
        for p in pending.values():
            click.echo(f"pod/{name_of(p)}", err=True)
        raise err from None


@click.command()
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True,
              help="also remove pods no controller manages, and pods of a missing DaemonSet")
@click.option("--ignore-daemonsets", is_flag=True, help="leave DaemonSet-managed pods in place")
@click.option("--delete-emptydir-data", "--delete-local-data", "delete_emptydir_data",
              is_flag=True, help="also remove pods with emptyDir volumes (their data is lost)")
@click.option("--grace-period", type=int, default=-1,
              help="seconds each pod is given to stop (-1: the pod's own)")
@click.option("--timeout", default="0s", help="give up after this long (0s: never)")
@click.option("--disable-eviction", is_flag=True, help="delete pods instead of evicting them")
@click.option("-l", "--selector", default=None, help="drain every node matching the labels")
@click.option("--pod-selector", default=None, help="remove only the pods matching the labels")
@click.pass_context
def drain(ctx: click.Context, names: tuple[str, ...], force: bool, ignore_daemonsets: bool,
          delete_emptydir_data: bool, grace_period: int, timeout: str, disable_eviction: bool,
          selector: str | None, pod_selector: str | None) -> None:
    """Cordon nodes and evict their pods: drain NODE [--ignore-daemonsets] [--force]."""
    seconds = parse_duration(timeout)
    if pod_selector:
        try:
            LabelSelector.parse(pod_selector)
        except ApiError:
            fail("--pod-selector=<pod_selector> must be a valid label selector")
    opts = DrainOptions(force, ignore_daemonsets, delete_emptydir_data)

    async def go(api: Clientset) -> int:
        nodes = await _nodes(api, names, selector, "drain NODE")
        await _set_unschedulable(api, nodes, True)
        failed: list[tuple[str, DrainError]] = []
        for node in nodes:
            name = name_of(node)
            try:
                await _drain_node(api, name, opts, pod_selector=pod_selector,
                                  grace=grace_period if grace_period >= 0 else None,
                                  eviction=not disable_eviction, timeout=seconds)
            except DrainError as e:
                click.echo(f'error: unable to drain node "{name}" due to error:{e}, '
                           "continuing command...", err=True)
                failed.append((name, e))
                continue
            click.echo(f"node/{name} drained")
        if failed:
            click.echo("There are pending nodes to be drained:", err=True)
            for name, _ in failed:
                click.echo(f" {name}", err=True)
            for _, error in failed:
                for line in error.errors:
                    click.echo(line, err=True)
        return len(failed)

    if run_api(ctx, go):
        raise SystemExit(1)

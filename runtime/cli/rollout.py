"""``steer rollout``: status, history, undo, pause and resume of a Deployment, as kubectl does them.

- ``status`` waits (on a watch of the Deployment) until the rollout is done:
  the controller has seen the latest spec (``observedGeneration >=
  generation``), every replica is updated and available, and no old replica
  is left. It prints kubectl's progress messages as they change; a
  ``ProgressDeadlineExceeded`` condition or ``--timeout`` ends it with an error.
- ``history`` lists the revisions of the Deployment's ReplicaSets (those it
  controls, by owner reference), from the ``deployment.kubernetes.io/revision``
  annotation, with each one's ``kubernetes.io/change-cause``.
- ``undo`` is client-side, like kubectl's: it finds the ReplicaSet of the
  revision asked for (default: the one before the latest), and copies its pod
  template, without the ``pod-template-hash`` label, and its annotations into
  the Deployment. The controller then rolls out that template as a new revision.
- ``pause`` / ``resume`` set ``spec.paused``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import click

from controllers.api import Clientset, LabelSelector, ResourceClient, WatchEventType
from controllers.api.objects import Obj, annotations_of, labels_of, meta, name_of
from runtime.cli.describe import Sections, write_pod_template
from runtime.cli.objects import mutate
from runtime.cli.printers import format_rows, qualified_name
from runtime.cli.session import fail, lookup_kind, run_api
from runtime.cli.targets import split_slash

__all__ = [
    "CHANGE_CAUSE",
    "REVISION",
    "find_rollback",
    "history",
    "owned_replicasets",
    "parse_duration",
    "revision_of",
    "rollout",
    "status_message",
    "wait_for_rollout",
]

REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
TEMPLATE_HASH = "pod-template-hash"
# Annotations of a ReplicaSet that describe the ReplicaSet, not the template: not copied back.
_NOT_COPIED = ("kubectl.kubernetes.io/last-applied-configuration", REVISION,
               "deployment.kubernetes.io/revision-history",
               "deployment.kubernetes.io/desired-replicas",
               "deployment.kubernetes.io/max-replicas", "deprecated.deployment.rollback.to")


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def status_message(deploy: Obj) -> tuple[str, bool]:
    """kubectl's message for the rollout of ``deploy``, and whether it is done.

    Exits with an error if the rollout exceeded its progress deadline.
    """
    name = name_of(deploy)
    spec, st = _d(deploy.get("spec")), _d(deploy.get("status"))
    generation = meta(deploy).get("generation", 0)
    if generation > st.get("observedGeneration", 0):
        return "Waiting for deployment spec update to be observed...", False
    for c in st.get("conditions") or []:
        if _d(c).get("type") == "Progressing" and _d(c).get("reason") == "ProgressDeadlineExceeded":
            fail(f'deployment "{name}" exceeded its progress deadline')
    want = spec.get("replicas", 1)
    updated, total = st.get("updatedReplicas", 0), st.get("replicas", 0)
    available = st.get("availableReplicas", 0)
    if updated < want:
        return (f'Waiting for deployment "{name}" rollout to finish: {updated} out of {want} '
                "new replicas have been updated..."), False
    if total > updated:
        return (f'Waiting for deployment "{name}" rollout to finish: {total - updated} old '
                "replicas are pending termination..."), False
    if available < updated:
        return (f'Waiting for deployment "{name}" rollout to finish: {available} of {updated} '
                "updated replicas are available..."), False
    return f'deployment "{name}" successfully rolled out', True


def revision_of(rs: Obj) -> int:
    """The revision a ReplicaSet's annotation records (0 if none or unreadable)."""
    text = annotations_of(rs).get(REVISION, "")
    return int(text) if isinstance(text, str) and text.isdigit() else 0


async def owned_replicasets(api: Clientset, deploy: Obj) -> list[Obj]:
    """The ReplicaSets ``deploy`` controls: selected by it and naming it as their controller."""
    selector = LabelSelector.from_dict(_d(deploy.get("spec")).get("selector"))
    lst = await api.resource("replicasets").list(meta(deploy).get("namespace") or "default",
                                                 label_selector=selector)
    uid = meta(deploy).get("uid")
    return [rs for rs in lst["items"]
            if any(_d(r).get("controller") and _d(r).get("uid") == uid
                   for r in meta(rs).get("ownerReferences") or [])]


def history(sets: list[Obj]) -> list[tuple[int, str]]:
    """``(revision, change cause)`` of each ReplicaSet with a revision, oldest first."""
    out = {revision_of(rs): str(annotations_of(rs).get(CHANGE_CAUSE) or "<none>")
           for rs in sets if revision_of(rs) > 0}
    return sorted(out.items())


def _without_hash(template: Any) -> dict[str, Any]:
    out = dict(_d(template))
    labels = {k: v for k, v in labels_of(out).items() if k != TEMPLATE_HASH}
    m = dict(_d(out.get("metadata")))
    if labels:
        m["labels"] = labels
    else:
        m.pop("labels", None)
    out["metadata"] = m
    return out


def find_rollback(deploy: Obj, sets: list[Obj], to_revision: int) -> tuple[Obj, int]:
    """The ReplicaSet to roll back to and its revision (kubectl's choice and errors)."""
    if to_revision > 0:
        for rs in sets:
            if revision_of(rs) == to_revision:
                return rs, to_revision
        fail(f"unable to find specified revision {to_revision} in history")
    ranked = sorted((rs for rs in sets if revision_of(rs) > 0), key=revision_of, reverse=True)
    if len(ranked) < 2:
        fail(f'no rollout history found for deployment "{name_of(deploy)}"')
    return ranked[1], revision_of(ranked[1])


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_duration(text: str) -> float:
    """``30s``, ``1m30s``, ``250ms``, ``2h`` or a bare number of seconds, in seconds."""
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    pos, total = 0, 0.0
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * scale[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise click.BadParameter(f"invalid duration {text!r}")
    return total


async def _deployment(api: Clientset, args: tuple[str, ...], namespace: str | None
                      ) -> tuple[ResourceClient, Obj]:
    if len(args) == 1:
        kind_name, name = split_slash(args[0])
    elif len(args) == 2:
        kind_name, name = args
    else:
        fail("expected TYPE/NAME or TYPE NAME")
    kind = lookup_kind(api, kind_name)
    if kind.resource != "deployments.apps":
        fail(f"no rollout support has been implemented for {kind.resource}")
    client = api.resource(kind.resource)
    return client, await client.get(name, namespace or "default")


async def wait_for_rollout(client: ResourceClient, deploy: Obj,
                           emit: Callable[[str], None]) -> None:
    """Emit ``status_message`` each time it changes, until the rollout of ``deploy`` is done."""
    last = ""

    def show(obj: Obj) -> bool:
        nonlocal last
        message, done = status_message(obj)
        if message != last:
            emit(message)
            last = message
        return done

    if show(deploy):
        return
    name, ns = name_of(deploy), meta(deploy).get("namespace") or "default"
    async with await client.watch(ns, field_selector=f"metadata.name={name}",
                                  resource_version=str(meta(deploy)["resourceVersion"]),
                                  allow_bookmarks=False) as stream:
        async for ev in stream:
            if ev.type == WatchEventType.DELETED:
                fail(f'deployment "{name}" was deleted')
            if ev.type != WatchEventType.BOOKMARK and show(ev.object):
                return
    fail("the watch ended before the rollout finished")


@click.group()
def rollout() -> None:
    """Manage the rollout of a deployment: status, history, undo, pause, resume."""


_ns = click.option("-n", "--namespace", default=None)


@rollout.command()
@click.argument("args", nargs=-1, required=True)
@click.option("--timeout", default="0s", help="give up after this long (0s: never)")
@click.option("-w", "--watch/--no-watch", default=True, help="wait for the rollout to finish")
@_ns
@click.pass_context
def status(ctx: click.Context, args: tuple[str, ...], timeout: str, watch: bool,
           namespace: str | None) -> None:
    """Wait until the rollout is done, printing its progress."""
    seconds = parse_duration(timeout)

    async def go(api: Clientset) -> None:
        client, deploy = await _deployment(api, args, namespace)
        if not watch:
            click.echo(status_message(deploy)[0])
            return
        try:
            async with asyncio.timeout(seconds or None):
                await wait_for_rollout(client, deploy, click.echo)
        except TimeoutError:
            fail("timed out waiting for the condition")

    run_api(ctx, go)


@rollout.command(name="history")
@click.argument("args", nargs=-1, required=True)
@click.option("--revision", type=int, default=0, help="show the pod template of this revision")
@_ns
@click.pass_context
def history_(ctx: click.Context, args: tuple[str, ...], revision: int,
             namespace: str | None) -> None:
    """List the revisions of a deployment, with their change causes."""

    async def go(api: Clientset) -> None:
        client, deploy = await _deployment(api, args, namespace)
        sets = await owned_replicasets(api, deploy)
        title = qualified_name(client.kind, deploy)
        if revision > 0:
            for rs in sets:
                if revision_of(rs) == revision:
                    click.echo(f"{title} with revision #{revision}")
                    s = Sections()
                    write_pod_template(s, 0, _without_hash(_d(rs.get("spec")).get("template")))
                    for line in s.lines():
                        click.echo(line)
                    return
            fail(f"unable to find the specified revision {revision}")
        rows = history(sets)
        if not rows:
            click.echo("No rollout history found.")
            return
        click.echo(title)
        for line in format_rows(["REVISION", "CHANGE-CAUSE"],
                                [[str(r), cause] for r, cause in rows]):
            click.echo(line)

    run_api(ctx, go)


@rollout.command()
@click.argument("args", nargs=-1, required=True)
@click.option("--to-revision", type=int, default=0, help="the revision to go back to "
              "(0: the previous one)")
@_ns
@click.pass_context
def undo(ctx: click.Context, args: tuple[str, ...], to_revision: int,
         namespace: str | None) -> None:
    """Roll a deployment back to an earlier revision."""

    async def go(api: Clientset) -> None:
        client, deploy = await _deployment(api, args, namespace)
        if _d(deploy.get("spec")).get("paused"):
            fail("you cannot rollback a paused deployment; resume it first with "
                 "'steer rollout resume' and try again")
        rs, rev = find_rollback(deploy, await owned_replicasets(api, deploy), to_revision)
        template = _without_hash(_d(rs.get("spec")).get("template"))
        title = qualified_name(client.kind, deploy)

        def change(obj: Obj) -> bool:
            spec = obj.setdefault("spec", {})
            if _without_hash(spec.get("template")) == template:
                return False
            spec["template"] = template
            notes = dict(annotations_of(obj))
            notes.update({k: v for k, v in annotations_of(rs).items() if k not in _NOT_COPIED})
            obj["metadata"]["annotations"] = notes
            return True

        _, changed = await mutate(client, name_of(deploy), meta(deploy).get("namespace", ""),
                                  change)
        if changed:
            click.echo(f"{title} rolled back")
        else:
            click.echo(f"{title} skipped rollback (current template already matches revision "
                       f"{rev})")

    run_api(ctx, go)


def _set_paused(ctx: click.Context, args: tuple[str, ...], namespace: str | None,
                paused: bool) -> None:
    async def go(api: Clientset) -> None:
        client, deploy = await _deployment(api, args, namespace)

        def change(obj: Obj) -> bool:
            spec = obj.setdefault("spec", {})
            if bool(spec.get("paused")) == paused:
                fail(f'{client.kind.resource} "{name_of(obj)}" is '
                     f'{"already paused" if paused else "not paused"}')
            spec["paused"] = paused
            return True

        obj, _ = await mutate(client, name_of(deploy), meta(deploy).get("namespace", ""), change)
        click.echo(f"{qualified_name(client.kind, obj)} {'paused' if paused else 'resumed'}")

    run_api(ctx, go)


@rollout.command()
@click.argument("args", nargs=-1, required=True)
@_ns
@click.pass_context
def pause(ctx: click.Context, args: tuple[str, ...], namespace: str | None) -> None:
    """Stop the controller from rolling out changes to the pod template."""
    _set_paused(ctx, args, namespace, True)


@rollout.command()
@click.argument("args", nargs=-1, required=True)
@_ns
@click.pass_context
def resume(ctx: click.Context, args: tuple[str, ...], namespace: str | None) -> None:
    """Let the controller roll out the pod template again."""
    _set_paused(ctx, args, namespace, False)

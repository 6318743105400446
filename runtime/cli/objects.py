"""``steer apply``, ``delete``, ``scale`` and ``set image``: kubectl's writes.

Each prints what kubectl prints (``deployment.apps/web configured``,
``pod "web-1" deleted``, ``deployment.apps/web scaled``...). Changes that
read an object first (scale with a precondition, set image; ``label`` and
``annotate`` in ``metadata``) write it back with a compare-and-swap on its
resourceVersion and start over on a ``Conflict`` (``mutate``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from controllers.api import ApiError, Clientset, Conflict, NotFound, ResourceClient
from controllers.api.objects import Obj, meta
from runtime.cli.apply import apply_object
from runtime.cli.manifests import read_manifests
from runtime.cli.printers import qualified_name
from runtime.cli.session import api_error, fail, lookup_kind, run_api
from runtime.cli.targets import Target, parse_targets, split_slash

__all__ = ["apply", "delete", "mutate", "scale", "set_", "update_images"]

_ATTEMPTS = 8


async def mutate(client: ResourceClient, name: str, namespace: str,
                 change: Callable[[Obj], bool]) -> tuple[Obj, bool]:
    """Read the object, let ``change`` edit it (returning whether it did), write it back."""
    for attempt in range(_ATTEMPTS):
        obj = await client.get(name, namespace)
        if not change(obj):
            return obj, False
        try:
            return await client.update(obj), True
        except Conflict:
            if attempt == _ATTEMPTS - 1:
                raise
    raise Conflict(client.kind.resource, name)


def _namespace(ns: str | None) -> str:
    return ns or "default"


# -- apply -----------------------------------------------------------------------------------
@click.command()
@click.option("-f", "--filename", "files", multiple=True, required=True,
              help="a file, a directory of *.yaml/*.yml/*.json, or - for stdin")
@click.option("-n", "--namespace", default=None)
@click.pass_context
def apply(ctx: click.Context, files: tuple[str, ...], namespace: str | None) -> None:
    """Create or update objects from files (kubectl's client-side apply)."""
    manifests = read_manifests(files, sys.stdin)

    async def go(api: Clientset) -> int:
        failed = 0
        for mf in manifests:
            try:
                kind, obj, verb = await apply_object(api, mf.obj, namespace)
            except ApiError as e:
                click.echo(api_error(e), err=True)
                failed += 1
                continue
            click.echo(f"{qualified_name(kind, obj)} {verb}")
        return failed

    if run_api(ctx, go):
        raise SystemExit(1)


# -- delete ----------------------------------------------------------------------------------
_CASCADE = {"background": "Background", "foreground": "Foreground", "orphan": "Orphan",
            "true": "Background", "false": "Orphan"}


@click.command()
@click.argument("args", nargs=-1)
@click.option("-f", "--filename", "files", multiple=True, help="delete the objects in these files")
@click.option("-l", "--selector", default=None, help="delete every object matching the labels")
@click.option("--all", "all_", is_flag=True, help="every object of the type in the namespace")
@click.option("-n", "--namespace", default=None)
@click.option("--cascade", type=click.Choice(sorted(_CASCADE), case_sensitive=False),
              default="background", show_default=True,
              help="what happens to dependents (the propagation policy)")
@click.option("--grace-period", type=int, default=-1,
              help="seconds a pod is given to stop (-1: the pod's own)")
@click.option("--now", is_flag=True, help="same as --grace-period=1")
@click.option("--ignore-not-found", is_flag=True)
@click.pass_context
def delete(ctx: click.Context, args: tuple[str, ...], files: tuple[str, ...],
           selector: str | None, all_: bool, namespace: str | None, cascade: str,
           grace_period: int, now: bool, ignore_not_found: bool) -> None:
    """Delete objects by TYPE NAME..., TYPE/NAME..., -f FILE or TYPE -l SELECTOR."""
    manifests = read_manifests(files, sys.stdin, verb="delete") if files else []
    if files and args:
        fail("cannot delete by file and by name at once")
    if not files and not args:
        fail("You must provide one or more resources by argument or filename.")
    grace = 1 if now else (grace_period if grace_period >= 0 else None)
    policy = _CASCADE[cascade.lower()]

    async def go(api: Clientset) -> int:
        items: list[tuple[ResourceClient, str, str]] = []
        for mf in manifests:
            client = api.for_object(mf.obj)
            ns = str(meta(mf.obj).get("namespace") or _namespace(namespace))
            items.append((client, str(meta(mf.obj).get("name")), ns))
        targets: list[Target] = parse_targets(api, args) if args else []
        for t in targets:
            client = api.resource(t.kind.resource)
            if t.names:
                items += [(client, n, _namespace(namespace)) for n in t.names]
                continue
            if not selector and not all_:
                fail("resource(s) were provided, but no name was specified")
            lst = await client.list(_namespace(namespace) if t.kind.namespaced else None,
                                    label_selector=selector)
            items += [(client, str(meta(o)["name"]), _namespace(namespace))
                      for o in lst["items"]]
        if not items:
            click.echo("No resources found", err=True)
        failed = 0
        for client, name, ns in items:
            try:
                await client.delete(name, ns, propagation_policy=policy,
                                    grace_period_seconds=grace)
            except NotFound as e:
                if not ignore_not_found:
                    click.echo(api_error(e), err=True)
                    failed += 1
                continue
            kind = client.kind
            prefix = f"{kind.singular}.{kind.group}" if kind.group else kind.singular
            click.echo(f'{prefix} "{name}" deleted')
        return failed

    if run_api(ctx, go):
        raise SystemExit(1)


# -- scale -----------------------------------------------------------------------------------
_SCALE_FIELD = {"deployments.apps": "replicas", "replicasets.apps": "replicas",
                "statefulsets.apps": "replicas", "jobs.batch": "parallelism"}


def _one_object(args: tuple[str, ...]) -> tuple[str, str]:
    if len(args) == 1:
        return split_slash(args[0])
    if len(args) == 2 and "/" not in args[0]:
        return args[0], args[1]
    fail("expected TYPE/NAME or TYPE NAME")


@click.command()
@click.argument("args", nargs=-1, required=True)
@click.option("--replicas", type=click.IntRange(min=0), required=True)
@click.option("--current-replicas", type=int, default=-1,
              help="precondition: scale only if the size is this now")
@click.option("-n", "--namespace", default=None)
@click.pass_context
def scale(ctx: click.Context, args: tuple[str, ...], replicas: int, current_replicas: int,
          namespace: str | None) -> None:
    """Set the size of a deployment, replica set or job: scale deploy/NAME --replicas N."""
    kind_name, name = _one_object(args)

    async def go(api: Clientset) -> None:
        kind = lookup_kind(api, kind_name)
        field = _SCALE_FIELD.get(kind.resource)
        if field is None:
            fail(f'{kind.resource} "{name}" cannot be scaled')
        client = api.resource(kind.resource)

        def change(obj: Obj) -> bool:
            spec = obj.setdefault("spec", {})
            if current_replicas >= 0 and spec.get(field) != current_replicas:
                fail(f"Expected replicas to be {current_replicas}, was {spec.get(field)}")
            if spec.get(field) == replicas:
                return False
            spec[field] = replicas
            return True

        obj, _ = await mutate(client, name, _namespace(namespace), change)
        click.echo(f"{qualified_name(kind, obj)} scaled")

    run_api(ctx, go)


# -- set image -------------------------------------------------------------------------------
def _pod_spec(obj: Obj) -> dict[str, Any] | None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return None
    if obj.get("kind") == "Pod":
        return spec
    if obj.get("kind") == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec")
        if not isinstance(spec, dict):
            return None
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        return template["spec"]  # type: ignore[no-any-return]
    return None


def update_images(obj: Obj, images: dict[str, str]) -> bool:
    """Set each container's image (``*``: every container); returns whether anything changed.

    Exits with kubectl's error if a named container is not in the pod template.
    """
    spec = _pod_spec(obj)
    if spec is None:
        fail(f"{obj.get('kind')} has no pod template")
    containers = [c for key in ("initContainers", "containers")
                  for c in (spec.get(key) or []) if isinstance(c, dict)]
    changed = False
    for name, image in images.items():
        matched = [c for c in containers if name == "*" or c.get("name") == name]
        if not matched:
            fail(f'unable to find container named "{name}"')
        for c in matched:
            if c.get("image") != image:
                c["image"] = image
                changed = True
    return changed


@click.group(name="set")
def set_() -> None:
    """Change a field of objects: set image."""


@set_.command()
@click.argument("args", nargs=-1, required=True)
@click.option("-n", "--namespace", default=None)
@click.pass_context
def image(ctx: click.Context, args: tuple[str, ...], namespace: str | None) -> None:
    """Set container images: set image deploy/NAME CONTAINER=IMAGE..."""
    pairs = [a for a in args if "=" in a]
    objects = tuple(a for a in args if "=" not in a)
    if not pairs:
        fail("at least one image update is required")
    images = dict(p.split("=", 1) for p in pairs)
    kind_name, name = _one_object(objects)

    async def go(api: Clientset) -> None:
        kind = lookup_kind(api, kind_name)
        obj, changed = await mutate(api.resource(kind.resource), name, _namespace(namespace),
                                    lambda o: update_images(o, images))
        if changed:
            click.echo(f"{qualified_name(kind, obj)} image updated")

    run_api(ctx, go)

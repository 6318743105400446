"""``steer wait``: block until objects meet a condition, are deleted, or a path has a value.

``wait (TYPE NAME... | TYPE/NAME... | TYPE -l SELECTOR | TYPE --all) --for=...``:

- ``--for=condition=Available[=VALUE]``: a ``status.conditions`` entry of
  that type has that status (default ``True``), both compared without
  regard to case; an entry whose ``observedGeneration`` (or the status's)
  is behind ``metadata.generation`` does not count yet;
- ``--for=delete``: the object is gone, or replaced by one of another uid;
  an object already missing is passed over in silence;
- ``--for=jsonpath='{.status.phase}'=Running``: the path reaches exactly
  one value, a scalar, that prints as the value; without ``=VALUE``, that
  the path reaches anything.

Each object is read, then followed on a watch from that read's revision
(no polling) until it qualifies; a watch that ends or falls behind
compaction is re-established from a fresh read. A condition waited on
outlives the object's deletion (it may come back). The objects are waited on
one after another within one ``--timeout`` (default 30s; 0: check once;
negative: a week). Each prints ``deployment.apps/web condition met``. As in
kubectl, running out of time is ``error: timed out waiting for the condition
on deployments/web`` (exit 1), a missing object ``Error from server
(NotFound)``, and a selector matching nothing ``error: no matching
resources found``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import click

from controllers.api import Clientset, Gone, Kind, NotFound, ResourceClient, WatchEventType
from controllers.api.objects import Obj, meta
from runtime.cli import jsonpath
from runtime.cli.printers import qualified_name
from runtime.cli.rollout import parse_duration
from runtime.cli.session import fail, run_api
from runtime.cli.targets import parse_targets

__all__ = ["Condition", "parse_for", "parse_timeout", "wait", "wait_for"]

_WEEK = 7 * 24 * 3600.0
_JSONPATH_FORMAT = ("jsonpath wait format must be --for=jsonpath='{.status.readyReplicas}'=3 "
                    "or --for=jsonpath='{.status.readyReplicas}'")


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class Condition:
    """What ``--for`` waits for: ``delete``, a status ``condition`` or a ``jsonpath`` value."""

    kind: str
    name: str = ""
    value: str = ""
    path: jsonpath.JsonPath | None = None

    @property
    def is_delete(self) -> bool:
        return self.kind == "delete"

    def is_met(self, obj: Obj) -> bool:
        """Whether ``obj`` qualifies (not for ``delete``); exits on a path to a non-scalar."""
        if self.path is not None:
            return self._path_met(obj, self.path)
        status = _d(obj.get("status"))
        for c in status.get("conditions") or []:
            c = _d(c)
            if str(c.get("type", "")).casefold() != self.name.casefold() or "status" not in c:
                continue
            observed = c.get("observedGeneration", status.get("observedGeneration"))
            generation = meta(obj).get("generation")
            if (isinstance(observed, int) and isinstance(generation, int)
                    and observed < generation):
                return False
            return str(c["status"]).casefold() == self.value.casefold()
        return False

    def _path_met(self, obj: Obj, path: jsonpath.JsonPath) -> bool:
        found = path.find(obj)
        if not found:
            return False
        if len(found) > 1:
            fail("given jsonpath expression matches more than one value")
        if not self.value:
            return True
        if isinstance(found[0], dict | list):
            fail("jsonpath leads to a nested object or list which is not supported")
        return jsonpath.format_value(found[0]).strip() == self.value.strip()


def _split_jsonpath(text: str) -> tuple[str, str | None]:
    """``{.a.b}=x`` as ``("{.a.b}", "x")``; the value is None when none is given.

    The path ends at its closing quote if quoted, at its closing brace if in
    braces (so a filter's ``==`` stays in it), else at the first ``=``.
    """
    if text[:1] in ("'", '"'):
        end = text.find(text[0], 1)
        expr, rest = text[1:end], text[end + 1:]
    elif text.startswith("{"):
        depth, end = 0, -1
        for i, c in enumerate(text):
            depth += (c == "{") - (c == "}")
            if depth == 0:
                end = i
                break
        expr, rest = text[:end + 1], text[end + 1:]
    else:
        expr, sep, value = text.partition("=")
        return expr, value if sep else None
    if end <= 0 or (rest and not rest.startswith("=")):
        fail(_JSONPATH_FORMAT)
    return expr, rest[1:] if rest else None


def parse_for(text: str) -> Condition:
    """``--for``'s value as a ``Condition``; exits with kubectl's error if it is not one."""
    if text.lower() == "delete":
        return Condition("delete")
    if text.startswith("condition="):
        name, sep, value = text[len("condition="):].partition("=")
        return Condition("condition", name, value if sep else "true")
    if text.startswith("jsonpath="):
        expr, given = _split_jsonpath(text[len("jsonpath="):])
        value = ""
        if given is not None:
            value = given.strip("'\"")
            if not value:
                fail("jsonpath wait value cannot be empty")
        try:
            path = jsonpath.parse(expr)
        except jsonpath.JsonPathError as e:
            fail(str(e))
        return Condition("jsonpath", value=value, path=path)
    fail(f'unrecognized condition: "{text}"')


def parse_timeout(text: str) -> float:
    """``--timeout`` in seconds: a duration, 0 (check once), or negative (a week)."""
    if text.startswith("-"):
        parse_duration(text[1:])
        return _WEEK
    return parse_duration(text)


async def _read(client: ResourceClient, name: str, namespace: str | None
                ) -> tuple[Obj | None, str]:
    lst = await client.list(namespace, field_selector=f"metadata.name={name}")
    items = lst["items"]
    return (items[0] if items else None), str(lst["metadata"]["resourceVersion"])


async def wait_for(client: ResourceClient, name: str, namespace: str, cond: Condition, *,
                   seen: Obj | None = None, once: bool = False) -> Obj | None:
    """Wait until object ``name`` meets ``cond``; returns it.

    ``seen`` is the object as a selector listed it, if it did. For
    ``delete``, returns the object as first seen (None: it was never seen).
    Raises ``NotFound`` when an object to meet a condition is missing at the
    start; with ``once``, exits with kubectl's error unless it qualifies at once.
    """
    kind = client.kind
    ns = namespace if kind.namespaced else None
    obj, revision = await _read(client, name, ns)
    if obj is None and not cond.is_delete:
        raise NotFound(kind.resource, name)
    first = seen if seen is not None else obj
    if first is None:
        return None
    uid = meta(first).get("uid")
    while True:
        if cond.is_delete:
            if obj is None or meta(obj).get("uid") != uid:
                return first
        elif obj is not None and cond.is_met(obj):
            return obj
        if once:
            fail(f"condition not met for {kind.plural}/{name}")
        try:
            async with await client.watch(ns, field_selector=f"metadata.name={name}",
                                          resource_version=revision,
                                          allow_bookmarks=False) as stream:
                async for ev in stream:
                    if ev.type == WatchEventType.BOOKMARK:
                        continue
                    if cond.is_delete:
                        if (ev.type == WatchEventType.DELETED
                                or meta(ev.object).get("uid") != uid):
                            return first
                    elif ev.type != WatchEventType.DELETED and cond.is_met(ev.object):
                        return ev.object
        except Gone:
            pass  # fell behind compaction: read again and watch from there
        obj, revision = await _read(client, name, ns)


async def _targets(api: Clientset, args: tuple[str, ...], namespace: str,
                   selector: str | None, all_: bool
                   ) -> list[tuple[ResourceClient, str, Obj | None]]:
    """Each object to wait on: its client, its name, and the object if a selector listed it."""
    out: list[tuple[ResourceClient, str, Obj | None]] = []
    for t in parse_targets(api, args):
        client = api.resource(t.kind.resource)
        if t.names:
            out += [(client, n, None) for n in t.names]
            continue
        if not selector and not all_:
            fail("resource(s) were provided, but no name was specified")
        lst = await client.list(namespace if t.kind.namespaced else None,
                                label_selector=selector)
        out += [(client, str(meta(o)["name"]), o) for o in lst["items"]]
    return out


def _timed_out(kind: Kind, name: str) -> str:
    return f"timed out waiting for the condition on {kind.plural}/{name}"


@click.command()
@click.argument("args", nargs=-1)
@click.option("--for", "for_", default="",
              help="delete | condition=NAME[=VALUE] | jsonpath='{PATH}'[=VALUE]")
@click.option("--timeout", default="30s", show_default=True,
              help="give up after this long (0: check once; negative: a week)")
@click.option("-l", "--selector", default=None, help="every object matching the labels")
@click.option("--all", "all_", is_flag=True, help="every object of the type")
@click.option("-n", "--namespace", default=None)
@click.pass_context
def wait(ctx: click.Context, args: tuple[str, ...], for_: str, timeout: str,
         selector: str | None, all_: bool, namespace: str | None) -> None:
    """Wait for a condition on objects: wait TYPE/NAME --for=condition=Available."""
    cond = parse_for(for_)
    seconds = parse_timeout(timeout)
    ns = namespace or "default"

    async def go(api: Clientset) -> None:
        deadline = asyncio.get_running_loop().time() + seconds
        targets = await _targets(api, args, ns, selector, all_)
        if not targets and not cond.is_delete:
            fail("no matching resources found")
        for client, name, seen in targets:
            try:
                async with asyncio.timeout_at(deadline if seconds else None):
                    obj = await wait_for(client, name, ns, cond, seen=seen, once=seconds == 0)
            except TimeoutError:
                fail(_timed_out(client.kind, name))
            if obj is not None:
                click.echo(f"{qualified_name(client.kind, obj)} condition met")

    run_api(ctx, go)

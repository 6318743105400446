"""``steer get``: objects as kubectl prints them, and ``-w`` to follow their changes.

``get TYPE[,TYPE] [NAME...]`` or ``get TYPE/NAME...`` or ``get all``.
Tables use ``printers``; ``-o yaml|json`` prints one object, or a ``List``
of several; ``-o name`` prints ``kind.group/name``; ``-o wide`` adds
columns. With more than one kind, names are qualified and the tables are
separated by a blank line. ``-A`` lists every namespace and adds a
NAMESPACE column. Missing names are reported (``Error from server
(NotFound)``) after what was found, with exit code 1. ``-w`` prints the
table, then one row per change from the store's watch, until interrupted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from controllers.api import ApiError, Clientset, Kind, NotFound, WatchEventType
from controllers.api.objects import Obj, labels_of, namespace_of
from runtime.cli.output import render
from runtime.cli.printers import (
    column_widths,
    columns,
    format_rows,
    qualified_name,
    row,
)
from runtime.cli.session import api_error, fail, run_api
from runtime.cli.targets import Target, parse_targets

__all__ = ["Listing", "Options", "collect", "format_listing", "get", "watch_rows"]


@dataclass(frozen=True, slots=True)
class Options:
    """How to select and print (``get``'s flags)."""

    namespace: str | None
    all_namespaces: bool
    output: str
    selector: str | None
    field_selector: str | None
    show_labels: bool = False

    @property
    def list_namespace(self) -> str | None:
        return None if self.all_namespaces else (self.namespace or "default")


@dataclass(frozen=True, slots=True)
class Listing:
    """Objects found per kind, and the errors of names that were not."""

    found: list[tuple[Kind, list[Obj]]]
    errors: list[ApiError]
    single: bool
    resource_version: str = ""


async def collect(api: Clientset, targets: list[Target], opts: Options) -> Listing:
    """Read every target: named objects one by one, the others by one list each."""
    found: list[tuple[Kind, list[Obj]]] = []
    errors: list[ApiError] = []
    rv = ""
    for t in targets:
        client = api.resource(t.kind.resource)
        ns = opts.namespace or "default"
        if t.names:
            items = []
            for name in t.names:
                try:
                    items.append(await client.get(name, ns))
                except NotFound as e:
                    errors.append(e)
        else:
            lst = await client.list(opts.list_namespace, label_selector=opts.selector,
                                    field_selector=opts.field_selector)
            items = list(lst["items"])
            rv = str(lst["metadata"].get("resourceVersion", ""))
        found.append((t.kind, items))
    single = len(targets) == 1 and len(targets[0].names) == 1
    return Listing(found, errors, single, rv)


def _table(kind: Kind, items: list[Obj], opts: Options, now: float, qualify: bool
           ) -> tuple[list[str], list[list[str]]]:
    wide = opts.output == "wide"
    headers = columns(kind, wide)
    rows = [row(kind, o, now, wide, name=qualified_name(kind, o) if qualify else None)
            for o in items]
    if opts.all_namespaces and kind.namespaced:
        headers = ["NAMESPACE", *headers]
        rows = [[namespace_of(o), *r] for o, r in zip(items, rows)]
    if opts.show_labels:
        headers = [*headers, "LABELS"]
        rows = [[*r, ",".join(f"{k}={v}" for k, v in labels_of(o).items()) or "<none>"]
                for o, r in zip(items, rows)]
    return headers, rows


def format_listing(listing: Listing, opts: Options, now: float) -> list[str]:
    """The lines ``get`` prints on stdout for ``listing``."""
    objects = [o for _, items in listing.found for o in items]
    if opts.output in ("yaml", "json"):
        if listing.single and len(objects) == 1:
            value: Any = objects[0]
        elif not objects:
            return []
        else:
            value = {"apiVersion": "v1", "items": objects, "kind": "List",
                     "metadata": {"resourceVersion": ""}}
        return [render(value, opts.output).rstrip("\n")]
    if opts.output == "name":
        return [qualified_name(k, o) for k, items in listing.found for o in items]
    qualify = len(listing.found) > 1
    lines: list[str] = []
    for kind, items in listing.found:
        if not items:
            continue
        if lines:
            lines.append("")
        headers, rows = _table(kind, items, opts, now, qualify)
        lines += format_rows(headers, rows)
    return lines


def _nothing_found(opts: Options, targets: list[Target]) -> str:
    if opts.all_namespaces or all(not t.kind.namespaced for t in targets):
        return "No resources found"
    return f"No resources found in {opts.namespace or 'default'} namespace."


async def watch_rows(api: Clientset, kind: Kind, opts: Options, *, resource_version: str,
                     name: str | None, widths: list[int], emit: Callable[[str], None],
                     max_events: int = 0) -> None:
    """Print a line per change of ``kind`` after ``resource_version`` (``max_events`` > 0: stop
    after that many)."""
    field_selector = opts.field_selector or ""
    if name:
        field_selector = ",".join(x for x in (field_selector, f"metadata.name={name}") if x)
    client = api.resource(kind.resource)
    seen = 0
    async with await client.watch(opts.list_namespace if not name else
                                  (opts.namespace or "default"),
                                  label_selector=opts.selector, field_selector=field_selector,
                                  resource_version=resource_version,
                                  allow_bookmarks=False) as stream:
        async for ev in stream:
            if ev.type == WatchEventType.BOOKMARK:
                continue
            if opts.output in ("yaml", "json"):
                text = render(ev.object, opts.output).rstrip("\n")
                emit(f"---\n{text}" if opts.output == "yaml" else text)
            elif opts.output == "name":
                emit(qualified_name(kind, ev.object))
            else:
                headers, rows = _table(kind, [ev.object], opts, api.clock.now(), False)
                if not widths:
                    widths.extend(column_widths(headers, rows))
                    emit(format_rows(headers, [], widths)[0])
                emit(format_rows([], rows, widths)[0])
            seen += 1
            if max_events and seen >= max_events:
                return


@click.command()
@click.argument("args", nargs=-1)
@click.option("-n", "--namespace", default=None, help="the namespace (default: default)")
@click.option("-A", "--all-namespaces", is_flag=True, help="every namespace")
@click.option("-o", "--output", type=click.Choice(["yaml", "json", "wide", "name"]),
              default=None, help="output format")
@click.option("-l", "--selector", default=None, help="label selector (app=web,tier!=db)")
@click.option("--field-selector", default=None, help="field selector (status.phase=Running)")
@click.option("-w", "--watch", is_flag=True, help="after listing, print each change")
@click.option("--show-labels", is_flag=True, help="add a LABELS column")
@click.pass_context
def get(ctx: click.Context, args: tuple[str, ...], namespace: str | None, all_namespaces: bool,
        output: str | None, selector: str | None, field_selector: str | None, watch: bool,
        show_labels: bool) -> None:
    """Display one or many objects: get TYPE[,TYPE] [NAME...] | TYPE/NAME... | all."""
    opts = Options(namespace, all_namespaces, output or "", selector, field_selector,
                   show_labels)

    async def go(api: Clientset) -> int:
        targets = parse_targets(api, args)
        if all_namespaces and any(t.names for t in targets):
            fail("a resource cannot be retrieved by name across all namespaces")
        if watch and (len(targets) != 1 or len(targets[0].names) > 1):
            fail("you may only specify a single resource type (and at most one name) to watch")
        listing = await collect(api, targets, opts)
        lines = format_listing(listing, opts, api.clock.now())
        for line in lines:
            click.echo(line)
        for err in listing.errors:
            click.echo(api_error(err), err=True)
        if not lines and not listing.errors and not watch:
            click.echo(_nothing_found(opts, targets), err=True)
        if watch:
            kind = targets[0].kind
            items = [o for _, objs in listing.found for o in objs]
            widths = (column_widths(*_table(kind, items, opts, api.clock.now(), False))
                      if items else [])
            rv = listing.resource_version
            if not rv and items:
                rv = str(items[0]["metadata"]["resourceVersion"])
            await watch_rows(api, kind, opts, resource_version=rv,
                             name=targets[0].names[0] if targets[0].names else None,
                             widths=widths, emit=lambda s: click.echo(s))
        return 1 if listing.errors else 0

    code = run_api(ctx, go)
    if code:
        raise SystemExit(code)

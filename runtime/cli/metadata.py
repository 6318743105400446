"""``steer label`` and ``annotate``: set and remove keys of objects' labels or annotations.

Both take kubectl's arguments: the objects first (``TYPE NAME...``,
``TYPE/NAME...``, or ``TYPE`` with ``-l SELECTOR`` or ``--all``), then the
changes: ``KEY=VALUE`` sets a key, ``KEY-`` removes it. A key that already
holds another value changes only with ``--overwrite``. Each object is read,
changed and written back with a compare-and-swap (``objects.mutate``).

The two differ only where kubectl's do: ``label`` stops at the first key it
may not overwrite, says so of a removed key that is not there, and prints
``labeled``, ``unlabeled`` or ``not labeled``; ``annotate`` names every key
it may not overwrite (``kubernetes.io/change-cause`` may always be), removes
missing keys silently, and prints ``annotated``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import click

from controllers.api import Clientset, ResourceClient
from controllers.api.objects import Obj, annotations_of, labels_of, meta
from runtime.cli.objects import mutate
from runtime.cli.printers import qualified_name
from runtime.cli.session import fail, run_api
from runtime.cli.targets import parse_targets

__all__ = ["PairArgs", "annotate", "label", "parse_pair_args", "update_annotations",
           "update_labels"]

CHANGE_CAUSE = "kubernetes.io/change-cause"


@dataclass(slots=True)
class PairArgs:
    """A command's objects, the keys to set and the keys to remove."""

    objects: list[str] = field(default_factory=list)
    add: dict[str, str] = field(default_factory=dict)
    remove: list[str] = field(default_factory=list)


def _is_pair(arg: str) -> bool:
    return ("=" in arg and not arg.startswith("=")) or (arg.endswith("-") and arg != "-")


def parse_pair_args(args: Sequence[str], noun: str) -> PairArgs:
    """Split ``label``/``annotate`` arguments: objects, then ``KEY=VALUE`` and ``KEY-`` changes.

    ``noun`` (``label``, ``annotation``) goes into kubectl's error for an object
    named after a change.
    """
    out = PairArgs()
    for arg in args:
        if not _is_pair(arg):
            if out.add or out.remove:
                fail(f"all resources must be specified before {noun} changes: {arg}")
            out.objects.append(arg)
        elif "=" in arg and not arg.startswith("="):
            key, value = arg.split("=", 1)
            out.add[key] = value
        else:
            out.remove.append(arg[:-1])
    return out


def _apply(current: Mapping[str, str], add: Mapping[str, str], remove: Sequence[str]
           ) -> dict[str, str]:
    out = dict(current)
    out.update(add)
    for key in remove:
        out.pop(key, None)
    return out


def _store(obj: Obj, field_name: str, values: dict[str, str], before: Mapping[str, str]) -> bool:
    if values == dict(before):
        return False
    m = obj.setdefault("metadata", {})
    if values:
        m[field_name] = values
    else:
        m.pop(field_name, None)
    return True


def update_labels(obj: Obj, pairs: PairArgs, *, overwrite: bool,
                  emit: Callable[[str], None] = click.echo) -> bool:
    """Change ``obj``'s labels as kubectl's ``label`` does; returns whether anything changed."""
    labels = labels_of(obj)
    for key, value in pairs.add.items():
        if key in labels and labels[key] != value and not overwrite:
            fail(f"'{key}' already has a value ({labels[key]}), and --overwrite is false")
    for key in pairs.remove:
        if key not in labels:
            emit(f'label "{key}" not found.')
    return _store(obj, "labels", _apply(labels, pairs.add, pairs.remove), labels)


def update_annotations(obj: Obj, pairs: PairArgs, *, overwrite: bool) -> bool:
    """Change ``obj``'s annotations as kubectl's ``annotate`` does; returns whether it changed."""
    notes = annotations_of(obj)
    if not overwrite:
        taken = [f"'{key}' already has a value ({notes[key]})"
                 for key, value in pairs.add.items()
                 if key != CHANGE_CAUSE and key in notes and notes[key] != value]
        if taken:
            fail("--overwrite is false but found the following declared annotation(s): "
                 + "; ".join(taken))
    return _store(obj, "annotations", _apply(notes, pairs.add, pairs.remove), notes)


def _run(ctx: click.Context, objects: Sequence[str], *, selector: str | None, all_: bool,
         namespace: str | None, change: Callable[[Obj], bool],
         verb: Callable[[bool], str]) -> None:
    """Apply ``change`` to every object named; print ``kind/name <verb(changed)>`` for each."""
    ns = namespace or "default"

    async def go(api: Clientset) -> None:
        names: list[tuple[ResourceClient, str]] = []
        for t in parse_targets(api, tuple(objects)):
            client = api.resource(t.kind.resource)
            if not t.names:
                if not selector and not all_:
                    fail("resource(s) were provided, but no name was specified")
                lst = await client.list(ns if t.kind.namespaced else None,
                                        label_selector=selector)
                t.names = [str(meta(o)["name"]) for o in lst["items"]]
            names += [(client, n) for n in t.names]
        for client, name in names:
            obj, changed = await mutate(client, name, ns, change)
            click.echo(f"{qualified_name(client.kind, obj)} {verb(changed)}")

    run_api(ctx, go)


def _target_options(fn: Callable[..., None]) -> Callable[..., None]:
    for option in reversed((
        click.argument("args", nargs=-1, required=True),
        click.option("--overwrite", is_flag=True,
                     help="replace keys that already have a value"),
        click.option("-l", "--selector", default=None, help="every object matching the labels"),
        click.option("--all", "all_", is_flag=True, help="every object of the type"),
        click.option("-n", "--namespace", default=None),
        click.pass_context,
    )):
        fn = option(fn)
    return fn


@click.command()
@_target_options
def label(ctx: click.Context, args: tuple[str, ...], overwrite: bool, selector: str | None,
          all_: bool, namespace: str | None) -> None:
    """Update labels: label TYPE NAME... KEY=VALUE... KEY-..."""
    pairs = parse_pair_args(args, "label")
    if not pairs.add and not pairs.remove:
        fail("at least one label update is required")
    both = [k for k in pairs.remove if k in pairs.add]
    if both:
        fail(f"can not both modify and remove a label in the same command: {both[0]}")

    def verb(changed: bool) -> str:
        if not changed:
            return "not labeled"
        return "labeled" if pairs.add else "unlabeled"

    _run(ctx, pairs.objects, selector=selector, all_=all_, namespace=namespace,
         change=lambda obj: update_labels(obj, pairs, overwrite=overwrite), verb=verb)


@click.command()
@_target_options
def annotate(ctx: click.Context, args: tuple[str, ...], overwrite: bool, selector: str | None,
             all_: bool, namespace: str | None) -> None:
    """Update annotations: annotate TYPE NAME... KEY=VALUE... KEY-..."""
    pairs = parse_pair_args(args, "annotation")
    if not pairs.add and not pairs.remove:
        fail("at least one annotation update is required")
    both = [k for k in pairs.remove if k in pairs.add]
    if both:
        fail("can not both modify and remove the following annotation(s) in the same "
             f"command: {', '.join(both)}")
    _run(ctx, pairs.objects, selector=selector, all_=all_, namespace=namespace,
         change=lambda obj: update_annotations(obj, pairs, overwrite=overwrite),
         verb=lambda _changed: "annotated")

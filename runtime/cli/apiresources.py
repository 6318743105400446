"""``steer api-resources``: every kind the cluster serves, as kubectl lists them.

Columns NAME SHORTNAMES APIVERSION NAMESPACED KIND (``-o wide`` adds VERBS
and CATEGORIES; ``-o name`` prints ``plural.group`` alone), one row per
kind of the registry the commands resolve names with, built-in and
registered alike. Rows are ordered by API group, the core group first, then
by name, as kubectl orders discovery; ``--sort-by name|kind`` orders by that
instead. ``--namespaced=true|false`` and ``--api-group`` filter.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from controllers.api import Clientset, Kind
from runtime.cli.printers import format_rows
from runtime.cli.session import fail, run_api
from runtime.cli.targets import ALL_CATEGORY

__all__ = ["VERBS", "api_resources", "resource_row", "select_kinds"]

VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")
"""What the resource client offers on every kind."""

_HEADERS = ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]


def select_kinds(kinds: Sequence[Kind], *, sort_by: str = "", namespaced: bool | None = None,
                 api_group: str | None = None) -> list[Kind]:
    """``kinds`` filtered and ordered as the module docstring says."""
    if sort_by == "name":
        ordered = sorted(kinds, key=lambda k: k.plural)
    elif sort_by == "kind":
        ordered = sorted(kinds, key=lambda k: k.kind)
    else:
        ordered = sorted(kinds, key=lambda k: (k.group, k.plural))
    return [k for k in ordered
            if (namespaced is None or k.namespaced == namespaced)
            and (api_group is None or k.group == api_group)]


def resource_row(kind: Kind, *, wide: bool = False) -> list[str]:
    """One row of the table."""
    row = [kind.plural, ",".join(kind.short_names), kind.api_version,
           str(kind.namespaced).lower(), kind.kind]
    if wide:
        row += [f"[{' '.join(VERBS)}]", "all" if kind.plural in ALL_CATEGORY else ""]
    return row


@click.command(name="api-resources")
@click.option("-o", "--output", default="", help="wide or name")
@click.option("--sort-by", default="", help="name or kind")
@click.option("--namespaced", type=click.BOOL, default=None,
              help="true: namespaced kinds only; false: cluster-scoped ones only")
@click.option("--api-group", default=None, help="only the kinds of this API group")
@click.option("--no-headers", is_flag=True, help="leave out the header row")
@click.pass_context
def api_resources(ctx: click.Context, output: str, sort_by: str, namespaced: bool | None,
                  api_group: str | None, no_headers: bool) -> None:
    """Print the supported API resources: NAME SHORTNAMES APIVERSION NAMESPACED KIND."""
    if output not in ("", "wide", "name"):
        fail(f"--output {output} is not available")
    if sort_by not in ("", "name", "kind"):
        fail(f"--sort-by accepts only name or kind, not {sort_by!r}")

    async def go(api: Clientset) -> None:
        kinds = select_kinds(api.registry.kinds(), sort_by=sort_by, namespaced=namespaced,
                             api_group=api_group)
        if output == "name":
            for k in kinds:
                click.echo(k.resource)
            return
        wide = output == "wide"
        headers = _HEADERS + (["VERBS", "CATEGORIES"] if wide else [])
        rows = [resource_row(k, wide=wide) for k in kinds]
        for line in format_rows([] if no_headers else headers, rows):
            click.echo(line)

    run_api(ctx, go)

"""``steer patch``: change fields of objects with a JSON, merge or strategic merge patch.

``patch TYPE NAME... -p PATCH`` (or ``TYPE/NAME``; ``--patch-file FILE``
instead of ``-p``). The patch is JSON or YAML text; ``--type`` is
``strategic`` (the default, as in kubectl), ``merge`` (RFC 7386) or
``json`` (RFC 6902: a list of operations). The
store applies it to the object as it is at the time and retries on a
concurrent write (``ResourceClient.patch``); a ``metadata.resourceVersion``
in the patch makes it conditional. ``--subresource status`` patches the
status instead. Prints ``deployment.apps/web patched``, or ``patched (no
change)`` when the object came out as it was.
"""

from __future__ import annotations

from typing import Any

import click
import yaml

from controllers.api import Clientset
from controllers.api.objects import meta
from runtime.cli.printers import qualified_name
from runtime.cli.session import fail, run_api
from runtime.cli.targets import parse_targets

__all__ = ["PATCH_TYPES", "parse_patch", "patch"]

PATCH_TYPES = ("json", "merge", "strategic")


def parse_patch(text: str, patch_type: str) -> dict[str, Any] | list[Any]:
    """The patch written as JSON or YAML ``text``; exits with kubectl's error if it is not one."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as e:
        fail(f"unable to parse {text!r}: {e}")
    if patch_type == "json":
        if not isinstance(value, list):
            fail(f"unable to parse {text!r}: a json patch must be a list of operations")
        return value
    if not isinstance(value, dict):
        fail(f"unable to parse {text!r}: a {patch_type} patch must be an object")
    return value


def _patch_text(patch_text: str | None, patch_file: str | None) -> str:
    if patch_text is not None and patch_file is not None:
        fail("--patch and --patch-file cannot be used together")
    if patch_file is not None:
        try:
            with open(patch_file, encoding="utf-8") as f:
                return f.read()
        except OSError as e:
            fail(f"unable to read patch file: {e}")
    if not patch_text:
        fail("must specify --patch or --patch-file containing the contents of the patch")
    return patch_text


@click.command()
@click.argument("args", nargs=-1, required=True)
@click.option("-p", "--patch", "patch_text", default=None, help="the patch, as JSON or YAML")
@click.option("--patch-file", default=None, help="a file holding the patch")
@click.option("--type", "patch_type", default="strategic", show_default=True,
              help="strategic, merge or json")
@click.option("--subresource", default="", help="patch this subresource (status)")
@click.option("-n", "--namespace", default=None)
@click.pass_context
def patch(ctx: click.Context, args: tuple[str, ...], patch_text: str | None,
          patch_file: str | None, patch_type: str, subresource: str,
          namespace: str | None) -> None:
    """Update fields of objects: patch TYPE NAME -p '{"spec": {"replicas": 3}}'."""
    if patch_type not in PATCH_TYPES:
        fail(f'--type must be one of [{" ".join(PATCH_TYPES)}], not "{patch_type}"')
    if subresource not in ("", "status"):
        fail(f'invalid subresource value: "{subresource}". Must be one of [status]')
    text = _patch_text(patch_text, patch_file)
    body = parse_patch(text, patch_type)
    ns = namespace or "default"

    async def go(api: Clientset) -> None:
        for t in parse_targets(api, args):
            if not t.names:
                fail("resource(s) were provided, but no name was specified")
            client = api.resource(t.kind.resource)
            for name in t.names:
                before = await client.get(name, ns)
                after = await client.patch(name, ns, body, patch_type, subresource=subresource)
                same = meta(after).get("resourceVersion") == meta(before).get("resourceVersion")
                click.echo(f"{qualified_name(t.kind, after)} patched"
                           + (" (no change)" if same else ""))

    run_api(ctx, go)

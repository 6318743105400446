"""``steer kv``: the key-value store, in the spirit of etcdctl."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

import kvstore
from kvstore.errors import KvError
from kvstore.mvcc.types import EventType, KeyValue, Response, TxnResult
from runtime.cli.output import fail, print_table, render, to_text
from runtime.cli.txn import parse_txn
from runtime.clusterfile import endpoints_from_env_or_file

__all__ = ["register"]

T = TypeVar("T")


def _endpoints(ctx: click.Context) -> list[str]:
    eps = endpoints_from_env_or_file(ctx.obj["endpoints"], ctx.obj["data_dir"])
    if not eps:
        fail("no cluster found: run `steer up --detach` here, or pass --endpoints")
    return eps  # type: ignore[return-value]


def _run(ctx: click.Context, fn: Callable[[kvstore.Client], Awaitable[T]]) -> T:
    async def go() -> T:
        async with kvstore.connect(_endpoints(ctx), timeout=ctx.obj.get("timeout", 10.0)) as c:
            return await fn(c)

    try:
        return asyncio.run(go())
    except KvError as e:
        fail(f"{type(e).__name__}: {e}")
        raise  # unreachable: fail exits


def _kv_dict(kv: KeyValue) -> dict[str, Any]:
    return {
        "key": to_text(kv.key),
        "value": to_text(kv.value),
        "create_revision": kv.create_revision,
        "mod_revision": kv.mod_revision,
        "version": kv.version,
        "lease": f"{kv.lease:x}" if kv.lease else 0,
    }


def _lease_id(text: str) -> int:
    try:
        return int(text, 16)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a hexadecimal lease id") from None


@click.group()
@click.option("--timeout", default=10.0, show_default=True, help="seconds per request")
@click.pass_context
def kv(ctx: click.Context, timeout: float) -> None:
    """Read and write keys, watch them, manage leases."""
    ctx.obj["timeout"] = timeout


@kv.command()
@click.argument("key")
@click.argument("value")
@click.option("--lease", default=None, help="attach to this lease (hex id)")
@click.pass_context
def put(ctx: click.Context, key: str, value: str, lease: str | None) -> None:
    """Set KEY to VALUE."""
    lease_id = _lease_id(lease) if lease else 0
    res = _run(ctx, lambda c: c.put(key, value, lease=lease_id))
    click.echo(f"OK (revision {res.header_revision})")


@kv.command()
@click.argument("key")
@click.option("--prefix", is_flag=True, help="every key starting with KEY")
@click.option("--rev", default=0, help="read at this revision")
@click.option("--limit", default=0, help="at most this many keys")
@click.option("--keys-only", is_flag=True)
@click.option("-o", "--output", type=click.Choice(["simple", "json", "yaml", "table"]),
              default="simple", show_default=True)
@click.pass_context
def get(ctx: click.Context, key: str, prefix: bool, rev: int, limit: int, keys_only: bool,
        output: str) -> None:
    """Print KEY (or every key with the prefix KEY)."""
    res = _run(ctx, lambda c: c.range(key, prefix=prefix, revision=rev, limit=limit,
                                      keys_only=keys_only))
    if output in ("json", "yaml"):
        click.echo(render({"header": {"revision": res.header_revision}, "count": res.count,
                           "more": res.more, "kvs": [_kv_dict(k) for k in res.kvs]}, output)
                   .rstrip())
    elif output == "table":
        print_table(["KEY", "VALUE", "CREATE", "MOD", "VERSION", "LEASE"],
                    [[to_text(k.key), to_text(k.value), k.create_revision, k.mod_revision,
                      k.version, f"{k.lease:x}" if k.lease else "-"] for k in res.kvs])
    else:
        for k in res.kvs:
            click.echo(to_text(k.key))
            if not keys_only:
                click.echo(to_text(k.value))
    if not res.kvs and not prefix:
        raise SystemExit(1)


@kv.command(name="del")
@click.argument("key")
@click.option("--prefix", is_flag=True)
@click.pass_context
def delete(ctx: click.Context, key: str, prefix: bool) -> None:
    """Delete KEY (or every key with the prefix KEY); prints how many went."""
    res = _run(ctx, lambda c: c.delete(key, prefix=prefix))
    click.echo(str(res.deleted))


@kv.command()
@click.argument("key")
@click.option("--prefix", is_flag=True)
@click.option("--rev", default=0, help="start at this revision (history first)")
@click.option("--prev-kv", is_flag=True, help="show the previous value of each change")
@click.pass_context
def watch(ctx: click.Context, key: str, prefix: bool, rev: int, prev_kv: bool) -> None:
    """Print changes to KEY (or the prefix KEY) until interrupted."""

    async def go(c: kvstore.Client) -> None:
        stream = await c.watch(key, prefix=prefix, start_revision=rev, prev_kv=prev_kv)
        async for resp in stream:
            for ev in resp.events:
                click.echo("PUT" if ev.type == EventType.PUT else "DELETE")
                click.echo(to_text(ev.kv.key))
                if ev.type == EventType.PUT:
                    click.echo(to_text(ev.kv.value))
                if prev_kv and ev.prev_kv is not None:
                    click.echo(f"(previous: {to_text(ev.prev_kv.value)})")
            sys.stdout.flush()
            if resp.canceled:
                fail(f"watch cancelled (compact revision {resp.compact_revision})")

    try:
        _run(ctx, go)
    except KeyboardInterrupt:
        pass


def _describe(r: Response) -> list[str]:
    from kvstore.mvcc.types import DeleteRangeResult, PutResult, RangeResult

    if isinstance(r, PutResult):
        return ["OK"]
    if isinstance(r, DeleteRangeResult):
        return [str(r.deleted)]
    if isinstance(r, RangeResult):
        out = []
        for k in r.kvs:
            out += [to_text(k.key), to_text(k.value)]
        return out
    if isinstance(r, TxnResult):
        return ["SUCCESS" if r.succeeded else "FAILURE"] + [x for s in r.responses for x in _describe(s)]
    return [str(r)]


@kv.command()
@click.option("-i", "--interactive", is_flag=True, help="prompt for each block")
@click.pass_context
def txn(ctx: click.Context, interactive: bool) -> None:
    """Run a transaction read from stdin: compares, blank line, success ops, blank, failure ops."""
    if interactive:
        click.echo("compares:", err=True)
    lines = sys.stdin.readlines()
    try:
        cmps, success, failure = parse_txn(lines)
    except KvError as e:
        fail(str(e))
        return
    res = _run(ctx, lambda c: c.txn(cmps, success, failure))
    for line in _describe(res):
        click.echo(line)


@kv.command()
@click.argument("revision", type=int)
@click.pass_context
def compact(ctx: click.Context, revision: int) -> None:
    """Drop history older than REVISION."""
    res = _run(ctx, lambda c: c.compact(revision))
    click.echo(f"compacted revision {res.compact_revision}")


@kv.group()
def lease() -> None:
    """Grant, revoke, renew and list leases (ids are hexadecimal, like etcdctl's)."""


@lease.command()
@click.argument("ttl", type=int)
@click.pass_context
def grant(ctx: click.Context, ttl: int) -> None:
    """Grant a lease of TTL seconds."""
    res = _run(ctx, lambda c: c.lease_grant(ttl))
    click.echo(f"lease {res.id:x} granted with TTL({res.ttl}s)")


@lease.command()
@click.argument("lease_id")
@click.pass_context
def revoke(ctx: click.Context, lease_id: str) -> None:
    """Revoke a lease and delete its keys."""
    lid = _lease_id(lease_id)
    res = _run(ctx, lambda c: c.lease_revoke(lid))
    click.echo(f"lease {lid:x} revoked ({res.deleted} keys deleted)")


@lease.command()
@click.argument("lease_id")
@click.option("--once", is_flag=True, help="renew once and exit")
@click.pass_context
def keepalive(ctx: click.Context, lease_id: str, once: bool) -> None:
    """Keep a lease alive (renewing at a third of its TTL) until interrupted."""
    lid = _lease_id(lease_id)

    async def go(c: kvstore.Client) -> None:
        while True:
            ttl = await c.lease_keepalive(lid)
            click.echo(f"lease {lid:x} keepalived with TTL({ttl})")
            if once:
                return
            await asyncio.sleep(max(0.5, ttl / 3))

    try:
        _run(ctx, go)
    except KeyboardInterrupt:
        pass


@lease.command(name="list")
@click.pass_context
def list_(ctx: click.Context) -> None:
    """List live leases."""
    ids = _run(ctx, lambda c: c.lease_list())
    click.echo(f"found {len(ids)} leases")
    for i in ids:
        click.echo(f"{i:x}")


@lease.command()
@click.argument("lease_id")
@click.option("--keys", is_flag=True, help="also list the attached keys")
@click.pass_context
def timetolive(ctx: click.Context, lease_id: str, keys: bool) -> None:
    """Show a lease's remaining TTL."""
    lid = _lease_id(lease_id)
    st = _run(ctx, lambda c: c.lease_time_to_live(lid, keys=keys))
    line = f"lease {lid:x} granted with TTL({st.granted_ttl}s), remaining({st.ttl}s)"
    if keys:
        line += ", attached keys([" + " ".join(to_text(k) for k in st.keys) + "])"
    click.echo(line)


def register(group: click.Group) -> None:
    group.add_command(kv)

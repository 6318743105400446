"""How the object commands reach the cluster: open it, hand over a ``Clientset``, report errors.

Every object command (``get``, ``apply``, ``rollout``...) is an async
function of a ``Clientset`` run by ``run_api``. By default the Clientset
talks to the cluster named by ``--endpoints`` / ``STEER_ENDPOINTS`` or the
cluster file under ``--data-dir``, like ``steer kv``. A caller may instead
put an ``Opener`` under ``ctx.obj["api_opener"]``: an async context manager
factory yielding the Clientset to use (an embedded store with a fake wall
clock, in tests).

Errors are reported as kubectl reports them, on stderr with exit code 1:
``Error from server (NotFound): deployments.apps "x" not found`` for the
object API's errors, ``error: ...`` for everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import IO, Any, NoReturn, TypeVar

import click

import kvstore
from controllers.api import ApiError, BadRequest, Clientset, Kind
from kvstore.errors import KvError
from runtime.clusterfile import endpoints_from_env_or_file

__all__ = ["CommandError", "Opener", "api_error", "fail", "lookup_kind", "run_api"]

T = TypeVar("T")

Opener = Callable[[], AbstractAsyncContextManager[Clientset]]
"""Opens the cluster for one command and yields its Clientset."""


class CommandError(click.ClickException):
    """A failure to report as ``error: <message>`` (kubectl's client-side errors), exit code 1."""

    exit_code = 1

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.message}", err=file is None, file=file)


def fail(message: str) -> NoReturn:
    """Stop the command with ``error: message`` on stderr and exit code 1."""
    raise CommandError(message)


def api_error(err: ApiError) -> str:
    """The line kubectl prints for an error the API server returned."""
    return f"Error from server ({err.reason}): {err.message}"


def lookup_kind(api: Clientset, name: str) -> Kind:
    """The kind called ``name``, or ``error: the server doesn't have a resource type``."""
    try:
        return api.registry.lookup(name)
    except BadRequest as e:
        fail(e.message)


def _remote_opener(ctx: click.Context) -> Opener:
    obj = ctx.obj if isinstance(ctx.obj, dict) else {}

    @contextlib.asynccontextmanager
    async def open_remote() -> AsyncIterator[Clientset]:
        eps = endpoints_from_env_or_file(obj.get("endpoints"), obj.get("data_dir", ".steer"))
        if not eps:
            fail("no cluster found: run `steer up --detach` here, or pass --endpoints")
        async with kvstore.connect(eps, timeout=float(obj.get("timeout", 10.0))) as client:
            yield Clientset(client)

    return open_remote


def run_api(ctx: click.Context, fn: Callable[[Clientset], Awaitable[T]]) -> T:
    """Run ``fn`` with a Clientset of the cluster; report its errors and exit 1 on one."""
    obj = ctx.obj if isinstance(ctx.obj, dict) else {}
    opener: Opener = obj.get("api_opener") or _remote_opener(ctx)

    async def go() -> T:
        async with opener() as api:
            return await fn(api)

    try:
        return asyncio.run(go())
    except ApiError as e:
        if isinstance(e, BadRequest) and e.message.startswith("the server doesn't have"):
            click.echo(f"error: {e.message}", err=True)
        else:
            click.echo(api_error(e), err=True)
    except CommandError as e:
        e.show()
    except KvError as e:
        click.echo(f"error: {type(e).__name__}: {e}", err=True)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    raise SystemExit(1)

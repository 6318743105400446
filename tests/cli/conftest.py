"""Fixtures: the object commands run with CliRunner against an embedded store and a fake clock.

Every command invocation opens the store in ``tmp_path`` afresh (as a
command run against a cluster would connect afresh), with a ``FakeClock``
for the wall clock, so creation times and ages are reproducible.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, TypeVar

import click
import pytest
from click.testing import CliRunner, Result

import kvstore
from controllers.api import Clientset
from kvstore.clock import FakeClock
from kvstore.node import NodeOptions
from runtime.cli.kubectl import COMMANDS

T = TypeVar("T")

START = 1_700_000_000.0  # 2023-11-14T22:13:20Z
OPTIONS = NodeOptions(tick_interval=0.01)


class Env:
    """A store directory, a wall clock, and ways to run commands or code against them."""

    def __init__(self, data_dir: Path, clock: FakeClock) -> None:
        self.data_dir = str(data_dir)
        self.clock = clock
        # Extra async context managers entered around each command (e.g. a fake kubelet).
        self.around: list[Callable[[], AbstractAsyncContextManager[Any]]] = []
        # Coroutines run beside each command with its Clientset (a stand-in kubelet or
        # controller acting while the command waits), cancelled when the command ends.
        self.beside: list[Callable[[Clientset], Awaitable[None]]] = []
        self.group = click.Group("steer", commands=list(COMMANDS))

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[Clientset]:
        async with contextlib.AsyncExitStack() as stack:
            kv = await stack.enter_async_context(kvstore.open(self.data_dir, options=OPTIONS))
            for make in self.around:
                await stack.enter_async_context(make())
            yield Clientset(kv, clock=self.clock, rng=random.Random(7))

    @contextlib.asynccontextmanager
    async def _open_command(self) -> AsyncIterator[Clientset]:
        async with self.open() as api:
            tasks = [asyncio.ensure_future(fn(api)) for fn in self.beside]
            try:
                yield api
            finally:
                for task in tasks:
                    task.cancel()
                for result in await asyncio.gather(*tasks, return_exceptions=True):
                    if isinstance(result, Exception):
                        raise result

    def run(self, fn: Callable[[Clientset], Awaitable[T]]) -> T:
        """Run ``fn`` with a Clientset of the store (to seed or inspect objects)."""

        async def go() -> T:
            async with self.open() as api:
                return await fn(api)

        return asyncio.run(go())

    def invoke(self, *args: str, input: str | None = None) -> Result:
        """Run ``steer ARGS`` (stdout and stderr kept apart)."""
        return CliRunner().invoke(self.group, list(args), input=input,
                                  obj={"api_opener": self._open_command}, catch_exceptions=False)


@pytest.fixture(autouse=True)
def quiet_store() -> Iterator[None]:
    """The store's routine warnings would land in the captured stderr of commands."""
    logger = logging.getLogger("kvstore")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path / "store", FakeClock(START))

"""The Raft core is pure: no I/O, no clock, no threads, no global randomness.

Every module of ``kvstore.raft`` is parsed with ``ast`` and checked:

- it imports only the standard library, ``kvstore.raft`` and ``kvstore.errors``;
- none of the imported standard modules does I/O, concurrency or time;
- ``random`` is used only as ``random.Random`` (a type, or an injected
  instance's constructor), never through its module-level functions;
- it never calls ``open``, ``print``, ``input``, ``exec`` or ``eval``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import kvstore.raft

RAFT_DIR = Path(kvstore.raft.__file__).parent
MODULES = sorted(RAFT_DIR.glob("*.py"))

FORBIDDEN = frozenset(
    {
        "_thread",
        "asyncio",
        "concurrent",
        "datetime",
        "fcntl",
        "glob",
        "http",
        "io",
        "mmap",
        "multiprocessing",
        "os",
        "pathlib",
        "secrets",
        "select",
        "selectors",
        "shutil",
        "signal",
        "socket",
        "sqlite3",
        "ssl",
        "subprocess",
        "sys",
        "tempfile",
        "threading",
        "time",
        "urllib",
        "uuid",
    }
)
ALLOWED_PROJECT = ("kvstore.raft", "kvstore.errors")
FORBIDDEN_CALLS = frozenset({"open", "print", "input", "exec", "eval", "breakpoint"})


def _check_module_name(name: str, where: str) -> list[str]:
    top = name.split(".")[0]
    if top == "kvstore":
        if name == "kvstore" or not any(
            name == p or name.startswith(p + ".") for p in ALLOWED_PROJECT
        ):
            return [f"{where}: imports {name} (only kvstore.raft and kvstore.errors allowed)"]
        return []
    if top not in sys.stdlib_module_names:
        return [f"{where}: imports {name}, which is not in the standard library"]
    if top in FORBIDDEN:
        return [f"{where}: imports {name} (I/O, time or concurrency)"]
    return []


def violations(source: str, module: str) -> list[str]:
    """Every purity rule ``source`` (the text of ``module``) breaks."""
    tree = ast.parse(source)
    found: list[str] = []
    random_names: set[str] = set()
    for node in ast.walk(tree):
        where = f"{module}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                found += _check_module_name(alias.name, where)
                if alias.name == "random":
                    random_names.add(alias.asname or "random")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.rsplit(".", node.level)[0]
                name = f"{package}.{node.module}" if node.module else package
            else:
                name = node.module or ""
            found += _check_module_name(name, where)
            if name == "random":
                for alias in node.names:
                    if alias.name != "Random":
                        found.append(f"{where}: imports random.{alias.name}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in FORBIDDEN_CALLS:
                found.append(f"{where}: calls {node.func.id}()")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in random_names
            and node.attr != "Random"
        ):
            found.append(f"{module}:{node.lineno}: uses the global random.{node.attr}")
    return found


def test_the_core_has_modules() -> None:
    names = {p.stem for p in MODULES}
    assert {"core", "rawnode", "log", "storage", "messages"} <= names


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_module_is_pure(path: Path) -> None:
    module = f"kvstore.raft.{path.stem}" if path.stem != "__init__" else "kvstore.raft"
    assert violations(path.read_text(), module) == []


@pytest.mark.parametrize(
    "source, expected",
    [
        ("import asyncio", "imports asyncio"),
        ("import os.path", "imports os.path"),
        ("from time import monotonic", "imports time"),
        ("import threading as t", "imports threading"),
        ("from socket import socket", "imports socket"),
        ("import msgpack", "not in the standard library"),
        ("from kvstore.storage import wal", "imports kvstore.storage"),
        ("from kvstore.clock import Clock", "imports kvstore.clock"),
        ("from ..storage import wal", "imports kvstore.storage"),
        ("import random\nx = random.random()", "global random.random"),
        ("import random as r\nr.shuffle([])", "global random.shuffle"),
        ("import random\nrandom.seed(1)", "global random.seed"),
        ("from random import randint", "imports random.randint"),
        ("open('f')", "calls open()"),
        ("print(1)", "calls print()"),
    ],
)
def test_violations_are_caught(source: str, expected: str) -> None:
    found = violations(source, "kvstore.raft.sample")
    assert any(expected in v for v in found), found


@pytest.mark.parametrize(
    "source",
    [
        "import random\ndef f(rng: random.Random) -> None: rng.random()",
        "import random\nrng = random.Random(7)",
        "from random import Random",
        "from kvstore.errors import InvariantError",
        "from kvstore.raft.messages import Entry",
        "from .messages import Entry",
        "import enum, logging, dataclasses, collections.abc",
    ],
)
def test_allowed_code_passes(source: str) -> None:
    assert violations(source, "kvstore.raft.sample") == []

"""How ``steer`` prints: aligned tables, JSON and YAML, errors like kubectl's."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click
import yaml

__all__ = ["fail", "print_table", "render", "to_text"]


def to_text(b: bytes) -> str:
    """Bytes as text when they are UTF-8, else as a Python bytes literal."""
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return repr(b)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Columns left-aligned, three spaces apart, headers in capitals (kubectl's tabwriter)."""
    cells = [[str(h).upper() for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        line = "   ".join(c.ljust(w) for c, w in zip(row, widths))
        click.echo(line.rstrip())


def render(obj: Any, output: str) -> str:
    """``obj`` as JSON or YAML text."""
    if output == "json":
        return json.dumps(obj, indent=2, sort_keys=False)
    if output == "yaml":
        return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False)
    raise click.BadParameter(f"unknown output format {output!r}")


def fail(message: str, code: int = 1) -> None:
    """Print ``error: message`` to stderr and exit non-zero, as kubectl does."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)

"""Data-driven test files: commands in, expected text out.

A file is a sequence of blocks separated by blank lines; lines starting with
``#`` outside a block are comments. A block is::

    command arg1 key=value key=(1,2) (3,4)
    optional input lines
    ----
    expected output, up to the next blank line

When the output itself holds blank lines, it sits between two double
separators::

    command
    ----
    ----
    output

    with a blank line
    ----
    ----

``run_file`` hands each block to a handler and compares what it returns with
the expected text. With ``rewrite=True`` it writes the actual outputs back into
the file instead, so a scenario can be regenerated and reviewed as a diff.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CmdArg", "DataDrivenError", "Mismatch", "TestData", "parse", "run_file"]

SEP = "----"


class DataDrivenError(Exception):
    """The test file itself is malformed."""


class Mismatch(AssertionError):
    """A block's actual output differs from its expected output."""


@dataclass(frozen=True, slots=True)
class CmdArg:
    """``key``, ``key=v`` or ``key=(v1,v2)``; a bare ``(v1,v2)`` has an empty key."""

    key: str
    vals: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TestData:
    """One block: where it starts, its command, arguments, input and expected output."""

    __test__ = False  # not a pytest test class

    pos: str
    cmd: str
    args: tuple[CmdArg, ...]
    input: str
    expected: str
    # The lines (0-based, end exclusive) that hold the expected output after
    # the first separator, closing separators included: what a rewrite replaces.
    out_start: int
    out_end: int

    def arg(self, key: str) -> CmdArg | None:
        return next((a for a in self.args if a.key == key), None)


def _tokens(line: str, where: str) -> list[str]:
    """Split on blanks, keeping ``(...)`` groups whole."""
    out: list[str] = []
    cur, depth = "", 0
    for ch in line:
        if ch.isspace() and depth == 0:
            if cur:
                out.append(cur)
            cur = ""
            continue
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            raise DataDrivenError(f"{where}: unbalanced ')'")
        cur += ch
    if depth:
        raise DataDrivenError(f"{where}: unbalanced '('")
    if cur:
        out.append(cur)
    return out


def _arg(tok: str) -> CmdArg:
    key, eq, val = tok.partition("=")
    if not eq and key.startswith("("):
        key, val = "", key
    if val.startswith("(") and val.endswith(")"):
        inner = val[1:-1].strip()
        return CmdArg(key, tuple(v.strip() for v in inner.split(",")) if inner else ())
    return CmdArg(key, (val,) if eq else ())


def parse(text: str, name: str) -> list[TestData]:
    """Parse a whole file; ``name`` is used in positions (``name:line``)."""
    lines = text.split("\n")
    blocks: list[TestData] = []
    i = 0
    while i < len(lines):
        if not lines[i].strip() or lines[i].startswith("#"):
            i += 1
            continue
        pos = f"{name}:{i + 1}"
        toks = _tokens(lines[i], pos)
        j = i + 1
        while j < len(lines) and lines[j] != SEP and lines[j].strip():
            j += 1
        if j == len(lines) or lines[j] != SEP:
            raise DataDrivenError(f"{pos}: missing '{SEP}' after the command and its input")
        inp = "\n".join(lines[i + 1 : j])
        k = j + 1
        if k < len(lines) and lines[k] == SEP:
            start = k + 1
            end = start
            while end + 1 < len(lines) and not (lines[end] == SEP and lines[end + 1] == SEP):
                end += 1
            if end + 1 >= len(lines):
                raise DataDrivenError(f"{pos}: missing closing '{SEP}' '{SEP}'")
            nxt = end + 2
        else:
            start = end = k
            while end < len(lines) and lines[end].strip():
                end += 1
            nxt = end
        out = "".join(ln + "\n" for ln in lines[start:end])
        blocks.append(
            TestData(pos, toks[0], tuple(_arg(t) for t in toks[1:]), inp, out, j + 1, nxt)
        )
        i = nxt
    return blocks


def _render(output: str) -> list[str]:
    """The lines that stand for ``output`` after the first separator."""
    body = output if output.endswith("\n") or not output else output + "\n"
    lines = body.split("\n")[:-1]
    if any(not ln.strip() for ln in lines):
        return [SEP, *lines, SEP, SEP]
    return lines


def run_file(path: Path, handler: Callable[[TestData], str], *, rewrite: bool = False) -> None:
    """Run every block of ``path`` through ``handler``.

    Raises ``Mismatch`` (with a unified diff naming file and line) at the first
    block whose output differs, unless ``rewrite`` is set: then the file is
    rewritten with the actual outputs.
    """
    __tracebackhide__ = True  # pytest shows the diff, not this frame
    text = path.read_text()
    lines = text.split("\n")
    replaced: list[tuple[int, int, list[str]]] = []
    for td in parse(text, str(path)):
        actual = handler(td)
        if actual and not actual.endswith("\n"):
            actual += "\n"
        if rewrite:
            replaced.append((td.out_start, td.out_end, _render(actual)))
        elif actual != td.expected:
            diff = difflib.unified_diff(
                td.expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=f"{td.pos} (expected)",
                tofile=f"{td.pos} (actual)",
            )
            raise Mismatch(f"\n{td.pos}: output of '{td.cmd}' differs\n" + "".join(diff))
    if rewrite:
        for start, end, new in reversed(replaced):
            lines[start:end] = new
        path.write_text("\n".join(lines))

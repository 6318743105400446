"""The data-driven file format: parsing, comparing, rewriting."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.datadriven import (
    CmdArg,
    DataDrivenError,
    Mismatch,
    TestData,
    parse,
    run_file,
)

SAMPLE = """\
# a comment
add-nodes 3 voters=(1,2,3) index=10 pre-vote=true
----
ok

partition (1) (2, 3) verbose
line one
line two
----
----
first

after a blank line
----
----

empty
----

"""


def test_parse_commands_args_input_and_outputs() -> None:
    a, b, c = parse(SAMPLE, "f.txt")
    assert (a.pos, a.cmd, a.input, a.expected) == ("f.txt:2", "add-nodes", "", "ok\n")
    assert a.args == (
        CmdArg("3"),
        CmdArg("voters", ("1", "2", "3")),
        CmdArg("index", ("10",)),
        CmdArg("pre-vote", ("true",)),
    )
    assert a.arg("index") == CmdArg("index", ("10",)) and a.arg("missing") is None
    assert b.args == (CmdArg("", ("1",)), CmdArg("", ("2", "3")), CmdArg("verbose"))
    assert b.input == "line one\nline two"
    assert b.expected == "first\n\nafter a blank line\n"
    assert (c.cmd, c.expected) == ("empty", "")


@pytest.mark.parametrize(
    "text, message",
    [
        ("cmd\nno separator\n", "missing"),
        ("cmd\n\n----\n", "missing"),
        ("cmd\nno separator", "missing"),
        ("cmd (1,2\n----\n", "unbalanced"),
        ("cmd 1)\n----\n", "unbalanced"),
        ("cmd\n----\n----\nnever closed\n", "closing"),
    ],
)
def test_malformed_files(text: str, message: str) -> None:
    with pytest.raises(DataDrivenError, match=message):
        parse(text, "bad.txt")


def echo(td: TestData) -> str:
    return f"{td.cmd} {len(td.args)}\n"


def test_mismatch_names_file_and_line_with_a_diff(tmp_path: Path) -> None:
    p = tmp_path / "t.txt"
    p.write_text("hello a b\n----\nhello 2\n\nbye\n----\nwrong\n")
    with pytest.raises(Mismatch) as info:
        run_file(p, echo)
    text = str(info.value)
    assert f"{p}:5: output of 'bye' differs" in text
    assert "-wrong" in text and "+bye 0" in text


def test_matching_file_passes(tmp_path: Path) -> None:
    p = tmp_path / "t.txt"
    p.write_text("hello a b\n----\nhello 2\n")
    run_file(p, echo)


def test_rewrite_replaces_outputs_and_keeps_the_rest(tmp_path: Path) -> None:
    p = tmp_path / "t.txt"
    p.write_text(SAMPLE)
    outputs = {"add-nodes": "one\ntwo\n", "partition": "single\n", "empty": "x\n\ny\n"}
    run_file(p, lambda td: outputs[td.cmd], rewrite=True)
    text = p.read_text()
    assert text == (
        "# a comment\n"
        "add-nodes 3 voters=(1,2,3) index=10 pre-vote=true\n----\none\ntwo\n\n"
        "partition (1) (2, 3) verbose\nline one\nline two\n----\nsingle\n\n"
        "empty\n----\n----\nx\n\ny\n----\n----\n\n"
    )
    # The rewritten file passes, and rewriting again changes nothing.
    run_file(p, lambda td: outputs[td.cmd])
    run_file(p, lambda td: outputs[td.cmd], rewrite=True)
    assert p.read_text() == text


def test_rewrite_from_empty_outputs(tmp_path: Path) -> None:
    p = tmp_path / "t.txt"
    p.write_text("a\n----\n\nb\n----\n")
    run_file(p, lambda td: td.cmd * 2, rewrite=True)
    assert p.read_text() == "a\n----\naa\n\nb\n----\nbb\n"

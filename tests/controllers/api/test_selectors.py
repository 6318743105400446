"""Label and field selectors: parsing, matching, and conversion between forms."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controllers.api import BadRequest, FieldSelector, LabelSelector
from controllers.api.selectors import Operator, Requirement

PARSE = [
    ("", ""),
    ("app=nginx", "app=nginx"),
    ("app==nginx", "app==nginx"),
    ("tier!=db", "tier!=db"),
    ("env in (b, a)", "env in (a,b)"),
    ("env notin (x)", "env notin (x)"),
    ("canary", "canary"),
    ("!legacy", "!legacy"),
    ("  app = nginx ,  !legacy ", "app=nginx,!legacy"),
    ("z=1,a=2,m in (q,p)", "a=2,m in (p,q),z=1"),
    ("example.com/app=x,app=", "app=,example.com/app=x"),
]


@pytest.mark.parametrize("text,canonical", PARSE)
def test_parse_and_print(text: str, canonical: str) -> None:
    sel = LabelSelector.parse(text)
    assert str(sel) == canonical
    assert LabelSelector.parse(str(sel)) == sel


MATCH: list[tuple[str, dict[str, str], bool]] = [
    ("", {}, True),
    ("app=nginx", {"app": "nginx"}, True),
    ("app=nginx", {"app": "apache"}, False),
    ("app=nginx", {}, False),
    ("app==nginx", {"app": "nginx"}, True),
    ("tier!=db", {"tier": "web"}, True),
    ("tier!=db", {}, True),
    ("tier!=db", {"tier": "db"}, False),
    ("env in (a,b)", {"env": "b"}, True),
    ("env in (a,b)", {"env": "c"}, False),
    ("env in (a,b)", {}, False),
    ("env notin (a,b)", {"env": "c"}, True),
    ("env notin (a,b)", {}, True),
    ("env notin (a,b)", {"env": "a"}, False),
    ("canary", {"canary": ""}, True),
    ("canary", {}, False),
    ("!canary", {}, True),
    ("!canary", {"canary": "yes"}, False),
    ("app=nginx,tier!=db,env in (a,b),!canary", {"app": "nginx", "env": "a"}, True),
    ("app=nginx,tier!=db,env in (a,b),!canary", {"app": "nginx", "env": "a", "canary": "1"}, False),
    ("app=", {"app": ""}, True),
    ("app=", {"app": "x"}, False),
]


@pytest.mark.parametrize("text,labels,expected", MATCH)
def test_match(text: str, labels: dict[str, str], expected: bool) -> None:
    sel = LabelSelector.parse(text)
    assert sel.matches(labels) is expected
    # The dict form says the same thing.
    assert LabelSelector.from_dict(sel.to_dict()).matches(labels) is expected


@pytest.mark.parametrize("text", [
    "app=a=b", "in (a)", "env in a", "env in (a", "env in ()", "!", "a,,b", "a b", "=x",
    "Bad Key=x", "app=-bad-", "a/b/c=x", "env notin", "app!", "(a)",
])
def test_parse_errors(text: str) -> None:
    with pytest.raises(BadRequest):
        LabelSelector.parse(text)


def test_dict_forms() -> None:
    sel = LabelSelector.from_dict({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "tier", "operator": "NotIn", "values": ["db"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "team", "operator": "Exists"},
        ],
    })
    assert str(sel) == "app=web,!canary,env in (dev,prod),team,tier notin (db)"
    assert sel.matches({"app": "web", "env": "dev", "team": "a"})
    assert not sel.matches({"app": "web", "env": "dev"})
    assert sel.to_dict() == {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "env", "operator": "In", "values": ["dev", "prod"]},
            {"key": "team", "operator": "Exists"},
            {"key": "tier", "operator": "NotIn", "values": ["db"]},
        ],
    }
    assert LabelSelector.parse("a!=1").to_dict() == {
        "matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}
    # Two equalities on one key keep both conditions.
    both = LabelSelector.parse("a=1,a=2")
    assert LabelSelector.from_dict(both.to_dict()) == LabelSelector.parse("a=1,a in (2)")
    assert not both.matches({"a": "1"})


def test_empty_and_missing_selectors() -> None:
    assert LabelSelector.from_dict({}).matches({"any": "thing"})
    assert LabelSelector.from_dict({}).is_empty()
    nothing = LabelSelector.from_dict(None)
    assert not nothing.matches({}) and not nothing.is_empty()
    with pytest.raises(BadRequest):
        nothing.to_dict()
    assert LabelSelector.from_set({"b": "2", "a": "1"}) == LabelSelector.parse("a=1,b=2")


@pytest.mark.parametrize("bad", [
    {"matchExpressions": [{"key": "a", "operator": "Near", "values": ["x"]}]},
    {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
    {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
    {"matchLabels": {"a": "not valid"}},
    "app=web",
])
def test_bad_dict_selectors(bad: Any) -> None:
    with pytest.raises(BadRequest):
        LabelSelector.from_dict(bad)


def test_requirement_checks_value_counts() -> None:
    with pytest.raises(BadRequest):
        Requirement.new("a", Operator.EQUALS, ["x", "y"])
    assert Requirement.new("a", Operator.IN, ["y", "x", "y"]).values == ("x", "y")


_label = st.text(alphabet="abxy12", min_size=1, max_size=3)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(_label, _label, max_size=4), st.dictionaries(_label, _label, max_size=4))
def test_from_set_matches_superset_only(required: dict[str, str], labels: dict[str, str]) -> None:
    sel = LabelSelector.from_set(required)
    assert sel.matches(labels) is all(labels.get(k) == v for k, v in required.items())
    assert LabelSelector.parse(str(sel)) == sel


OBJ = {"metadata": {"name": "web-1", "namespace": "prod"},
       "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}}


@pytest.mark.parametrize("text,expected", [
    ("", True),
    ("metadata.name=web-1", True),
    ("metadata.name==web-1", True),
    ("metadata.name!=web-1", False),
    ("metadata.namespace=prod,status.phase!=Failed", True),
    ("spec.nodeName=n2", False),
    ("spec.nodeName=", False),
    ("status.phase=Running, metadata.name = web-1", True),
])
def test_field_selector_match(text: str, expected: bool) -> None:
    assert FieldSelector.parse(text).matches(OBJ) is expected


def test_field_selector_missing_field_reads_empty_and_escapes() -> None:
    assert FieldSelector.parse("spec.nodeName=").matches({"metadata": {"name": "x"}})
    assert FieldSelector.parse("spec.nodeName!=").matches(OBJ)
    sel = FieldSelector.parse(r"metadata.name=a\,b\=c")
    assert sel.matches({"metadata": {"name": "a,b=c"}})
    assert FieldSelector.parse(str(sel)) == sel


@pytest.mark.parametrize("text", ["spec.replicas=3", "metadata.name", "metadata.name=a=b",
                                  r"metadata.name=a\x", "=x"])
def test_field_selector_errors(text: str) -> None:
    with pytest.raises(BadRequest):
        FieldSelector.parse(text)

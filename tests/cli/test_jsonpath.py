"""The JSONPath subset ``wait --for=jsonpath`` reads."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.cli.jsonpath import JsonPathError, format_value, parse

POD: dict[str, Any] = {
    "metadata": {"name": "web-1", "annotations": {"kubernetes.io/change-cause": "x"}},
    "spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]},
    "status": {"phase": "Running", "restarts": 3, "ready": True, "conditions": [
        {"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "False"}]},
}


@pytest.mark.parametrize(("text", "found"), [
    ("{.status.phase}", ["Running"]),
    ("{status.phase}", ["Running"]),
    (".status.phase", ["Running"]),
    ("status.phase", ["Running"]),
    ("{.status.missing}", []),
    ("{.spec.containers[0].name}", ["a"]),
    ("{.spec.containers[-1].image}", ["2"]),
    ("{.spec.containers[5].image}", []),
    ("{.spec.containers[*].name}", ["a", "b"]),
    ("{.status.conditions[?(@.type==\"Ready\")].status}", ["True"]),
    ("{.status.conditions[?(@.status != 'True')].type}", ["Initialized"]),
    ("{.status.conditions[?(@.reason)].type}", []),
    ("{.metadata.annotations.kubernetes\\.io/change-cause}", ["x"]),
    ("{.metadata.annotations['kubernetes.io/change-cause']}", ["x"]),
    ("{['status']['restarts']}", [3]),
    ("{.metadata.*}", ["web-1", {"kubernetes.io/change-cause": "x"}]),
])
def test_find(text: str, found: list[Any]) -> None:
    assert parse(text).find(POD) == found


def test_filters_compare_numbers_and_booleans_by_value() -> None:
    items = {"a": [{"n": 1, "b": True, "s": "1"}, {"n": 2.0, "b": False, "s": "2"}]}
    assert parse("{.a[?(@.n==2)].s}").find(items) == ["2"]
    assert parse("{.a[?(@.b==true)].s}").find(items) == ["1"]
    assert parse("{.a[?(@.s==1)].n}").find(items) == []


@pytest.mark.parametrize("text", ["", "{}", "{.a..b}", "{.a[1:2]}", "{.a[?(@.n>1)]}",
                                  "{.a}{.b}", "{.a[0}", "{.a.}"])
def test_rejected(text: str) -> None:
    with pytest.raises(JsonPathError):
        parse(text)


@pytest.mark.parametrize(("value", "text"), [(True, "true"), (False, "false"), (None, "<nil>"),
                                             (3, "3"), (3.0, "3"), (1.5, "1.5"), ("x", "x")])
def test_format_value(value: Any, text: str) -> None:
    assert format_value(value) == text

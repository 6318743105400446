"""Merge patch (RFC 7386) and strategic merge patch, as pure functions."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from controllers.api import BadRequest, json_patch, merge_patch, strategic_merge_patch

MERGE = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize("target,patch,expected", MERGE)
def test_merge_patch(target: Any, patch: Any, expected: Any) -> None:
    before = copy.deepcopy(target)
    assert merge_patch(target, patch) == expected
    assert target == before


def _pod(containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "spec": {"containers": containers, **spec}}


def test_strategic_merges_containers_by_name() -> None:
    target = _pod([{"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
                   {"name": "b", "image": "b:1"}])
    patch = {"spec": {"containers": [
        {"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "2"}]},
        {"name": "c", "image": "c:1"},
    ]}}
    out = strategic_merge_patch(target, patch)
    assert out["spec"]["containers"] == [
        {"name": "a", "image": "a:2", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
        {"name": "b", "image": "b:1"},
        {"name": "c", "image": "c:1"},
    ]
    # A merge patch replaces the list instead.
    assert merge_patch(target, patch)["spec"]["containers"] == patch["spec"]["containers"]


def test_strategic_ports_volumes_and_mounts_keys() -> None:
    target = _pod([{"name": "a", "image": "i", "ports": [{"containerPort": 80, "name": "http"}],
                    "volumeMounts": [{"name": "v", "mountPath": "/data", "readOnly": True}]}],
                  volumes=[{"name": "v", "emptyDir": {}}])
    patch = {"spec": {
        "containers": [{"name": "a", "ports": [{"containerPort": 80, "protocol": "TCP"},
                                               {"containerPort": 443}],
                        "volumeMounts": [{"mountPath": "/data", "readOnly": False}]}],
        "volumes": [{"name": "w", "emptyDir": {}}]}}
    out = strategic_merge_patch(target, patch)
    c = out["spec"]["containers"][0]
    assert c["ports"] == [{"containerPort": 80, "name": "http", "protocol": "TCP"},
                          {"containerPort": 443}]
    assert c["volumeMounts"] == [{"name": "v", "mountPath": "/data", "readOnly": False}]
    assert [v["name"] for v in out["spec"]["volumes"]] == ["v", "w"]


def test_strategic_service_ports_by_port_and_other_lists_replaced() -> None:
    svc = {"spec": {"ports": [{"port": 80, "name": "http"}], "externalIPs": ["1.1.1.1"]}}
    out = strategic_merge_patch(svc, {"spec": {"ports": [{"port": 80, "targetPort": 8080},
                                                         {"port": 443, "name": "https"}],
                                               "externalIPs": ["2.2.2.2"]}})
    assert out["spec"]["ports"] == [{"port": 80, "name": "http", "targetPort": 8080},
                                    {"port": 443, "name": "https"}]
    assert out["spec"]["externalIPs"] == ["2.2.2.2"]


def test_strategic_delete_and_replace_directives() -> None:
    target = _pod([{"name": "a", "image": "i"}, {"name": "b", "image": "j"}])
    out = strategic_merge_patch(target, {"spec": {"containers": [{"name": "a", "$patch": "delete"}]}})
    assert out["spec"]["containers"] == [{"name": "b", "image": "j"}]
    out = strategic_merge_patch(target, {"spec": {"containers": [
        {"$patch": "replace"}, {"name": "z", "image": "k"}]}})
    assert out["spec"]["containers"] == [{"name": "z", "image": "k"}]
    out = strategic_merge_patch({"spec": {"nodeSelector": {"a": "1", "b": "2"}}},
                                {"spec": {"nodeSelector": {"c": "3", "$patch": "replace"}}})
    assert out["spec"]["nodeSelector"] == {"c": "3"}
    out = strategic_merge_patch({"spec": {"nodeSelector": {"a": "1"}, "x": 1}},
                                {"spec": {"nodeSelector": {"$patch": "delete"}}})
    assert out["spec"] == {"x": 1}
    out = strategic_merge_patch({"spec": {"a": 1, "b": 2, "c": 3}},
                                {"spec": {"c": 4, "$retainKeys": ["a", "c"]}})
    assert out["spec"] == {"a": 1, "c": 4}
    with pytest.raises(BadRequest):
        strategic_merge_patch(target, {"spec": {"$patch": "explode"}})
    with pytest.raises(BadRequest):
        strategic_merge_patch(target, {"spec": {"containers": [{"image": "no-name"}]}})


def test_strategic_finalizers_are_a_set() -> None:
    target = {"metadata": {"finalizers": ["a.io/x", "b.io/y"]}}
    out = strategic_merge_patch(target, {"metadata": {"finalizers": ["b.io/y", "c.io/z"]}})
    assert out["metadata"]["finalizers"] == ["a.io/x", "b.io/y", "c.io/z"]
    out = strategic_merge_patch(target, {"metadata": {
        "$deleteFromPrimitiveList/finalizers": ["a.io/x"],
        "$setElementOrder/finalizers": ["b.io/y"]}})
    assert out["metadata"] == {"finalizers": ["b.io/y"]}


def test_strategic_conditions_by_type_and_nulls_delete() -> None:
    target = {"status": {"conditions": [{"type": "Ready", "status": "False"},
                                        {"type": "Available", "status": "True"}]},
              "metadata": {"labels": {"a": "1", "b": "2"}}}
    before = copy.deepcopy(target)
    out = strategic_merge_patch(target, {"status": {"conditions": [{"type": "Ready", "status": "True"}]},
                                         "metadata": {"labels": {"a": None}}})
    assert out["status"]["conditions"] == [{"type": "Ready", "status": "True"},
                                           {"type": "Available", "status": "True"}]
    assert out["metadata"]["labels"] == {"b": "2"}
    assert target == before


def test_json_patch_applies_rfc6902_operations_without_touching_the_target() -> None:
    target = {"spec": {"replicas": 1, "containers": [{"name": "a"}, {"name": "b"}]},
              "metadata": {"labels": {"app": "x"}}}
    ops = [{"op": "replace", "path": "/spec/replicas", "value": 3},
           {"op": "move", "from": "/metadata/labels/app", "path": "/metadata/labels/name"},
           {"op": "copy", "from": "/spec/containers/0", "path": "/spec/containers/-"},
           {"op": "test", "path": "/spec/replicas", "value": 3},
           {"op": "remove", "path": "/spec/containers/1"}]
    out = json_patch(target, ops)
    assert out == {"spec": {"replicas": 3, "containers": [{"name": "a"}, {"name": "a"}]},
                   "metadata": {"labels": {"name": "x"}}}
    assert target["spec"]["replicas"] == 1 and len(target["spec"]["containers"]) == 2


@pytest.mark.parametrize("ops", [
    [{"op": "test", "path": "/a", "value": 2}],
    [{"op": "remove", "path": "/missing"}],
    [{"op": "replace", "path": "/a/b/c", "value": 1}],
    [{"op": "frobnicate", "path": "/a"}],
    [{"path": "/a"}],
    {"op": "add"},
])
def test_json_patch_that_does_not_apply_is_a_bad_request(ops: object) -> None:
    with pytest.raises(BadRequest):
        json_patch({"a": 1}, ops)

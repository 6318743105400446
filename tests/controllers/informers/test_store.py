"""Key functions, the Indexer's indexes, and read-only views."""

from __future__ import annotations

import types

import pytest

from controllers.informers import (
    NAMESPACE_INDEX,
    Indexer,
    KeyFuncError,
    freeze,
    is_frozen,
    meta_namespace_key_func,
    split_meta_namespace_key,
    thaw,
)
from tests.controllers.informers.fakes import obj


def test_key_func_namespaced_and_cluster_scoped() -> None:
    assert meta_namespace_key_func(obj("a", 1)) == "default/a"
    assert meta_namespace_key_func(obj("n1", 1, namespace="")) == "n1"
    assert split_meta_namespace_key("default/a") == ("default", "a")
    assert split_meta_namespace_key("n1") == ("", "n1")
    with pytest.raises(ValueError):
        split_meta_namespace_key("a/b/c")
    with pytest.raises(KeyFuncError):
        meta_namespace_key_func({"metadata": {}})


def by_app(o: dict[str, object]) -> list[str]:
    labels = o["metadata"].get("labels", {})  # type: ignore[attr-defined]
    return [labels["app"]] if "app" in labels else []


def test_indexer_store_contract() -> None:
    idx = Indexer()
    idx.add(obj("b", 1))
    idx.add(obj("a", 2))
    idx.update(obj("a", 3))
    assert idx.list_keys() == ["default/a", "default/b"]
    assert [o["metadata"]["resourceVersion"] for o in idx.list()] == ["3", "1"]
    assert idx.get(obj("a", 0))["metadata"]["resourceVersion"] == "3"  # type: ignore[index]
    idx.delete(obj("b", 0))
    assert idx.get_by_key("default/b") is None
    idx.delete(obj("missing", 0))
    idx.replace([obj("x", 5), obj("y", 5, namespace="other")], "5")
    assert idx.list_keys() == ["default/x", "other/y"]
    assert idx.index_keys(NAMESPACE_INDEX, "default") == ["default/x"]


def test_custom_index_follows_updates_and_deletes() -> None:
    idx = Indexer(indexers={"app": by_app})
    idx.add(obj("a", 1, app="web"))
    idx.add(obj("b", 1, app="web"))
    idx.add(obj("c", 1, namespace="kube-system", app="db"))
    assert idx.index_keys("app", "web") == ["default/a", "default/b"]
    assert idx.list_index_func_values("app") == ["db", "web"]
    assert idx.list_index_func_values(NAMESPACE_INDEX) == ["default", "kube-system"]
    idx.update(obj("b", 2, app="db"))
    assert idx.index_keys("app", "web") == ["default/a"]
    assert [o["metadata"]["name"] for o in idx.by_index("app", "db")] == ["b", "c"]
    assert [o["metadata"]["name"] for o in idx.index("app", obj("q", 0, app="db"))] == ["b", "c"]
    idx.delete(obj("a", 0))
    # No empty value sets are left behind.
    assert idx.list_index_func_values("app") == ["db"]
    with pytest.raises(KeyError):
        idx.by_index("nope", "x")


def test_add_indexers_indexes_existing_objects_and_refuses_duplicates() -> None:
    idx = Indexer()
    idx.add(obj("a", 1, app="web"))
    idx.add_indexers({"app": by_app})
    assert idx.index_keys("app", "web") == ["default/a"]
    with pytest.raises(ValueError):
        idx.add_indexers({"app": by_app})
    with pytest.raises(ValueError):
        idx.add_indexers({NAMESPACE_INDEX: by_app})


def test_freeze_makes_mutation_fail_and_thaw_copies() -> None:
    o = obj("a", 1, app="web")
    o["spec"] = {"items": [{"k": 1}]}
    frozen = freeze(o)
    assert is_frozen(frozen) and isinstance(frozen, types.MappingProxyType)
    with pytest.raises(TypeError):
        frozen["metadata"]["labels"]["app"] = "other"
    with pytest.raises(TypeError):
        frozen["spec"]["items"][0]["k"] = 2
    copy = thaw(frozen)
    copy["spec"]["items"][0]["k"] = 2
    assert copy["spec"]["items"] == [{"k": 2}]
    assert o["spec"]["items"] == [{"k": 1}]
    assert frozen["spec"]["items"][0]["k"] == 1

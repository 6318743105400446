"""Every kubelet module declares a sorted ``__all__`` naming things it defines."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import runtime.kubelet


@pytest.mark.parametrize("name", sorted(
    m.name for m in pkgutil.iter_modules(runtime.kubelet.__path__)))
def test_module_all_is_sorted_and_complete(name: str) -> None:
    mod = importlib.import_module(f"runtime.kubelet.{name}")
    exported = getattr(mod, "__all__")
    assert exported == sorted(exported)
    for item in exported:
        assert hasattr(mod, item), item


def test_package_all() -> None:
    assert runtime.kubelet.__all__ == sorted(runtime.kubelet.__all__)
    for item in runtime.kubelet.__all__:
        assert hasattr(runtime.kubelet, item), item

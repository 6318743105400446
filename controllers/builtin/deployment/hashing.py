"""The pod-template-hash: one stable short name per pod template.

A Deployment keeps one ReplicaSet per pod template. That ReplicaSet is named
``<deployment>-<hash>`` and carries the hash as the ``pod-template-hash``
label on itself, on its selector and on its template, so the pods of two
templates never mix. The hash is FNV-1a (32 bits) over a canonical encoding
of the template (JSON with sorted keys), then, when the Deployment has a
``status.collisionCount``, over that count as eight little-endian bytes: a
collision with a foreign ReplicaSet of the same name is resolved by bumping
the count, which changes every later hash. The 32-bit value is written in
decimal and each digit is mapped onto a vowel-free alphabet, as Kubernetes
does, so names never spell words.

``equal_ignore_hash`` is how a Deployment recognises its ReplicaSet: the
templates are equal once the hash label is removed from both.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

from controllers.informers.store import thaw

__all__ = [
    "POD_TEMPLATE_HASH_LABEL",
    "compute_hash",
    "equal_ignore_hash",
    "fnv1a_32",
    "template_without_hash",
]

POD_TEMPLATE_HASH_LABEL = "pod-template-hash"
"""The label naming the template a ReplicaSet (and each of its pods) was made from."""

_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"
_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def fnv1a_32(data: bytes, start: int = _FNV_OFFSET) -> int:
    """FNV-1a over ``data``, continuing from ``start`` (the offset basis by default)."""
    value = start
    for byte in data:
        value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return value


def _encoding_fallback(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"a pod template cannot hold a {type(value).__name__}")


def _canonical(template: Mapping[str, Any]) -> bytes:
    return json.dumps(thaw(template), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, default=_encoding_fallback).encode("utf-8")


def compute_hash(template: Mapping[str, Any], collision_count: int | None = None) -> str:
    """The pod-template-hash of ``template`` (as it stands) and the collision count."""
    value = fnv1a_32(_canonical(template))
    if collision_count is not None:
        value = fnv1a_32(struct.pack("<I", collision_count & 0xFFFFFFFF) + bytes(4), value)
    return "".join(_ALPHANUMS[ord(digit) % len(_ALPHANUMS)] for digit in str(value))


def template_without_hash(template: Mapping[str, Any]) -> dict[str, Any]:
    """A mutable copy of ``template`` without the hash label (and without labels left empty)."""
    copy: dict[str, Any] = thaw(template)
    meta = copy.get("metadata")
    if isinstance(meta, dict):
        labels = meta.get("labels")
        if isinstance(labels, dict):
            labels.pop(POD_TEMPLATE_HASH_LABEL, None)
            if not labels:
                del meta["labels"]
        if not meta:
            del copy["metadata"]
    return copy


def equal_ignore_hash(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two pod templates are equal once their hash labels are removed."""
    return template_without_hash(a) == template_without_hash(b)

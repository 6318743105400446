"""Reading ``-f``: objects from YAML or JSON files, a directory of them, or stdin.

``read_manifests(paths, stdin)`` returns every object in order, each with
the file it came from. A YAML file may hold several documents (``---``);
empty documents are skipped; a ``List`` (``kind: List`` or any ``...List``
with ``items``) stands for its items. A directory contributes its
``*.yaml``, ``*.yml`` and ``*.json`` files in name order (not recursing).
``-`` reads stdin. Anything that is not an object with ``apiVersion``,
``kind`` and ``metadata.name`` (or ``generateName``) is an error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

import yaml

from runtime.cli.session import fail

__all__ = ["Manifest", "read_manifests"]

_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True, slots=True)
class Manifest:
    """One object read from ``source`` (a path, or ``STDIN``)."""

    source: str
    obj: dict[str, Any]


def _files(path: str) -> list[str]:
    if path == "-":
        return ["-"]
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if n.endswith(_SUFFIXES))
        return [os.path.join(path, n) for n in names
                if os.path.isfile(os.path.join(path, n))]
    if not os.path.exists(path):
        fail(f'the path "{path}" does not exist')
    return [path]


def _documents(text: str, source: str) -> list[Any]:
    try:
        if source.endswith(".json"):
            return [json.loads(text)]
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except (yaml.YAMLError, json.JSONDecodeError) as e:
        fail(f"error parsing {source}: {e}")


def _expand(doc: Any, source: str) -> Iterable[dict[str, Any]]:
    if not isinstance(doc, dict):
        fail(f"error validating {source}: a document must be an object, not "
             f"{type(doc).__name__}")
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
        for item in doc["items"]:
            yield from _expand(item, source)
        return
    if not doc.get("apiVersion") or not kind:
        fail(f'error validating "{source}": apiVersion and kind must be set')
    m = doc.get("metadata")
    if not isinstance(m, dict) or not (m.get("name") or m.get("generateName")):
        fail(f'error validating "{source}": metadata.name must be set')
    yield doc


def read_manifests(paths: Iterable[str], stdin: IO[str] | None = None, *, verb: str = "apply"
                   ) -> list[Manifest]:
    """Every object in ``paths`` (see the module docstring); exits with an error on a bad one."""
    out: list[Manifest] = []
    for path in paths:
        for file in _files(path):
            if file == "-":
                if stdin is None:
                    fail("no standard input to read")
                text, source = stdin.read(), "STDIN"
            else:
                with open(file, encoding="utf-8") as f:
                    text, source = f.read(), file
            for doc in _documents(text, source):
                out.extend(Manifest(source, obj) for obj in _expand(doc, source))
    if not out:
        fail(f"no objects passed to {verb}")
    return out

"""Lists: one consistent read of a resource, filtered by selectors, paged by a continue token.

A list reads at a single revision, the list's ``metadata.resourceVersion``:
the current one (a linearizable read) when ``resource_version`` is ``""``
or ``"0"``, else exactly the one asked for (``Gone`` if compacted away).
With ``limit`` > 0 it returns at most ``limit`` items, and, when more keys
may follow, ``metadata.continue``: an opaque token holding the list's
revision and the key to resume after. Every page of a paged list reads at
the first page's revision, so the pages together are one snapshot; a token
whose revision has been compacted raises ``Gone`` (list again from the
start). Selectors filter the items read: a page holds up to ``limit``
matching items, reading further keys as needed. ``remainingItemCount`` is
given when no selector is used and more items follow.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from controllers.api.errors import BadRequest, Gone
from controllers.api.kinds import Kind
from kvstore.kv import KV
from controllers.api.objects import Obj, decode
from controllers.api.selectors import FieldSelector, LabelSelector
from kvstore.errors import Compacted, FutureRevision
from kvstore.mvcc.keys import prefix_end

__all__ = ["decode_continue", "encode_continue", "list_objects", "parse_resource_version"]

_TOKEN_VERSION = 1


def encode_continue(prefix: bytes, last_key: bytes, revision: int) -> str:
    """A token resuming a list of ``prefix`` after ``last_key``, at ``revision``."""
    relative = last_key[len(prefix):] + b"\0"
    body = {"v": _TOKEN_VERSION, "rv": revision, "start": relative.decode("utf-8")}
    return base64.urlsafe_b64encode(json.dumps(body, sort_keys=True).encode()).decode()


def decode_continue(token: str, prefix: bytes) -> tuple[bytes, int]:
    """The absolute start key and the revision in ``token``.

    Raises:
        BadRequest: ``token`` was not made by ``encode_continue``.
    """
    try:
        body = json.loads(base64.urlsafe_b64decode(token.encode()))
        start, revision = body["start"], body["rv"]
        if body.get("v") != _TOKEN_VERSION or not isinstance(start, str) or not start:
            raise ValueError("unknown token")
        if not isinstance(revision, int) or isinstance(revision, bool) or revision <= 0:
            raise ValueError("bad token fields")
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as e:
        raise BadRequest(f"continue key is not valid: {e}") from e
    return prefix + start.encode("utf-8"), revision


def parse_resource_version(value: str, what: str = "resourceVersion") -> int:
    """``value`` as a revision; ``""`` and ``"0"`` give 0 ("the latest").

    Raises:
        BadRequest: ``value`` is not a non-negative integer.
    """
    if value in ("", "0"):
        return 0
    if not value.isdigit():
        raise BadRequest(f"invalid {what} {value!r}: must be a non-negative integer")
    return int(value)


def gone(kind: Kind, e: Compacted) -> Gone:
    """The ``Gone`` a compacted read or watch of ``kind`` raises."""
    return Gone(f"too old resource version: {e.revision} ({e.compact_revision})",
                resource=kind.resource)


async def list_objects(
    kv: KV,
    kind: Kind,
    namespace: str | None,
    *,
    label_selector: LabelSelector,
    field_selector: FieldSelector,
    limit: int = 0,
    continue_token: str | None = None,
    resource_version: str = "",
) -> Obj:
    """The list object for one read (see the module docstring).

    Raises:
        BadRequest: a negative limit, a bad token or resource version, or a
            resource version newer than the store's.
        Gone: the revision to read at has been compacted.
    """
    if limit < 0:
        raise BadRequest(f"limit must not be negative, got {limit}")
    prefix = kind.list_prefix(namespace).encode()
    end = prefix_end(prefix)
    start, revision = prefix, parse_resource_version(resource_version)
    if continue_token:
        start, revision = decode_continue(continue_token, prefix)
    filtered = not label_selector.is_empty() or not field_selector.is_empty()
    items: list[Obj] = []
    token = ""
    remaining: int | None = None
    while True:
        try:
            res = await kv.range(start, end, limit=limit, revision=revision)
        except Compacted as e:
            raise gone(kind, e) from e
        except FutureRevision as e:
            raise BadRequest(f"too large resource version: {e.revision}, current: "
                             f"{e.current_revision}") from e
        if revision == 0:
            revision = res.header_revision
        full_at = None
        for i, entry in enumerate(res.kvs):
            obj = decode(entry)
            if filtered and not (label_selector.matches(_labels(obj))
                                 and field_selector.matches(obj)):
                continue
            items.append(obj)
            if limit and len(items) == limit:
                full_at = i
                break
        if full_at is not None:
            if full_at < len(res.kvs) - 1 or res.more:
                token = encode_continue(prefix, res.kvs[full_at].key, revision)
                if not filtered:
                    remaining = res.count - (full_at + 1)
            break
        if not res.more or not res.kvs:
            break
        start = res.kvs[-1].key + b"\0"
    metadata: dict[str, Any] = {"resourceVersion": str(revision)}
    if token:
        metadata["continue"] = token
    if remaining:
        metadata["remainingItemCount"] = remaining
    return {"apiVersion": kind.api_version, "kind": f"{kind.kind}List", "metadata": metadata,
            "items": items}


def _labels(obj: Obj) -> dict[str, str]:
    labels = (obj.get("metadata") or {}).get("labels")
    return labels if isinstance(labels, dict) else {}

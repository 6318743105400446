"""How keys and key ranges are spelled, with etcd's conventions.

Keys are ``bytes`` inside the store; the public boundary also accepts ``str``
and encodes it as UTF-8. A key range is a pair ``(start, end)``:

- ``end is None``: the single key ``start``;
- ``end == ALL_KEYS`` (``b"\\0"``): every key ``>= start``;
- otherwise the half-open interval ``[start, end)`` (empty when ``end <= start``).

``prefix_end(p)`` is the smallest key greater than every key starting with
``p`` (``ALL_KEYS`` when no such key exists, e.g. for ``b""`` or ``b"\\xff"``).
"""

from __future__ import annotations

from kvstore.errors import InvalidRequest

__all__ = ["ALL_KEYS", "in_range", "key_range", "prefix_end", "to_bytes"]

ALL_KEYS = b"\0"
"""A range end meaning "no upper bound"."""


def to_bytes(value: bytes | str, what: str = "key") -> bytes:
    """Return ``value`` as bytes (``str`` is encoded as UTF-8).

    Raises:
        InvalidRequest: ``value`` is neither ``bytes`` nor ``str``.
    """
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise InvalidRequest(f"{what} must be bytes or str, not {type(value).__name__}")


def prefix_end(prefix: bytes) -> bytes:
    """The range end that selects every key starting with ``prefix``."""
    end = bytearray(prefix)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return ALL_KEYS


def key_range(
    key: bytes | str, range_end: bytes | str | None = None, *, prefix: bool = False
) -> tuple[bytes, bytes | None]:
    """Normalise ``(key, range_end, prefix)`` into ``(start, end)``.

    Raises:
        InvalidRequest: both ``range_end`` and ``prefix`` were given, or a
            single-key range names the empty key.
    """
    start = to_bytes(key)
    if prefix:
        if range_end is not None:
            raise InvalidRequest("give either range_end or prefix=True, not both")
        return start, prefix_end(start)
    if range_end is None:
        if not start:
            raise InvalidRequest("empty key")
        return start, None
    end = to_bytes(range_end, "range_end")
    if not end:
        # etcd treats an empty range_end as "no range end": a single key.
        if not start:
            raise InvalidRequest("empty key")
        return start, None
    return start, end


def in_range(key: bytes, start: bytes, end: bytes | None) -> bool:
    """True if ``key`` lies in the range ``(start, end)`` (see the module docstring)."""
    if end is None:
        return key == start
    if key < start:
        return False
    return end == ALL_KEYS or key < end

"""Container log files: where they live, how they rotate, and how to read their tail.

Each attempt of a container appends its stdout and stderr to
``<root_dir>/pods/<namespace>_<pod>_<uid>/<container>.log``. Before a new
attempt starts, the previous attempt's file is renamed to
``<container>.log.1`` (replacing an older one), so ``previous=true`` reads
the attempt before the current one, as ``kubectl logs --previous`` does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "container_log_path",
    "find_pod_dirs",
    "pod_dir",
    "previous_log_path",
    "read_tail",
    "rotate_log",
]

_BLOCK = 64 * 1024


def pod_dir(root_dir: Path, namespace: str, pod: str, uid: str) -> Path:
    """The directory of one pod's files under ``root_dir``."""
    return Path(root_dir) / "pods" / f"{namespace}_{pod}_{uid}"


def container_log_path(root_dir: Path, namespace: str, pod: str, uid: str, container: str) -> Path:
    """The log file of the current attempt of ``container``."""
    return pod_dir(root_dir, namespace, pod, uid) / f"{container}.log"


def previous_log_path(log_path: Path) -> Path:
    """The log file of the attempt before the current one."""
    return log_path.with_name(log_path.name + ".1")


def rotate_log(log_path: Path) -> None:
    """Keep the last attempt's log as ``.log.1`` before a new attempt writes ``log_path``."""
    if log_path.exists():
        os.replace(log_path, previous_log_path(log_path))


def find_pod_dirs(root_dir: Path, namespace: str, pod: str) -> list[Path]:
    """Directories of pods called ``namespace/pod`` (any uid), newest first."""
    base = Path(root_dir) / "pods"
    if not base.is_dir():
        return []
    prefix = f"{namespace}_{pod}_"
    found = [p for p in base.iterdir() if p.is_dir() and p.name.startswith(prefix)
             and "_" not in p.name[len(prefix):]]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name), reverse=True)


def read_tail(f: BinaryIO, lines: int | None) -> tuple[bytes, int]:
    """The last ``lines`` lines of the open file ``f`` (all if None) and the offset read to.

    A final line without a newline counts as a line.
    """
    f.seek(0, os.SEEK_END)
    end = f.tell()
    if lines is None:
        f.seek(0)
        return f.read(end), end
    if lines <= 0:
        return b"", end
    data = b""
    pos = end
    # Read backwards until the chunk holds more than ``lines`` line breaks.
    while pos > 0:
        step = min(_BLOCK, pos)
        pos -= step
        f.seek(pos)
        data = f.read(step) + data
        body = data[:-1] if data.endswith(b"\n") else data
        if body.count(b"\n") >= lines:
            break
    body = data[:-1] if data.endswith(b"\n") else data
    parts = body.split(b"\n")
    kept = b"\n".join(parts[-lines:])
    if data.endswith(b"\n") and kept:
        kept += b"\n"
    return kept, end

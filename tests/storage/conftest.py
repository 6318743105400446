from __future__ import annotations

import os
from pathlib import Path

import pytest

from kvstore.storage.disk import Disk, OsDisk
from kvstore.storage.memory_disk import MemoryDisk


@pytest.fixture(params=["os", "memory"])
def disk_dir(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Disk, str]:
    """A disk and a fresh directory path on it: real files under tmp_path, or a MemoryDisk."""
    if request.param == "os":
        return OsDisk(), os.path.join(str(tmp_path), "data")
    return MemoryDisk(), "/data"

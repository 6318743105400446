"""The Disk contract on both implementations, and MemoryDisk's crash semantics."""

from __future__ import annotations

import os
import random

import pytest

from kvstore.errors import InvariantError
from kvstore.storage.disk import Disk
from kvstore.storage.memory_disk import MemoryDisk


def test_files_directories_and_listing(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    sub = os.path.join(root, "a", "b")
    disk.makedirs(sub)
    disk.makedirs(sub)  # idempotent
    assert disk.exists(sub)
    path = os.path.join(sub, "f")
    assert not disk.exists(path)
    f = disk.create(path)
    f.write(b"hello ")
    f.write(b"world")
    f.sync()
    f.close()
    assert disk.read(path) == b"hello world"
    assert disk.size(path) == 11
    g = disk.open_append(path)
    g.write(b"!")
    g.close()
    assert disk.read(path) == b"hello world!"
    disk.truncate(path, 5)
    assert disk.read(path) == b"hello"
    disk.truncate(path, 7)
    assert disk.read(path) == b"hello\0\0"
    disk.truncate(path, 5)
    for name in ["zeta", "alpha", "mid"]:
        disk.create(os.path.join(sub, name)).close()
    assert disk.listdir(sub) == ["alpha", "f", "mid", "zeta"]
    assert disk.listdir(os.path.join(root, "a")) == ["b"]
    disk.rename(os.path.join(sub, "f"), os.path.join(sub, "alpha"))
    assert disk.read(os.path.join(sub, "alpha")) == b"hello"
    assert disk.listdir(sub) == ["alpha", "mid", "zeta"]
    disk.remove(os.path.join(sub, "mid"))
    assert disk.listdir(sub) == ["alpha", "zeta"]
    disk.sync_dir(sub)
    with pytest.raises(FileNotFoundError):
        disk.read(os.path.join(sub, "mid"))
    with pytest.raises(FileNotFoundError):
        disk.remove(os.path.join(sub, "mid"))


def test_create_empties_an_existing_file(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    disk.makedirs(root)
    path = os.path.join(root, "f")
    f = disk.create(path)
    f.write(b"old content")
    f.close()
    f = disk.create(path)
    f.write(b"new")
    f.close()
    assert disk.read(path) == b"new"


def _durable_file(disk: MemoryDisk, path: str, data: bytes) -> None:
    f = disk.create(path)
    f.write(data)
    f.sync()
    f.close()
    disk.sync_dir(os.path.dirname(path))


def test_crash_drops_unsynced_writes_and_keeps_synced_ones() -> None:
    disk = MemoryDisk()
    disk.makedirs("/d")
    _durable_file(disk, "/d/f", b"synced")
    f = disk.open_append("/d/f")
    f.write(b" and lost")
    assert disk.read("/d/f") == b"synced and lost"
    disk.crash()
    assert disk.read("/d/f") == b"synced"


def test_names_need_a_directory_sync() -> None:
    disk = MemoryDisk()
    disk.makedirs("/d")
    _durable_file(disk, "/d/kept", b"k")
    _durable_file(disk, "/d/old", b"o")
    f = disk.create("/d/unnamed")
    f.write(b"data")
    f.sync()  # content durable, name not
    disk.rename("/d/old", "/d/new")
    disk.remove("/d/kept")
    disk.crash()
    assert disk.listdir("/d") == ["kept", "old"]
    assert disk.read("/d/old") == b"o"


def test_directory_sync_makes_renames_and_removes_durable() -> None:
    disk = MemoryDisk()
    disk.makedirs("/d")
    _durable_file(disk, "/d/a", b"a")
    _durable_file(disk, "/d/b", b"b")
    disk.rename("/d/a", "/d/c")
    disk.remove("/d/b")
    disk.sync_dir("/d")
    disk.crash()
    assert disk.listdir("/d") == ["c"]
    assert disk.read("/d/c") == b"a"


def test_truncate_is_durable_only_after_a_file_sync() -> None:
    disk = MemoryDisk()
    disk.makedirs("/d")
    _durable_file(disk, "/d/f", b"0123456789")
    disk.truncate("/d/f", 4)
    disk.crash(random.Random(1))
    assert disk.read("/d/f") == b"0123456789"
    disk.truncate("/d/f", 4)
    f = disk.open_append("/d/f")
    f.sync()
    disk.crash()
    assert disk.read("/d/f") == b"0123"


def test_torn_crash_keeps_a_prefix_of_the_unsynced_bytes() -> None:
    tails = set()
    for seed in range(40):
        disk = MemoryDisk()
        disk.makedirs("/d")
        _durable_file(disk, "/d/f", b"base:")
        f = disk.open_append("/d/f")
        f.write(b"abcdefghij")
        disk.crash(random.Random(seed))
        data = disk.read("/d/f")
        assert data.startswith(b"base:")
        tail = data[len(b"base:") :]
        assert b"abcdefghij".startswith(tail)
        tails.add(len(tail))
    assert len(tails) > 3  # the prefix length really varies with the seed


def test_torn_crash_is_deterministic_for_a_seed() -> None:
    def run(seed: int) -> list[bytes]:
        disk = MemoryDisk()
        disk.makedirs("/d")
        for name in ["c", "a", "b"]:
            _durable_file(disk, f"/d/{name}", b"")
            disk.open_append(f"/d/{name}").write(bytes(range(50)))
        disk.crash(random.Random(seed))
        return [disk.read(f"/d/{n}") for n in ["a", "b", "c"]]

    assert run(7) == run(7)
    assert any(run(7) != run(s) for s in range(8, 14))


def test_handles_die_with_a_crash_and_on_close() -> None:
    disk = MemoryDisk()
    disk.makedirs("/d")
    f = disk.create("/d/f")
    disk.crash()
    with pytest.raises(InvariantError):
        f.write(b"x")
    disk.makedirs("/d")
    g = disk.create("/d/g")
    g.close()
    with pytest.raises(InvariantError):
        g.sync()


def test_handle_follows_its_file_through_a_rename() -> None:
    disk = MemoryDisk()
    disk.makedirs("/d")
    f = disk.create("/d/a.tmp")
    f.write(b"head")
    f.sync()
    disk.rename("/d/a.tmp", "/d/a")
    disk.sync_dir("/d")
    f.write(b"+tail")
    f.sync()
    disk.crash()
    assert disk.read("/d/a") == b"head+tail"


def test_memory_disk_errors_look_like_os_errors() -> None:
    disk = MemoryDisk()
    with pytest.raises(FileNotFoundError):
        disk.create("/missing/f")
    disk.makedirs("/d")
    with pytest.raises(IsADirectoryError):
        disk.create("/d")
    disk.create("/d/f").close()
    with pytest.raises(FileExistsError):
        disk.makedirs("/d/f/g")
    with pytest.raises(FileNotFoundError):
        disk.listdir("/nope")


def test_makedirs_over_a_file_fails(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    disk.makedirs(root)
    disk.create(os.path.join(root, "f")).close()
    with pytest.raises(FileExistsError):
        disk.makedirs(os.path.join(root, "f"))

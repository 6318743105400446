"""Bad input thrown at a member's client and peer ports: each bad connection is closed and
logged, the member keeps serving, and peers from another cluster are refused."""

from __future__ import annotations

import asyncio
import random
import struct
from collections.abc import Callable
from typing import Any

import msgpack
import pytest

import kvstore
from kvstore.errors import TooLarge
from kvstore.transport.codec import FRAME_HEADER, encode_frame
from kvstore.transport.peer import PROTOCOL, read_frame
from runtime.clusterfile import parse_addr
from tests.procs.harness import ProcCluster

pytestmark = pytest.mark.slow

CLIENT_MAX_BUFFER = 16 << 20  # the client port's default frame limit


def _client_port_error(data: bytes) -> type[Exception] | None:
    """The error msgpack raises reading ``data`` as a stream, as the client port does."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False,
                                max_buffer_size=CLIENT_MAX_BUFFER)
    try:
        unpacker.feed(data)
        for _ in unpacker:
            pass
    except Exception as e:  # noqa: BLE001 - classifying, not handling
        return type(e)
    return None


def _peer_frame_error(body: bytes) -> type[Exception] | None:
    """The error msgpack raises reading ``body`` as one value, as the peer port does."""
    try:
        msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception as e:  # noqa: BLE001 - classifying, not handling
        return type(e)
    return None


def random_garbage(seed: int, error: Callable[[bytes], type[Exception] | None]) -> list[bytes]:
    """Seeded random byte strings msgpack cannot decode (as ``error`` says), of both kinds
    of failure: malformed bytes, and maps keyed by unhashable values (``TypeError``)."""
    rng = random.Random(seed)
    malformed: list[bytes] = []
    unhashable: list[bytes] = []
    while len(malformed) < 6 or len(unhashable) < 3:
        data = rng.randbytes(rng.randrange(1, 64))
        err = error(data)
        if err is TypeError and len(unhashable) < 3:
            unhashable.append(data)
        elif err is not None and err is not TypeError and len(malformed) < 6:
            malformed.append(data)
    return malformed + unhashable


async def _closed_by_member(addr: tuple[str, int], data: bytes) -> bytes:
    """Send ``data``, then read until the member closes; returns what it sent back."""
    reader, writer = await asyncio.open_connection(*addr)
    try:
        writer.write(data)
        await writer.drain()
        rest = await asyncio.wait_for(reader.read(), 10)  # to EOF: the member hung up
    except (ConnectionResetError, BrokenPipeError):
        rest = b""  # hung up while we were still sending
    finally:
        writer.close()
    return rest


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   req: list[Any]) -> Any:
    writer.write(msgpack.packb(req, use_bin_type=True))
    await writer.drain()
    unpacker = msgpack.Unpacker(raw=False)
    while True:
        chunk = await asyncio.wait_for(reader.read(65536), 10)
        assert chunk, "the member closed a connection that sent a well-formed request"
        unpacker.feed(chunk)
        for answer in unpacker:
            return answer


async def test_garbage_on_the_client_port(procs: ProcCluster) -> None:
    leader = await procs.up()
    addr = parse_addr(procs.member(leader).client)
    garbage = random_garbage(7, _client_port_error) + [
        b"\xc1" + random.Random(1).randbytes(500),       # a byte msgpack never uses
        msgpack.packb({"not": "a request"}),             # a value, but not [id, method, args]
        msgpack.packb([1, 2, [3]]),                      # a method that is not a string
        # A 64 MiB value: the member stops buffering at its 16 MiB frame limit.
        b"\x93\x01\xa3put\x91\xc6" + struct.pack(">I", 64 << 20) + bytes(CLIENT_MAX_BUFFER + 1),
    ]
    for data in garbage:
        await _closed_by_member(addr, data)
    await procs.wait_log(leader, "closing client connection")
    logged = procs.log(leader).count("closing client connection")
    assert logged == len(garbage), procs.log(leader)[-3000:]

    # Well-formed requests with bad arguments get an error answer; the connection stays.
    reader, writer = await asyncio.open_connection(*addr)
    try:
        bad_args = await _request(reader, writer, [7, "put", ["only a key"]])
        assert bad_args[0] == 7 and bad_args[1] == 1 and bad_args[2][0] == "InvalidRequest"
        unknown = await _request(reader, writer, [8, "no-such-method", []])
        assert unknown[0] == 8 and unknown[2][0] == "InvalidRequest"
        status = await _request(reader, writer, [9, "status", []])
        assert status[0] == 9 and status[1] == 0 and status[2]["member_id"] == leader
    finally:
        writer.close()

    async with kvstore.connect(procs.endpoints(), timeout=10) as kv:
        with pytest.raises(TooLarge):
            await kv.put("/big", b"x" * (2 << 20))
        await kv.put("/still", b"serving")
        got = await kv.get("/still")
        assert got is not None and got.value == b"serving"
    _assert_no_crash(procs)


async def test_garbage_on_the_peer_port(procs: ProcCluster) -> None:
    leader = await procs.up()
    addr = parse_addr(procs.member(leader).peer)
    other = next(i for i in procs.ids if i != leader)
    frames = [FRAME_HEADER.pack(len(body)) + body for body in random_garbage(11, _peer_frame_error)]
    frames += [
        FRAME_HEADER.pack(0xFFFF_FFFF),                          # a 4 GiB frame announced
        encode_frame(["not", "a", "handshake"]),
        encode_frame([PROTOCOL, procs.cluster_id, 99, leader]),  # an unknown member
        # A good handshake, then a message that does not decode.
        encode_frame([PROTOCOL, procs.cluster_id, other, leader]) + encode_frame(["msgs", [[1]]]),
    ]
    for data in frames:
        await _closed_by_member(addr, data)
    await procs.wait_log(leader, "closing peer connection")
    logged = procs.log(leader).count("closing peer connection")
    assert logged == len(frames), procs.log(leader)[-3000:]

    async with kvstore.connect(procs.endpoints(), timeout=10) as kv:
        await kv.put("/still", b"serving")
    _assert_no_crash(procs)


async def test_a_peer_of_another_cluster_is_refused(procs: ProcCluster) -> None:
    leader = await procs.up()
    other = next(i for i in procs.ids if i != leader)
    reader, writer = await asyncio.open_connection(*parse_addr(procs.member(leader).peer))
    try:
        writer.write(encode_frame([PROTOCOL, "another-cluster", other, leader]))
        await writer.drain()
        answer = await asyncio.wait_for(read_frame(reader), 10)
        assert answer[0] == "refused" and "another-cluster" in answer[1]
        assert await asyncio.wait_for(reader.read(), 10) == b""  # and hung up
    finally:
        writer.close()
    await procs.wait_log(leader, "refused peer")
    async with kvstore.connect(procs.endpoints(), timeout=10) as kv:
        await kv.put("/still", b"serving")
        assert (await kv.status()).leader == leader
    _assert_no_crash(procs)


def _assert_no_crash(procs: ProcCluster) -> None:
    for member in procs.ids:
        log = procs.log(member)
        assert "Traceback" not in log and "Unhandled exception" not in log, log[-3000:]

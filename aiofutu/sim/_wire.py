"""Byte-level helpers of the simulator: push bodies built by concatenation, and the outbox.

A push body is the same for every connection, so it is built once from already-serialized
``Ticker`` bytes (protobuf fields are just tag + length + bytes) and only the 44-byte header, which
carries the connection's serial, differs per connection.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from typing import TYPE_CHECKING

import anyio

from .._codec import HEADER, MAGIC

if TYPE_CHECKING:
    from collections.abc import Sequence

    from anyio.abc import ByteSendStream

    from .._pb import qot_common_pb2

__all__ = ("CHUNK", "Outbox", "PushEncoder", "pack_header", "split_frames", "varint")

logger = logging.getLogger("aiofutu.sim")

#: Size of the writes to a socket, and of the frame-aligned chunks a burst is cut into.
CHUNK = 256 * 1024
_RESERVED = bytes(8)
_pack = HEADER.pack
_BODY_LEN = struct.Struct("<I")


def varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative integer."""
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def pack_header(proto_id: int, serial: int, body_len: int, digest: bytes, fmt: int = 0) -> bytes:
    """The 44-byte frame header for a body whose SHA1 is already known."""
    return _pack(MAGIC, proto_id, fmt, 0, serial, body_len, digest, _RESERVED)


def split_frames(data: bytes, n: int) -> bytes:
    """The first ``n`` whole frames of ``data`` (consecutive frames, as queued for a socket)."""
    offset = 0
    for _ in range(n):
        (body_len,) = _BODY_LEN.unpack_from(data, offset + 12)
        offset += 44 + body_len
    return data[:offset]


class PushEncoder:
    """Builds ``Qot_UpdateTicker`` (3011) Response bodies for one security.

    Equivalent to ``Response(retType=0, s2c=S2C(security, tickerList, name)).SerializeToString()``
    (fields in number order, as protobuf writes them), without copying the tickers again.
    """

    __slots__ = ("_name", "_security")

    def __init__(self, security: qot_common_pb2.Security, name: str) -> None:
        sec = security.SerializeToString()
        raw_name = name.encode()
        self._security = b"\x0a" + varint(len(sec)) + sec  # S2C.security, field 1
        self._name = b"\x1a" + varint(len(raw_name)) + raw_name  # S2C.name, field 3

    def body(self, tickers: Sequence[bytes]) -> bytes:
        """The Response body for serialized tickers (``S2C.tickerList``, field 2)."""
        if len(tickers) == 1:
            t = tickers[0]
            s2c = b"".join((self._security, b"\x12", varint(len(t)), t, self._name))
        else:
            parts = [self._security]
            for t in tickers:
                parts += (b"\x12", varint(len(t)), t)
            parts.append(self._name)
            s2c = b"".join(parts)
        return b"\x08\x00\x22" + varint(len(s2c)) + s2c  # retType=0 (field 1), s2c (field 4)


class Outbox:
    """A connection's send queue, drained by one writer task in writes of up to :data:`CHUNK`.

    ``put_nowait`` never blocks (replies and live pushes: the caller checks :attr:`queued`
    against its own bound); ``put`` waits while more than ``high_water`` bytes are queued
    (bursts: backpressure, so nothing is lost). Chunks are whole frames, so replies may be
    interleaved between them without splitting a frame. After :meth:`finish` nothing more is
    taken and :meth:`run` returns once what was queued is written.
    """

    def __init__(self) -> None:
        self._chunks: deque[bytes] = deque()
        #: Bytes queued or being written.
        self.queued = 0
        self.closed = False
        self.finishing = False
        self._wake = anyio.Event()
        self._progress = anyio.Event()

    def put_nowait(self, data: bytes) -> None:
        """Queue ``data`` (one or more whole frames)."""
        if self.closed or self.finishing:
            return
        self._chunks.append(data)
        self.queued += len(data)
        self._wake.set()

    async def wait_room(self, high_water: int) -> bool:
        """Wait until the backlog is at most ``high_water``; False if the outbox closed."""
        while self.queued > high_water and not self.closed:
            await self._progress.wait()
        return not (self.closed or self.finishing)

    async def put(self, data: bytes, high_water: int) -> bool:
        """Queue ``data`` once the backlog is at most ``high_water``; False if the outbox closed."""
        if not await self.wait_room(high_water):
            return False
        self.put_nowait(data)
        return True

    def finish(self) -> None:
        """Take nothing more; :meth:`run` returns once everything queued was written."""
        self.finishing = True
        self._wake.set()

    async def drain(self) -> bool:
        """Wait until everything queued so far has been written; False if the outbox closed."""
        while self.queued and not self.closed:
            await self._progress.wait()
        return not self.closed

    def close(self) -> None:
        """Drop what is queued and release every waiter."""
        self.closed = True
        self._chunks.clear()
        self.queued = 0
        self._wake.set()
        self._progress.set()

    async def run(self, stream: ByteSendStream) -> None:
        """Writer loop: send queued chunks until the outbox is closed."""
        chunks = self._chunks
        while not self.closed:
            if not chunks:
                if self.finishing:
                    return
                self._wake = anyio.Event()
                await self._wake.wait()
                continue
            first = chunks.popleft()
            size = len(first)
            if size >= CHUNK or not chunks:
                data = first
            else:
                parts = [first]
                while chunks and size < CHUNK:
                    part = chunks.popleft()
                    parts.append(part)
                    size += len(part)
                data = b"".join(parts)
            await stream.send(data)
            if self.queued < size:  # close() reset the count meanwhile
                return
            self.queued -= size
            done, self._progress = self._progress, anyio.Event()
            done.set()

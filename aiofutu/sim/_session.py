"""One client connection of the simulator: read frames, answer requests, send pushes.

Requests are handled in arrival order by the reader task; the answer (and any first-push that
goes with it) is put on the connection's :class:`~aiofutu.sim._wire.Outbox`, which a writer task
drains. Nothing here blocks on the socket except those two tasks, so a client that stops reading
cannot stall the market generator or other clients. The frame-level faults (corrupt SHA1, drop
after N frames) are applied here, where frames are made.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import socket
import struct
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import SocketAttribute
from google.protobuf import json_format

from .._codec import FrameDecoder, encode_frame
from .._pb import qot_update_ticker_pb2
from ..enums import ProtoId
from ..errors import RemoteProtocolError
from ._handlers import HANDLERS, SubKey, fail
from ._scenarios import ErrCode, corrupt_digest, corrupt_sha1
from ._wire import CHUNK, Outbox, pack_header, split_frames

if TYPE_CHECKING:
    from collections.abc import Sequence

    from anyio.abc import SocketStream, TaskGroup
    from google.protobuf.message import Message

    from ._server import Simulator

__all__ = ("Bulk", "Session", "SubKey")

logger = logging.getLogger("aiofutu.sim")

_UPDATE_TICKER = int(ProtoId.QOT_UPDATE_TICKER)
_U32 = 0xFFFFFFFF
_sha1 = hashlib.sha1

#: Frames of a burst joined into ~CHUNK-byte writes: (bytes, number of frames in them).
Bulk = list[tuple[bytes, int]]


class Session:
    """State and tasks of one connection."""

    def __init__(self, server: Simulator, stream: SocketStream, conn_id: int, aes_key: str) -> None:
        self.server = server
        self.stream = stream
        self.conn_id = conn_id
        self.aes_key = aes_key
        self.outbox = Outbox()
        self.ready = False  # InitConnect answered
        self.client_id = ""
        self.push_fmt = 0
        #: Subscriptions and when they were made (``time.monotonic()``).
        self.subs: dict[SubKey, float] = {}
        #: Subscriptions with push registered on this connection.
        self.pushes: set[SubKey] = set()
        #: Codes whose TICKER push this connection registered at least once.
        self.registered: set[str] = set()
        #: Frames queued for this connection so far (replies and pushes).
        self.frames_out = 0
        self.closed = anyio.Event()
        self._scope = anyio.CancelScope()
        self._tg: TaskGroup | None = None
        self._decoder = FrameDecoder()
        self._serial = 0

    # ---- lifecycle ------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until EOF, an error, :meth:`close` or server shutdown."""
        try:
            with self._scope:
                async with anyio.create_task_group() as tg:
                    self._tg = tg
                    tg.start_soon(self._write_loop)
                    await self._read_loop()
                    tg.cancel_scope.cancel()
        finally:
            self.outbox.close()
            self.server.forget(self)
            await anyio.aclose_forcefully(self.stream)
            self.closed.set()
            logger.debug("connection %d closed", self.conn_id)

    def close(self, *, reset: bool = False) -> None:
        """Drop the connection now (queued data is discarded); ``reset`` sends a TCP RST."""
        if reset:
            with contextlib.suppress(OSError):
                sock = self.stream.extra(SocketAttribute.raw_socket)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.outbox.close()
        self._scope.cancel()

    async def _write_loop(self) -> None:
        try:
            await self.outbox.run(self.stream)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            logger.debug("connection %d: write failed: %r", self.conn_id, exc)
            self.close()
            return
        if self.outbox.finishing:
            logger.info("connection %d: dropped after %d frames", self.conn_id, self.frames_out)
            self.close()

    async def _read_loop(self) -> None:
        decoder = self._decoder
        while True:
            try:
                data = await self.stream.receive(CHUNK)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                return
            except OSError as exc:
                logger.debug("connection %d: read failed: %r", self.conn_id, exc)
                return
            decoder.feed(data)
            while True:
                try:
                    frame = decoder.next_frame()
                except RemoteProtocolError as exc:
                    if not exc.recoverable:
                        logger.warning("connection %d: %s; closing it", self.conn_id, exc)
                        return
                    if not self.server.faults.stall:
                        reply = fail(f"invalid packet: {exc.reason}")[0]
                        self._send(exc.proto_id or 0, exc.serial or 0, 0, reply, [])
                    continue
                if frame is None:
                    break
                self._dispatch(frame.proto_id, frame.serial, frame.fmt, frame.body)

    # ---- requests -------------------------------------------------------------------------

    def _dispatch(self, proto_id: int, serial: int, fmt: int, body: bytes) -> None:
        if self.server.faults.stall:
            logger.debug("connection %d: stalled, dropping request %d", self.conn_id, proto_id)
            return
        self.server.requests[proto_id] += 1
        if fmt not in (0, 1):
            result = fail(f"unsupported body format {fmt} (0 = protobuf, 1 = JSON)")
            self._send(proto_id, serial, 0, result[0], [])
            return
        entry = HANDLERS.get(proto_id)
        if entry is None:
            result = fail(f"unknown protocol id {proto_id}", ErrCode.UNKNOWN_PROTO)
        elif not self.ready and proto_id != ProtoId.INIT_CONNECT:
            result = fail(
                f"InitConnect (1001) must be the first request on a connection; got {proto_id}",
                ErrCode.NOT_INITIALIZED,
            )
        else:
            request_cls, handler = entry
            try:
                request: Any = request_cls()
                if fmt == 1:
                    json_format.Parse(body.decode(), request)
                else:
                    request.ParseFromString(body)
            except Exception as exc:
                result = fail(f"cannot parse the request body of protocol {proto_id}: {exc}")
            else:
                if request.HasField("c2s"):
                    result = handler(self, request.c2s)
                else:
                    result = fail(f"protocol {proto_id}: the request has no c2s")
        self._send(proto_id, serial, fmt, result[0], result[1])

    def _send(
        self, proto_id: int, serial: int, fmt: int, reply: Message, pushes: list[bytes]
    ) -> None:
        if fmt == 1:
            body = json_format.MessageToJson(reply, preserving_proto_field_name=True).encode()
        else:
            body = reply.SerializeToString()
        frame = encode_frame(proto_id, serial, body, fmt=fmt)
        if self.server.faults.take_corrupt():
            frame = corrupt_sha1(frame)
        delay = self.server.faults.reply_delay
        if delay > 0 and self._tg is not None:
            self._tg.start_soon(self._send_later, delay, frame, pushes)
        else:
            self._enqueue(frame)
            for push in pushes:
                self.push(push, _sha1(push).digest())

    async def _send_later(self, delay: float, frame: bytes, pushes: list[bytes]) -> None:
        await anyio.sleep(delay)
        if not self.server.faults.stall:
            self._enqueue(frame)
            for push in pushes:
                self.push(push, _sha1(push).digest())

    # ---- pushes ---------------------------------------------------------------------------

    def _next_serial(self) -> int:
        self._serial = self._serial + 1 if self._serial < _U32 else 1
        return self._serial

    def _budget(self) -> int | None:
        """Frames this connection may still be sent under ``drop_after_frames`` (None: any)."""
        limit = self.server.faults.drop_after_frames
        return None if limit <= 0 else max(limit - self.frames_out, 0)

    def _enqueue(self, data: bytes, frames: int = 1) -> None:
        outbox = self.outbox
        if outbox.closed or outbox.finishing:
            return
        budget = self._budget()
        if budget is not None and frames > budget:
            data = split_frames(data, budget)
            frames = budget
        outbox.put_nowait(data)
        self.frames_out += frames
        if budget is not None and frames >= budget:
            outbox.finish()  # close once the last allowed frame is written
        limit = self.server.config.max_push_backlog
        if outbox.queued > limit:
            logger.warning(
                "connection %d (%s) is not reading: %d bytes queued (limit %d); dropping it",
                self.conn_id,
                self.client_id or "?",
                outbox.queued,
                limit,
            )
            self.close()

    def _json_push(self, body: bytes) -> bytes:
        message = qot_update_ticker_pb2.Response.FromString(body)
        return json_format.MessageToJson(message, preserving_proto_field_name=True).encode()

    def push(self, body: bytes, digest: bytes) -> None:
        """Queue one 3011 push (a protobuf body and its SHA1) without waiting."""
        if self.push_fmt == 1:
            body = self._json_push(body)
            digest = _sha1(body).digest()
        serial = self._next_serial()
        if self.server.faults.corrupt_push(serial):
            digest = corrupt_digest(digest)
        header = pack_header(_UPDATE_TICKER, serial, len(body), digest, self.push_fmt)
        self._enqueue(header + body)

    def bulk_chunks(self, bodies: Sequence[bytes], digests: Sequence[bytes]) -> Bulk:
        """Frames for a burst, with this connection's serials, joined into ~CHUNK-byte chunks."""
        fmt = self.push_fmt
        if fmt == 1:
            bodies = [self._json_push(b) for b in bodies]
            digests = [_sha1(b).digest() for b in bodies]
        faults = self.server.faults
        corrupting = faults.corrupt_every > 0 or faults.corrupt_pushes > 0
        chunks: Bulk = []
        parts: list[bytes] = []
        size = 0
        serial = self._serial
        for body, digest in zip(bodies, digests, strict=True):
            serial = serial + 1 if serial < _U32 else 1
            sha = corrupt_digest(digest) if corrupting and faults.corrupt_push(serial) else digest
            parts.append(pack_header(_UPDATE_TICKER, serial, len(body), sha, fmt))
            parts.append(body)
            size += 44 + len(body)
            if size >= CHUNK:
                chunks.append((b"".join(parts), len(parts) // 2))
                parts = []
                size = 0
        if parts:
            chunks.append((b"".join(parts), len(parts) // 2))
        self._serial = serial
        return chunks

    async def send_bulk(self, chunks: Bulk) -> bool:
        """Write ``chunks`` with backpressure; True once all of it went to the socket."""
        high_water = self.server.config.burst_high_water
        outbox = self.outbox
        for chunk, frames in chunks:
            if not await outbox.wait_room(high_water):
                return False
            self._enqueue(chunk, frames)
            if outbox.finishing or outbox.closed:
                return False
        return await outbox.drain()

"""One client connection of the simulator: read frames, answer requests, send pushes.

Requests are handled in arrival order by the reader task; the answer (and any first-push that
goes with it) is put on the connection's :class:`~aiofutu.sim._wire.Outbox`, which a writer task
drains. Nothing here blocks on the socket except those two tasks, so a client that stops reading
cannot stall the market generator or other clients. The frame-level faults (corrupt SHA1, drop
after N frames) are applied here, where frames are made, and so is encryption (a simulator with
an RSA key): the decoder's hook decrypts what arrives, and every frame is encrypted as it is made.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import secrets
import socket
import struct
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
from anyio.abc import SocketAttribute
from google.protobuf import json_format

from .._codec import FrameDecoder, encode_frame
from .._crypto import AesCipher
from .._kinds import KINDS
from .._pb import init_connect_pb2
from ..enums import ProtoId
from ..errors import RemoteProtocolError
from ._handlers import HANDLERS, Pushes, SubKey, fail
from ._replies import RawReply
from ._scenarios import ErrCode, corrupt_digest, corrupt_sha1
from ._wire import CHUNK, Outbox, pack_header, split_frames

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from anyio.abc import SocketStream, TaskGroup
    from google.protobuf.message import Message

    from .._crypto import RsaKey
    from ._server import Simulator

__all__ = ("Bulk", "Session", "SubKey")

logger = logging.getLogger("aiofutu.sim")

_UPDATE_TICKER = int(ProtoId.QOT_UPDATE_TICKER)
_INIT_CONNECT = int(ProtoId.INIT_CONNECT)
#: The Response message of every kind's push (to render a JSON push body).
_PUSH_RESPONSES = {k.push_proto_id: k.push_response for k in KINDS}
_U32 = 0xFFFFFFFF
_sha1 = hashlib.sha1
#: Bodies encrypted between two checkpoints of a burst's preparation.
_BATCH = 10_000
#: packetEncAlgo values (Common.PacketEncAlgo): None, FTAES_ECB, AES_ECB, AES_CBC.
_ALGO_NONE, _ALGO_FTAES_ECB, _ALGO_AES_ECB, _ALGO_AES_CBC = -1, 0, 1, 2

#: Frames of a burst joined into ~CHUNK-byte writes: (bytes, number of frames in them).
Bulk = list[tuple[bytes, int]]


class Session:
    """State and tasks of one connection."""

    def __init__(
        self,
        server: Simulator,
        stream: SocketStream,
        conn_id: int,
        aes_key: str,
        aes_iv: str | None = None,
    ) -> None:
        self.server = server
        self.stream = stream
        self.conn_id = conn_id
        #: ``connAESKey`` of the InitConnect reply (16 characters: AES-128).
        self.aes_key = aes_key
        self._iv = aes_iv
        self.outbox = Outbox()
        self.ready = False  # InitConnect answered
        self.client_id = ""
        self.push_fmt = 0
        #: Subscriptions and when they were made (``time.monotonic()``).
        self.subs: dict[SubKey, float] = {}
        #: Subscriptions with push registered on this connection.
        self.pushes: set[SubKey] = set()
        #: Rehab types registered for K-line pushes (Qot_Sub #5), by subscription; absent:
        #: forward-adjusted only, OpenD's default.
        self.rehab: dict[SubKey, tuple[int, ...]] = {}
        #: Codes whose TICKER push this connection registered at least once.
        self.registered: set[str] = set()
        #: Frames queued for this connection so far (replies and pushes).
        self.frames_out = 0
        self.closed = anyio.Event()
        self._scope = anyio.CancelScope()
        self._tg: TaskGroup | None = None
        self._decoder = FrameDecoder()
        self._serial = 0
        #: The simulator's RSA key (it then requires encryption), else None.
        self.rsa: RsaKey | None = server.rsa
        #: The session's AES cipher once InitConnect set up encryption, else None (plain text).
        self.aes: AesCipher | None = None
        #: ``aesCBCiv`` sent in the InitConnect reply (AES-CBC sessions only).
        self.aes_iv: str | None = None
        #: The InitConnect was refused: the reply is written, then the connection closed.
        self.refused = False
        self._plain_init = False  # the InitConnect arrived unencrypted (keyed simulator)
        if self.rsa is not None:
            self._decoder.decrypt = self._decrypt

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
            if not self.refused:
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
                    if exc.proto_id == _INIT_CONNECT and not self.ready:
                        self._unreadable_init(exc)
                    elif not self.server.faults.stall:
                        reply = fail(f"invalid packet: {exc.reason}")[0]
                        self._send(exc.proto_id or 0, exc.serial or 0, 0, reply, [])
                else:
                    if frame is None:
                        break
                    self._dispatch(frame.proto_id, frame.serial, frame.fmt, frame.body)
                if self.refused:
                    # Write the refusal, then close: the writer ends the session once it is out.
                    self.outbox.finish()
                    await self.outbox.drain()
                    return

    # ---- encryption -----------------------------------------------------------------------

    def _decrypt(self, proto_id: int, body: bytes) -> bytes:
        """Decoder hook of a keyed simulator: RSA for InitConnect, AES for the rest."""
        rsa = self.rsa
        assert rsa is not None
        if proto_id == _INIT_CONNECT:
            if not self.ready and _reads_as_init_connect(body):
                self._plain_init = True  # refused by the handler, with a reply that says why
                return body
            return rsa.decrypt(body)  # a wrong key: ValueError, or bytes failing the SHA1 check
        aes = self.aes
        # Before InitConnect (or in a session that asked for no encryption) bodies are taken
        # as they come: the request is then refused, or its SHA1 check fails.
        return body if aes is None else aes.decrypt(body)

    def _encryptor(self, proto_id: int) -> Callable[[bytes], bytes] | None:
        aes = self.aes
        if aes is None:
            return None
        if proto_id == _INIT_CONNECT:
            assert self.rsa is not None
            return self.rsa.encrypt
        return aes.encrypt

    def negotiate(self, c2s: init_connect_pb2.C2S) -> str | None:
        """Set up this session's encryption from InitConnect; the reason when it is refused.

        Only a keyed simulator encrypts (OpenD without ``rsa_private_key`` never does).
        """
        if self.rsa is None:
            self.server.handshakes["plain"] += 1
            return None
        if self._plain_init:
            return (
                "InitConnect is not encrypted, but this OpenD has an RSA private key and "
                "requires encryption: give the client the same key"
            )
        algo = c2s.packetEncAlgo if c2s.HasField("packetEncAlgo") else None
        if algo == _ALGO_NONE:
            self.server.handshakes["plain"] += 1
            return None  # OpenD encrypts only when the algorithm is not None
        if algo == _ALGO_AES_ECB:
            return (
                "packetEncAlgo 1 (standard AES-ECB) is not supported; ask for 2 (AES_CBC) or "
                "0 (FTAES_ECB)"
            )
        if algo not in (None, _ALGO_FTAES_ECB, _ALGO_AES_CBC):
            return f"unknown packetEncAlgo {algo} (-1 None, 0 FTAES_ECB, 2 AES_CBC)"
        mode = self.server.config.aes_mode
        if mode == "auto":
            mode = "cbc" if algo == _ALGO_AES_CBC else "ecb"  # OpenD's default is FTAES_ECB
        if mode == "cbc":
            self.aes_iv = self._iv or secrets.token_hex(8)
        self.aes = AesCipher(self.aes_key, self.aes_iv)
        self.server.handshakes[f"aes-{mode}"] += 1
        return None

    def refuse(self) -> None:
        """Close the connection once the reply now being sent is written."""
        self.refused = True
        self.server.handshakes["refused"] += 1

    def _unreadable_init(self, exc: RemoteProtocolError) -> None:
        """An InitConnect whose body cannot be read (a bad SHA1, or no RSA plaintext)."""
        if self.rsa is not None:
            reason = "cannot decrypt InitConnect with this OpenD's RSA private key (another key?)"
            code = ErrCode.ENCRYPTION
            self.refuse()
            logger.warning("connection %d: refused InitConnect: %s", self.conn_id, reason)
        elif self.server.faults.stall:
            return
        else:
            reason = (
                f"invalid packet: {exc.reason} (an encrypted InitConnect? this OpenD has no "
                "RSA private key)"
            )
            code = ErrCode.INVALID_REQUEST
        reply = init_connect_pb2.Response(retType=-1, retMsg=reason, errCode=int(code))
        self._send(_INIT_CONNECT, exc.serial or 0, 0, reply, [])

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
                    refused = self.server.limits.refuse(proto_id, request.c2s)
                    if refused is not None:
                        result = fail(refused, ErrCode.RATE_LIMITED)
                    else:
                        result = handler(self, request.c2s)
                else:
                    result = fail(f"protocol {proto_id}: the request has no c2s")
        self._send(proto_id, serial, fmt, result[0], result[1])

    def _send(
        self, proto_id: int, serial: int, fmt: int, reply: Message | RawReply, pushes: Pushes
    ) -> None:
        if fmt == 1:
            message = reply.message() if isinstance(reply, RawReply) else reply
            body = json_format.MessageToJson(message, preserving_proto_field_name=True).encode()
        else:
            body = reply.SerializeToString()
        frame = encode_frame(proto_id, serial, body, fmt=fmt, encrypt=self._encryptor(proto_id))
        if self.server.faults.take_corrupt():
            frame = corrupt_sha1(frame)
        delay = self.server.faults.reply_delay
        if delay > 0 and self._tg is not None and not self.refused:  # a refusal goes out now
            self._tg.start_soon(self._send_later, delay, frame, pushes)
        else:
            self._enqueue(frame)
            for proto_id, push in pushes:
                self.push(push, _sha1(push).digest(), proto_id)

    async def _send_later(self, delay: float, frame: bytes, pushes: Pushes) -> None:
        await anyio.sleep(delay)
        if not self.server.faults.stall:
            self._enqueue(frame)
            for proto_id, push in pushes:
                self.push(push, _sha1(push).digest(), proto_id)

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

    def _json_push(self, body: bytes, proto_id: int = _UPDATE_TICKER) -> bytes:
        message = _PUSH_RESPONSES[proto_id].FromString(body)
        return json_format.MessageToJson(message, preserving_proto_field_name=True).encode()

    def push(self, body: bytes, digest: bytes, proto_id: int = _UPDATE_TICKER) -> None:
        """Queue one push (a protobuf body and its SHA1; a 3011 unless told) without waiting."""
        if self.push_fmt == 1:
            body = self._json_push(body, proto_id)
            digest = _sha1(body).digest()
        serial = self._next_serial()
        if self.server.faults.corrupt_push(serial):
            digest = corrupt_digest(digest)
        aes = self.aes
        if aes is not None:
            body = aes.encrypt(body)
        header = pack_header(proto_id, serial, len(body), digest, self.push_fmt)
        self._enqueue(header + body)

    async def prepare_bulk(
        self, bodies: Sequence[bytes], digests: Sequence[bytes], proto_id: int = _UPDATE_TICKER
    ) -> Bulk:
        """:meth:`bulk_chunks`, yielding to other tasks while bodies are converted or encrypted."""
        aes = self.aes
        if self.push_fmt == 1 or aes is not None:
            wire: list[bytes] = []
            sums: list[bytes] = []
            for start in range(0, len(bodies), _BATCH):
                part, part_sums = self._wire_bodies(
                    bodies[start : start + _BATCH], digests[start : start + _BATCH], proto_id
                )
                wire += part
                sums += part_sums
                await anyio.lowlevel.checkpoint()
            bodies, digests = wire, sums
        return self._frame_bulk(bodies, digests, proto_id)

    def bulk_chunks(
        self, bodies: Sequence[bytes], digests: Sequence[bytes], proto_id: int = _UPDATE_TICKER
    ) -> Bulk:
        """Frames for a burst, with this connection's serials, joined into ~CHUNK-byte chunks.

        ``bodies`` are protobuf 3011 bodies and ``digests`` their SHA1s; they are converted to
        JSON and encrypted as this connection needs.
        """
        return self._frame_bulk(*self._wire_bodies(bodies, digests, proto_id), proto_id)

    def _wire_bodies(
        self, bodies: Sequence[bytes], digests: Sequence[bytes], proto_id: int = _UPDATE_TICKER
    ) -> tuple[Sequence[bytes], Sequence[bytes]]:
        """The bodies as they go on this connection's wire, and the SHA1s of their plaintext."""
        if self.push_fmt == 1:
            bodies = [self._json_push(b, proto_id) for b in bodies]
            digests = [_sha1(b).digest() for b in bodies]
        aes = self.aes
        if aes is not None:
            encrypt = aes.encrypt
            bodies = [encrypt(b) for b in bodies]
        return bodies, digests

    def _frame_bulk(
        self, bodies: Sequence[bytes], digests: Sequence[bytes], proto_id: int = _UPDATE_TICKER
    ) -> Bulk:
        fmt = self.push_fmt
        faults = self.server.faults
        corrupting = faults.corrupt_every > 0 or faults.corrupt_pushes > 0
        chunks: Bulk = []
        parts: list[bytes] = []
        size = 0
        serial = self._serial
        for body, digest in zip(bodies, digests, strict=True):
            serial = serial + 1 if serial < _U32 else 1
            sha = corrupt_digest(digest) if corrupting and faults.corrupt_push(serial) else digest
            parts.append(pack_header(proto_id, serial, len(body), sha, fmt))
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


def _reads_as_init_connect(body: bytes) -> bool:
    """True when ``body`` is a plain-text InitConnect request, protobuf or JSON (RSA ciphertext
    never reads as either)."""
    if body[:1] == b"{":
        try:
            return "c2s" in json.loads(body)
        except (ValueError, TypeError):
            return False
    request = init_connect_pb2.Request()
    try:
        request.ParseFromString(body)
    except Exception:
        return False
    return request.HasField("c2s") and request.c2s.HasField("clientID")

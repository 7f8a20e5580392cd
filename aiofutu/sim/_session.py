"""One client connection of the simulator: read frames, answer requests, send pushes.

Requests are handled in arrival order by the reader task; the answer (and any first-push that
goes with it) is put on the connection's :class:`~aiofutu.sim._wire.Outbox`, which a writer task
drains. Nothing here blocks on the socket except those two tasks, so a client that stops reading
cannot stall the market generator or other clients.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import socket
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import SocketAttribute
from google.protobuf import json_format

from .._codec import FrameDecoder, encode_frame
from .._pb import (
    common_pb2,
    get_global_state_pb2,
    init_connect_pb2,
    keep_alive_pb2,
    qot_common_pb2,
    qot_get_sub_info_pb2,
    qot_get_ticker_pb2,
    qot_reg_qot_push_pb2,
    qot_sub_pb2,
    qot_update_ticker_pb2,
)
from ..codes import format_code
from ..enums import MARKET_BY_WIRE, Market, ProtoId, SubType
from ..errors import RemoteProtocolError
from ._market import market_states
from ._scenarios import ErrCode, corrupt_sha1
from ._wire import CHUNK, Outbox, pack_header

if TYPE_CHECKING:
    from anyio.abc import SocketStream, TaskGroup
    from google.protobuf.message import Message

    from ._server import Simulator

__all__ = ("Session", "SubKey")

logger = logging.getLogger("aiofutu.sim")

#: A subscription: (code string such as ``"HK.00700"``, SubType wire value).
SubKey = tuple[str, int]
_Result = tuple["Message", list[bytes]]  # the Response, and 3011 push bodies to send after it

TICKER = SubType.TICKER.wire
_UPDATE_TICKER = int(ProtoId.QOT_UPDATE_TICKER)
_SUB_TYPES = frozenset(s.wire for s in SubType if s is not SubType.NONE)
_SUB_TYPE_NAMES = {s.wire: s.value for s in SubType}
_U32 = 0xFFFFFFFF
_sha1 = hashlib.sha1


def _fail(message: str, code: ErrCode = ErrCode.INVALID_REQUEST) -> _Result:
    # Every *_pb2.Response shares the envelope's field numbers, so any of them will do.
    return keep_alive_pb2.Response(retType=-1, retMsg=message, errCode=int(code)), []


def _ok(response: Any) -> _Result:
    response.retType = 0
    response.s2c.SetInParent()  # S2C present even when empty (Qot_Sub, RegQotPush)
    return response, []


def _security_code(sec: qot_common_pb2.Security) -> str | None:
    market = MARKET_BY_WIRE.get(sec.market)
    if market is None or market is Market.NONE or not sec.code:
        return None
    return format_code(sec.market, sec.code)


def _parse_pairs(
    securities: Sequence[qot_common_pb2.Security], sub_types: Iterable[int]
) -> list[SubKey] | str:
    """Validated, de-duplicated subscription keys, or an error message."""
    if not securities:
        return "securityList is empty"
    types = list(dict.fromkeys(sub_types))
    if not types:
        return "subTypeList is empty"
    bad = [t for t in types if t not in _SUB_TYPES]
    if bad:
        return f"unknown SubType value(s) {bad}"
    codes: list[str] = []
    for sec in securities:
        code = _security_code(sec)
        if code is None:
            return f"invalid security (market={sec.market}, code={sec.code!r})"
        codes.append(code)
    return [(c, t) for c in dict.fromkeys(codes) for t in types]


def _describe(key: SubKey) -> str:
    return f"{key[0]} {_SUB_TYPE_NAMES.get(key[1], key[1])}"


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
                        reply = _fail(f"invalid packet: {exc.reason}")[0]
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
        if fmt not in (0, 1):
            result = _fail(f"unsupported body format {fmt} (0 = protobuf, 1 = JSON)")
            self._send(proto_id, serial, 0, result[0], [])
            return
        entry = _HANDLERS.get(proto_id)
        if entry is None:
            result = _fail(f"unknown protocol id {proto_id}", ErrCode.UNKNOWN_PROTO)
        elif not self.ready and proto_id != ProtoId.INIT_CONNECT:
            result = _fail(
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
                result = _fail(f"cannot parse the request body of protocol {proto_id}: {exc}")
            else:
                if request.HasField("c2s"):
                    result = handler(self, request.c2s)
                else:
                    result = _fail(f"protocol {proto_id}: the request has no c2s")
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

    def _enqueue(self, data: bytes) -> None:
        outbox = self.outbox
        outbox.put_nowait(data)
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
        header = pack_header(_UPDATE_TICKER, self._next_serial(), len(body), digest, self.push_fmt)
        self._enqueue(header + body)

    def bulk_chunks(self, bodies: Sequence[bytes], digests: Sequence[bytes]) -> list[bytes]:
        """Frames for a burst, with this connection's serials, joined into ~CHUNK-byte chunks."""
        fmt = self.push_fmt
        if fmt == 1:
            bodies = [self._json_push(b) for b in bodies]
            digests = [_sha1(b).digest() for b in bodies]
        chunks: list[bytes] = []
        parts: list[bytes] = []
        size = 0
        serial = self._serial
        for body, digest in zip(bodies, digests, strict=True):
            serial = serial + 1 if serial < _U32 else 1
            parts.append(pack_header(_UPDATE_TICKER, serial, len(body), digest, fmt))
            parts.append(body)
            size += 44 + len(body)
            if size >= CHUNK:
                chunks.append(b"".join(parts))
                parts = []
                size = 0
        if parts:
            chunks.append(b"".join(parts))
        self._serial = serial
        return chunks

    async def send_bulk(self, chunks: Sequence[bytes]) -> bool:
        """Write ``chunks`` with backpressure; True once all of it went to the socket."""
        high_water = self.server.config.burst_high_water
        for chunk in chunks:
            if not await self.outbox.put(chunk, high_water):
                return False
        return await self.outbox.drain()

    def _first_pushes(self, keys: Iterable[SubKey]) -> list[bytes]:
        bodies = []
        for code, sub_type in keys:
            if sub_type == TICKER and (code, sub_type) in self.pushes:
                sec = self.server.market.security(code)
                if sec.ring:
                    encoder = self.server.encoder(sec)
                    bodies.append(encoder.body((sec.ring[-1].SerializeToString(),)))
        return bodies

    def _register(self, keys: Iterable[SubKey], on: bool) -> list[SubKey]:
        """(Un)register push for subscribed keys; returns the keys that changed."""
        changed = []
        for key in keys:
            if on and key in self.subs and key not in self.pushes:
                self.pushes.add(key)
                changed.append(key)
            elif not on and key in self.pushes:
                self.pushes.discard(key)
                changed.append(key)
            if key[1] == TICKER:
                self.server.watch(self, key[0], key in self.pushes)
        return changed

    # ---- handlers -------------------------------------------------------------------------

    def _init_connect(self, c2s: init_connect_pb2.C2S) -> _Result:
        if not self.ready:
            self.ready = True
            self.client_id = c2s.clientID
            self.push_fmt = c2s.pushProtoFmt if c2s.pushProtoFmt in (0, 1) else 0
            logger.debug("connection %d: InitConnect from %r", self.conn_id, c2s.clientID)
        cfg = self.server.config
        response = init_connect_pb2.Response(
            s2c=init_connect_pb2.S2C(
                serverVer=cfg.server_ver,
                loginUserID=cfg.login_user_id,
                connID=self.conn_id,
                connAESKey=self.aes_key,
                keepAliveInterval=cfg.keepalive_interval,
            )
        )
        return _ok(response)

    def _keep_alive(self, c2s: keep_alive_pb2.C2S) -> _Result:
        s2c = keep_alive_pb2.S2C(time=int(time.time()))
        return _ok(keep_alive_pb2.Response(s2c=s2c))

    def _global_state(self, c2s: get_global_state_pb2.C2S) -> _Result:
        cfg = self.server.config
        now = time.time()
        s2c = get_global_state_pb2.S2C(
            qotLogined=True,
            trdLogined=False,
            serverVer=cfg.server_ver,
            serverBuildNo=cfg.server_build_no,
            time=int(now),
            localTime=now,
            programStatus=common_pb2.ProgramStatus(type=common_pb2.ProgramStatusType_Ready),
            qotSvrIpAddr="127.0.0.1",
            trdSvrIpAddr="127.0.0.1",
            connID=self.conn_id,
            **market_states(now),
        )
        return _ok(get_global_state_pb2.Response(s2c=s2c))

    def _sub(self, c2s: qot_sub_pb2.C2S) -> _Result:
        if c2s.isUnsubAll:
            return self._unsubscribe(list(self.subs))
        keys = _parse_pairs(c2s.securityList, c2s.subTypeList)
        if isinstance(keys, str):
            return _fail(f"Qot_Sub: {keys}")
        if not c2s.isSubOrUnSub:
            return self._unsubscribe(keys)
        server = self.server
        quota = server.config.sub_quota
        used = server.used_quota()
        new = {k for k in keys if k not in used}
        if len(used) + len(new) > quota:
            return _fail(
                f"subscription quota exhausted: {len(used)} of {quota} used, "
                f"this request needs {len(new)} more",
                ErrCode.QUOTA_EXHAUSTED,
            )
        now = time.monotonic()
        for key in keys:
            self.subs.setdefault(key, now)
            server.market.activate(key[0])
        if c2s.HasField("isRegOrUnRegPush"):
            self._register(keys, c2s.isRegOrUnRegPush)
        response, _ = _ok(qot_sub_pb2.Response())
        first = c2s.isFirstPush if c2s.HasField("isFirstPush") else True
        return response, self._first_pushes(keys) if first else []

    def _unsubscribe(self, keys: list[SubKey]) -> _Result:
        min_age = self.server.config.unsub_min_age
        now = time.monotonic()
        young = [(k, now - self.subs[k]) for k in keys if k in self.subs]
        young = [(k, age) for k, age in young if age < min_age]
        if young:
            key, age = young[0]
            return _fail(
                "unsubscribe refused: a subscription can only be cancelled one minute after it "
                f"was made (here {min_age:g} s); {_describe(key)} is {age:.1f} s old",
                ErrCode.UNSUB_TOO_EARLY,
            )
        self._register(keys, False)
        for key in keys:
            self.subs.pop(key, None)
        return _ok(qot_sub_pb2.Response())

    def _reg_push(self, c2s: qot_reg_qot_push_pb2.C2S) -> _Result:
        keys = _parse_pairs(c2s.securityList, c2s.subTypeList)
        if isinstance(keys, str):
            return _fail(f"Qot_RegQotPush: {keys}")
        changed = self._register(keys, c2s.isRegOrUnReg)
        response, _ = _ok(qot_reg_qot_push_pb2.Response())
        first = c2s.isFirstPush if c2s.HasField("isFirstPush") else True
        return response, self._first_pushes(changed) if c2s.isRegOrUnReg and first else []

    def _sub_info(self, c2s: qot_get_sub_info_pb2.C2S) -> _Result:
        server = self.server
        sessions = server.sessions() if c2s.isReqAllConn else [self]
        conn_list = []
        for session in sessions:
            by_type: dict[int, list[str]] = {}
            for code, sub_type in session.subs:
                by_type.setdefault(sub_type, []).append(code)
            info = qot_common_pb2.ConnSubInfo(
                usedQuota=len(session.subs), isOwnConnData=session is self
            )
            for sub_type in sorted(by_type):
                entry = info.subInfoList.add(subType=sub_type)
                for code in by_type[sub_type]:
                    entry.securityList.append(server.market.security(code).security)
            conn_list.append(info)
        used = len(server.used_quota())
        s2c = qot_get_sub_info_pb2.S2C(
            connSubInfoList=conn_list,
            totalUsedQuota=used,
            remainQuota=max(server.config.sub_quota - used, 0),
        )
        return _ok(qot_get_sub_info_pb2.Response(s2c=s2c))

    def _get_ticker(self, c2s: qot_get_ticker_pb2.C2S) -> _Result:
        code = _security_code(c2s.security) if c2s.HasField("security") else None
        if code is None:
            return _fail("Qot_GetTicker: a valid security is required")
        if (code, TICKER) not in self.subs:
            return _fail(
                f"{code} is not subscribed to TICKER on this connection: "
                "subscribe with SubType TICKER (4) before requesting ticks",
                ErrCode.NOT_SUBSCRIBED,
            )
        max_ticks = self.server.config.max_ticks
        if c2s.maxRetNum <= 0:
            return _fail(f"maxRetNum must be between 1 and {max_ticks}, got {c2s.maxRetNum}")
        sec = self.server.market.security(code)
        ring = sec.ring
        count = min(c2s.maxRetNum, max_ticks, len(ring))
        s2c = qot_get_ticker_pb2.S2C(security=sec.security, name=sec.name)
        s2c.tickerList.extend(itertools.islice(ring, len(ring) - count, None))
        return _ok(qot_get_ticker_pb2.Response(s2c=s2c))


_Handler = Callable[[Session, Any], _Result]
_HANDLERS: dict[int, tuple[type[Message], _Handler]] = {
    ProtoId.INIT_CONNECT: (init_connect_pb2.Request, Session._init_connect),
    ProtoId.GET_GLOBAL_STATE: (get_global_state_pb2.Request, Session._global_state),
    ProtoId.KEEP_ALIVE: (keep_alive_pb2.Request, Session._keep_alive),
    ProtoId.QOT_SUB: (qot_sub_pb2.Request, Session._sub),
    ProtoId.QOT_REG_QOT_PUSH: (qot_reg_qot_push_pb2.Request, Session._reg_push),
    ProtoId.QOT_GET_SUB_INFO: (qot_get_sub_info_pb2.Request, Session._sub_info),
    ProtoId.QOT_GET_TICKER: (qot_get_ticker_pb2.Request, Session._get_ticker),
}

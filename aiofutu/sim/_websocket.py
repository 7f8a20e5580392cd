"""OpenD's WebSocket gateway in the simulator: what the npm ``futu-api`` SDK talks to.

A second listener beside the TCP one (``SimConfig.websocket_port``). Its connections are
:class:`~aiofutu.sim._session.Session` objects like the TCP ones, registered with the same
:class:`~aiofutu.sim.Simulator`, so they share the market, the subscription quota and the push
fan-out: a JavaScript client and a Python client get the same ticks with the same sequences.
Only the bytes differ. The WebSocket layer is ``wsproto`` (sans-IO, imported only when the
gateway is asked for); the packets inside it are :mod:`aiofutu._wscodec`'s. Requests go to the
same handlers as on TCP (``Session._dispatch``); replies and pushes are framed here.

What the gateway does, and its choices where OpenD's behaviour is not known:

* Any path, no subprotocol, no ``Origin`` needed; permessage-deflate is declined.
* Init (cmd 1) must come first. With ``websocket_key`` set, its ``websocketKey`` must be the
  key's MD5 hex digest (any case). A wrong key gets **no answer** (Futu's samples say a wrong key
  makes the connection time out) and is counted in ``Simulator.handshakes["websocket-refused"]``;
  the connection stays open and a later Init with the right key is answered. Without a key any
  Init is accepted. Accepted ones are counted in ``handshakes["websocket"]``.
* Every reply echoes the request's cmd and section and carries a body with ``retType``; a
  failure also has header ``error`` = retType and an ASCII ``errmsg`` (``retMsg``, cut to 20).
  Pushes use section 0. No KeepAlive is needed; idle connections stay open.
* A malformed packet (short header, wrong sign, unknown cmd, an unparseable body) gets an error
  reply (cmd and section 0 when the header is too short to name them) and the connection goes
  on. A text message closes the connection with 1003, a message over
  ``websocket_max_message`` with 1009, and a WebSocket protocol violation with wsproto's code
  (1002, 1007); a request that is not a WebSocket upgrade gets HTTP 400. Ping is answered with
  Pong, Close with Close.
* No SHA1 and no encryption exist here, so the simulator's corrupt-SHA1 faults apply to TCP only;
  ``stall`` (which also leaves Pings unanswered), ``reply_delay``, ``drop_after_frames`` and
  ``refuse_connections`` apply to both. ``websocket_ssl`` serves ``wss://`` (TLS first).
"""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, cast

import anyio
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSStream

from .._pb import init_websocket_pb2
from .._wscodec import (
    CMD_INIT,
    WsRequest,
    ascii_errmsg,
    decode_init_request,
    decode_request,
    encode_reply,
    key_matches,
    websocket_key_digest,
)
from ..enums import ProtoId
from ..errors import MissingDependency, RemoteProtocolError
from ._handlers import Pushes, fail
from ._scenarios import ErrCode
from ._session import Session
from ._wire import CHUNK

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from anyio.abc import Listener, SocketStream
    from google.protobuf.message import Message
    from wsproto import WSConnection
    from wsproto.events import Event

    from ._handlers import Pushes
    from ._replies import RawReply
    from ._server import Simulator
    from ._session import Bulk

__all__ = ("WebSocketGateway", "WebSocketSession", "websocket_gateway")

logger = logging.getLogger("aiofutu.sim")

_UPDATE_TICKER = int(ProtoId.QOT_UPDATE_TICKER)
#: Close codes (RFC 6455 section 7.4.1).
_UNSUPPORTED_DATA = 1003
_MESSAGE_TOO_BIG = 1009
#: The answer to bytes that cannot start a WebSocket upgrade (a TCP OpenD client, say).
#: Seconds a ``wss://`` client has to complete the TLS handshake.
_TLS_HANDSHAKE_TIMEOUT = 10.0
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


def _wsproto() -> Any:
    """The ``wsproto`` package, or a MissingDependency that says how to get it."""
    try:
        import wsproto
        import wsproto.events
        import wsproto.utilities
    except ImportError:
        raise MissingDependency(
            'the simulator\'s WebSocket gateway needs wsproto: pip install "aiofutu[ws]"'
        ) from None
    return wsproto


@asynccontextmanager
async def websocket_gateway(server: Simulator) -> AsyncIterator[WebSocketGateway | None]:
    """The gateway's listener while the block runs, if ``websocket_port`` is set (else None)."""
    cfg = server.config
    if cfg.websocket_port is None:
        yield None
        return
    _wsproto()  # fail before binding
    listener = await anyio.create_tcp_listener(local_host=cfg.host, local_port=cfg.websocket_port)
    async with listener:
        gateway = WebSocketGateway(server, listener)
        logger.info(
            "OpenD simulator WebSocket gateway on %s://%s:%d%s",
            "ws" if cfg.websocket_ssl is None else "wss",
            cfg.host,
            gateway.port,
            " (websocket key required)" if cfg.websocket_key else "",
        )
        yield gateway


class WebSocketGateway:
    """The WebSocket listener of one simulator; :meth:`serve` accepts connections."""

    def __init__(self, server: Simulator, listener: Listener[SocketStream]) -> None:
        self.server = server
        self.listener = listener
        self.port: int = listener.extra(SocketAttribute.local_port)
        server.websocket_port = self.port
        key = server.config.websocket_key
        #: The MD5 hex digest Init must carry, or None when any Init is accepted.
        self.key_digest: str | None = websocket_key_digest(key) if key else None

    async def serve(self) -> None:
        """Accept connections until cancelled."""
        await self.listener.serve(self._handle)

    async def _handle(self, stream: SocketStream) -> None:
        server = self.server
        if server.faults.refuse_connections:
            await stream.aclose()
            return
        context = server.config.websocket_ssl
        if context is not None:  # wss://: the TLS handshake first, bounded
            try:
                with anyio.fail_after(_TLS_HANDSHAKE_TIMEOUT):
                    tls = await TLSStream.wrap(
                        stream, server_side=True, ssl_context=context, standard_compatible=False
                    )
            except (TimeoutError, OSError, anyio.BrokenResourceError, anyio.EndOfStream) as exc:
                logger.warning("WebSocket gateway: TLS handshake failed: %r", exc)
                await anyio.aclose_forcefully(stream)
                return
            stream = cast("SocketStream", tls)  # it passes the socket's attributes through
        await server.serve_session(lambda conn_id: WebSocketSession(self, stream, conn_id))


class WebSocketSession(Session):
    """One WebSocket connection: wsproto for the WebSocket layer, ``_wscodec`` packets in it.

    It reuses :class:`Session` whole (state, outbox, writer, dispatch to the handlers) and
    replaces the TCP-specific parts: the read loop and the framing of replies and pushes.
    """

    def __init__(self, gateway: WebSocketGateway, stream: SocketStream, conn_id: int) -> None:
        super().__init__(gateway.server, stream, conn_id, aes_key="")
        self.rsa = None  # no RSA or AES on this transport, whatever the TCP side requires
        self.gateway = gateway
        wsproto = _wsproto()
        self._events = wsproto.events
        self._ws: WSConnection = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
        self._ws_error = wsproto.utilities.RemoteProtocolError
        self._states = wsproto.connection.ConnectionState
        self._parts: list[bytes] = []
        self._size = 0
        self._max_message = self.server.config.websocket_max_message
        #: The connection is going away (a Close was sent or answered).
        self._closing = False
        self._prefix: bytes | None = b""  # the first bytes, until they read as "GET "

    # ---- reading --------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        ws = self._ws
        while not self._closing:
            try:
                data = await self.stream.receive(CHUNK)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                return
            except OSError as exc:
                logger.debug("connection %d: read failed: %r", self.conn_id, exc)
                return
            if self._prefix is not None and not self._starts_upgrade(data):
                break
            try:
                ws.receive_data(data)
                for event in ws.events():
                    if not self._on_event(event):
                        break
            except self._ws_error as exc:  # not a WebSocket upgrade: HTTP 400 and close
                logger.warning("connection %d: bad WebSocket handshake: %s", self.conn_id, exc)
                if exc.event_hint is not None:
                    self._raw(ws.send(exc.event_hint))
                self._closing = True
        self.outbox.finish()  # the writer closes the connection once the last bytes are out
        await self.outbox.drain()

    def _starts_upgrade(self, data: bytes) -> bool:
        """False (after a 400 reply) when the first bytes cannot begin ``GET / HTTP/1.1``.

        Without this, h11 would wait for a line ending that a binary client never sends.
        """
        head = (self._prefix or b"") + data
        if not b"GET ".startswith(head[:4]):
            logger.warning("connection %d: not a WebSocket upgrade: %r", self.conn_id, head[:16])
            self._raw(_BAD_REQUEST)
            return False
        self._prefix = head if len(head) < 4 else None
        return True

    def _on_event(self, event: Event) -> bool:
        """Handle one wsproto event; False once the connection is closing."""
        ev = self._events
        if isinstance(event, ev.Request):
            self._raw(self._ws.send(ev.AcceptConnection()))  # no extensions: no deflate
            logger.debug("connection %d: WebSocket upgrade on %s", self.conn_id, event.target)
        elif isinstance(event, ev.BytesMessage):
            self._size += len(event.data)
            if self._size > self._max_message:
                self._close(_MESSAGE_TOO_BIG, f"message over {self._max_message} bytes")
                return False
            self._parts.append(bytes(event.data))
            if event.message_finished:
                message = b"".join(self._parts)
                self._parts = []
                self._size = 0
                self._on_message(message)
        elif isinstance(event, ev.TextMessage):
            self._close(_UNSUPPORTED_DATA, "binary messages only")
        elif isinstance(event, ev.Ping):
            if not self.server.faults.stall:  # a stalled OpenD answers nothing, Pings included
                self._raw(self._ws.send(event.response()))
        elif isinstance(event, ev.CloseConnection):
            state = self._ws.state
            if state is self._states.REMOTE_CLOSING:  # the client's Close: echo it
                self._raw(self._ws.send(event.response()))
            elif state is self._states.OPEN:  # wsproto found a broken frame (1002, 1007)
                self._close(event.code, event.reason or "WebSocket protocol error")
            if event.code not in (1000, 1005):
                logger.info("connection %d: closed (%d)", self.conn_id, event.code)
            self._closing = True
        return not self._closing

    def _close(self, code: int, reason: str) -> None:
        logger.warning("connection %d: %s; closing it (%d)", self.conn_id, reason, code)
        if self._ws.state is self._states.OPEN:
            self._raw(self._ws.send(self._events.CloseConnection(code=code, reason=reason)))
        self._closing = True

    def _on_message(self, message: bytes) -> None:
        stalled = self.server.faults.stall
        try:
            request = decode_request(message, max_size=self._max_message)
        except RemoteProtocolError as exc:
            logger.info("connection %d: invalid packet: %s", self.conn_id, exc)
            if not stalled:
                reply = fail(f"invalid packet: {exc.reason}")[0]
                self._send(exc.proto_id or 0, exc.serial or 0, 0, reply, [])
            return
        if request.cmd == CMD_INIT:
            if not stalled:
                self._init(request)
        elif not self.ready:
            if not stalled:
                reply = fail(
                    f"Init (cmd 1) must be the first request on a WebSocket connection; "
                    f"got {request.cmd}",
                    ErrCode.NOT_INITIALIZED,
                )[0]
                self._send(request.cmd, request.section, 0, reply, [])
        else:
            self._dispatch(request.cmd, request.section, 0, request.body)

    def _init(self, request: WsRequest) -> None:
        try:
            c2s = decode_init_request(request)
        except RemoteProtocolError as exc:
            reply = init_websocket_pb2.Response(
                retType=-1, retMsg=exc.reason, errCode=int(ErrCode.INVALID_REQUEST)
            )
            self._send(CMD_INIT, request.section, 0, reply, [])
            return
        digest = self.gateway.key_digest
        if digest is not None and not key_matches(c2s.websocketKey, digest):
            # OpenD's samples: a wrong key makes the connection time out. So, no answer.
            self.server.handshakes["websocket-refused"] += 1
            logger.warning(
                "connection %d: Init with a wrong websocket key (%s); not answered, as by OpenD",
                self.conn_id,
                "none given" if not c2s.websocketKey else "another key's MD5",
            )
            return
        if not self.ready:
            self.ready = True
            self.client_id = c2s.clientID or f"WebSocket {c2s.programmingLanguage or '?'}"
            self.server.handshakes["websocket"] += 1
            logger.debug("connection %d: Init from %s", self.conn_id, self.client_id)
        s2c = init_websocket_pb2.S2C(serverTime=int(time.time()), connID=self.conn_id)
        reply = init_websocket_pb2.Response(retType=0, s2c=s2c)
        self._send(CMD_INIT, request.section, 0, reply, [])

    # ---- writing --------------------------------------------------------------------------

    def _raw(self, data: bytes) -> None:
        """Queue WebSocket bytes that are not a packet (handshake, Pong, Close): not counted."""
        self.outbox.put_nowait(data)

    def _message(self, packet: bytes) -> bytes | None:
        """``packet`` as one binary WebSocket message; None once the connection is closing."""
        ws = self._ws
        if ws.state is not self._states.OPEN:
            return None
        return ws.send(self._events.BytesMessage(data=packet))

    def _send(
        self, proto_id: int, serial: int, fmt: int, reply: Message | RawReply, pushes: Pushes
    ) -> None:
        ret_type = getattr(reply, "retType", 0)
        errmsg = ascii_errmsg(getattr(reply, "retMsg", "")) if ret_type else ""
        packet = encode_reply(
            proto_id, serial, reply.SerializeToString(), error=ret_type, errmsg=errmsg
        )
        frame = self._message(packet)
        if frame is None:
            return
        delay = self.server.faults.reply_delay
        if delay > 0 and self._tg is not None:
            self._tg.start_soon(self._send_later, delay, frame, pushes)
        else:
            self._enqueue(frame)
            for push_id, push in pushes:
                self.push(push, b"", push_id)

    def push(self, body: bytes, digest: bytes, proto_id: int = _UPDATE_TICKER) -> None:
        """Queue one push (section 0); ``digest`` is unused (no SHA1 on this transport)."""
        frame = self._message(encode_reply(proto_id, 0, body))
        if frame is not None:
            self._enqueue(frame)

    def _frame_bulk(
        self, bodies: Sequence[bytes], digests: Sequence[bytes], proto_id: int = _UPDATE_TICKER
    ) -> Bulk:
        # With drop_after_frames, one message per chunk: the budget then never splits a chunk.
        per_chunk = CHUNK if self.server.faults.drop_after_frames <= 0 else 0
        chunks: Bulk = []
        parts: list[bytes] = []
        size = 0
        for body in bodies:
            frame = self._message(encode_reply(proto_id, 0, body))
            if frame is None:
                break
            parts.append(frame)
            size += len(frame)
            if size >= per_chunk:
                chunks.append((b"".join(parts), len(parts)))
                parts = []
                size = 0
        if parts:
            chunks.append((b"".join(parts), len(parts)))
        return chunks

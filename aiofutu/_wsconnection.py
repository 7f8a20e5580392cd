"""The connection over OpenD's WebSocket gateway (``transport="websocket"``).

A :class:`~aiofutu._connection.Connection` whose bytes are WebSocket messages: the same
requests, reply waiters, push routing, backpressure and loss handling, with the transport's
differences in :class:`~aiofutu._wsframing.WsClientFraming` (sans-IO) and here:

* an HTTP upgrade (``GET /``) before anything else, then Init (cmd 1) with the websocket key's
  MD5 hex digest in place of InitConnect; no RSA or AES (TLS, ``wss://``, is the encryption);
* replies are matched by section alone, as the official JavaScript SDK does;
* there is no KeepAlive on this transport: a WebSocket Ping every ``ping_interval`` seconds,
  unanswered within as long again, declares the link dead (a Pong proves it is alive);
* a Close frame is sent when the client closes.

Everything above the connection (client, streams, reconnect, backfill) is the same on both
transports.
"""

from __future__ import annotations

import logging
import math
import ssl as _ssl
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from . import _protocol
from ._codec import DEFAULT_MAX_BODY
from ._connection import Connection, ConnectionInfo
from ._pb import get_global_state_pb2, init_connect_pb2, init_websocket_pb2
from ._transport import open_pipe
from ._wscodec import CMD_INIT, REPLY_HEADER_SIZE, websocket_key_digest
from ._wsframing import WsClientFraming, load_wsproto
from .enums import ProtoId
from .errors import (
    ClientClosed,
    ConfigurationError,
    ConnectError,
    ConnectionLost,
    FutuError,
    OpenDError,
    RemoteProtocolError,
    RequestTimeout,
)

if TYPE_CHECKING:
    from ._crypto import RsaKey

__all__ = ("TRANSPORTS", "WebSocketOptions", "WsConnection", "new_connection")

logger = logging.getLogger("aiofutu.connection")

TRANSPORTS = ("tcp", "websocket")
#: Seconds between two WebSocket pings (no KeepAlive exists on this transport).
DEFAULT_PING_INTERVAL = 10.0
#: At most this long for GetGlobalState after Init (the server version; 0 without it).
_VERSION_TIMEOUT = 2.0
#: How long closing waits to hand the Close frame to a busy socket.
_CLOSE_SEND_TIMEOUT = 0.2


class WebSocketOptions:
    """Checked ``connect()`` options of the WebSocket transport."""

    __slots__ = ("key", "ping_interval", "ssl")

    def __init__(self, key: str | None, ssl: _ssl.SSLContext | None, ping_interval: float) -> None:
        self.key = key
        self.ssl = ssl
        self.ping_interval = ping_interval

    @classmethod
    def check(
        cls,
        transport: str,
        websocket_key: str | None,
        ssl: bool | _ssl.SSLContext | None,
        ping_interval: float,
        *,
        encrypted: bool,
    ) -> WebSocketOptions | None:
        """The options for ``transport`` (None for TCP), or a :class:`ConfigurationError`."""
        if transport not in TRANSPORTS:
            raise ConfigurationError(f"transport must be 'tcp' or 'websocket', got {transport!r}")
        if websocket_key is not None and not isinstance(websocket_key, str):
            raise ConfigurationError(f"websocket_key must be a str, got {websocket_key!r}")
        if ssl is not None and not isinstance(ssl, (bool, _ssl.SSLContext)):
            raise ConfigurationError(f"ssl must be a bool or an ssl.SSLContext, got {ssl!r}")
        if (
            isinstance(ping_interval, bool)
            or not isinstance(ping_interval, (int, float))
            or not 0 < ping_interval < math.inf
        ):
            raise ConfigurationError(
                f"websocket_ping_interval must be a positive number, got {ping_interval!r}"
            )
        if transport == "tcp":
            if websocket_key is not None or ssl not in (None, False):
                raise ConfigurationError(
                    'websocket_key= and ssl= apply to transport="websocket" only (OpenD\'s TCP '
                    "API has no TLS; its encryption is rsa_private_key=)"
                )
            return None
        if encrypted:
            raise ConfigurationError(
                "rsa_private_key= does not apply to the WebSocket gateway (it has no RSA/AES "
                "encryption); use ssl= for TLS (wss://)"
            )
        load_wsproto()  # a missing extra fails here, not at the first connect
        context = _ssl.create_default_context() if ssl is True else ssl or None
        return cls(websocket_key, context, float(ping_interval))


class WsConnection(Connection):
    """One session with OpenD's WebSocket gateway, from the upgrade to close."""

    _match_cmd = False

    def __init__(
        self, options: WebSocketOptions, *, max_body: int = DEFAULT_MAX_BODY, **kwargs: Any
    ) -> None:
        super().__init__(max_body=max_body, **kwargs)
        self.options = options
        self._max_message = max_body + REPLY_HEADER_SIZE
        self._accepted: anyio.Event | None = None
        self._head = None  # the framing tells what a peer that is not a gateway is
        self._serial = _protocol.SerialCounter(1)  # sections 2, 3, ... (as the npm SDK)
        self._ws: WsClientFraming | None = None
        self._pongs = 0
        self._pong: anyio.Event | None = None

    async def open(
        self,
        tg: anyio.abc.TaskGroup,
        host: str,
        port: int,
        *,
        client_id: str,
        connect_timeout: float,
        rsa_key: RsaKey | None = None,
    ) -> ConnectionInfo:
        """Connect (TLS with ``options.ssl``), upgrade, send Init, start the pings."""
        if rsa_key is not None:
            raise ConfigurationError("the WebSocket gateway has no RSA encryption; use ssl=")
        where = f"{'wss' if self.options.ssl is not None else 'ws'}://{host}:{port}"
        ws = self._ws = WsClientFraming(host, port, max_message=self._max_message)
        self._decoder = ws
        accepted = self._accepted = anyio.Event()
        ws.on_accept = accepted.set
        try:
            with anyio.fail_after(connect_timeout):
                pipe = await open_pipe(
                    host, port, self._on_data, self._on_pipe_closed, ssl=self.options.ssl
                )
        except TimeoutError:
            raise ConnectError(
                f"timed out after {connect_timeout:g}s connecting to OpenD's WebSocket gateway "
                f"at {where}"
            ) from None
        except (OSError, anyio.BrokenResourceError) as exc:  # ssl.SSLError is an OSError
            cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
            detail = (cause.strerror if isinstance(cause, OSError) else None) or cause
            raise ConnectError(
                f"cannot connect to OpenD's WebSocket gateway at {where}: {detail}"
            ) from None
        self._pipe = pipe
        self._tg = tg
        pipe.start(tg, f"aiofutu-reader-{self.id}")
        with anyio.move_on_after(connect_timeout) as scope:
            await self._transmit(ws.handshake())
            await accepted.wait()  # also set when the link is lost
        self._accepted = None
        if scope.cancelled_caught or self._error is not None:
            error = self._error
            await self.close()
            raise self._upgrade_failed(where, error, connect_timeout, ws.head) from None
        try:
            frame = await self.request_frame(
                CMD_INIT, self._init_body(client_id), timeout=connect_timeout
            )
            response = _protocol.decode_response(
                init_websocket_pb2.Response, frame.body, CMD_INIT, frame.serial
            )
            if not response.HasField("s2c"):
                raise ConnectError("its reply has no s2c")
            version = await self._server_version(min(connect_timeout, _VERSION_TIMEOUT))
        except FutuError as exc:
            await self.close()
            raise self._init_failed_ws(where, exc, connect_timeout) from None
        s2c = init_connect_pb2.S2C(
            connID=response.s2c.connID,
            serverVer=version,
            keepAliveInterval=max(1, math.ceil(self.options.ping_interval)),
        )
        self.info = ConnectionInfo(s2c)
        logger.info(
            "conn %d: connected to OpenD's WebSocket gateway %s (connID %d)",
            self.id,
            where,
            self.info.conn_id,
        )
        tg.start_soon(self._keepalive, name=f"aiofutu-ping-{self.id}")
        return self.info

    async def _server_version(self, timeout: float) -> int:
        """OpenD's version from GetGlobalState (Init does not say it); 0 if that fails."""
        try:
            state = await self.request(
                ProtoId.GET_GLOBAL_STATE,
                _protocol.global_state_request(0),
                get_global_state_pb2.Response,
                timeout=timeout,
            )
        except (OpenDError, RemoteProtocolError, RequestTimeout) as exc:
            logger.debug("conn %d: no server version from GetGlobalState: %s", self.id, exc)
            return 0
        return state.s2c.serverVer

    def _init_body(self, client_id: str) -> bytes:
        c2s = init_websocket_pb2.C2S(
            websocketKey=websocket_key_digest(self.options.key),
            clientID=client_id,
            programmingLanguage="Python",
        )
        return init_websocket_pb2.Request(c2s=c2s).SerializeToString()

    def _upgrade_failed(
        self, where: str, error: FutuError | None, timeout: float, head: bytes | None
    ) -> ConnectError:
        if error is None:
            return ConnectError(
                f"the server at {where} accepted the connection but did not answer the "
                f"WebSocket upgrade within {timeout:g}s (it is not OpenD's WebSocket gateway)"
            )
        if isinstance(error, ConnectionLost) and not head:
            return ConnectError(
                f"the server at {where} closed the connection without answering the WebSocket "
                "upgrade: it is not OpenD's WebSocket gateway (websocket_port in OpenD.xml; "
                "11111 is OpenD's TCP API port, for the default transport)"
            )
        reason = getattr(error, "reason", None) or str(error)
        return ConnectError(f"WebSocket upgrade to {where} failed: {reason}")

    def _init_failed_ws(self, where: str, exc: FutuError, timeout: float) -> ConnectError:
        if isinstance(exc, RequestTimeout):
            hint = (
                "OpenD does not answer an Init with a wrong websocket key: check websocket_key "
                "(OpenD is configured with its MD5, websocket_key_md5)"
                if self.options.key
                else "if OpenD is configured with a websocket key, pass websocket_key="
            )
            return ConnectError(
                f"OpenD's WebSocket gateway at {where} did not answer Init within {timeout:g}s; "
                + hint
            )
        if isinstance(exc, (ConnectionLost, ClientClosed)):
            return ConnectError(
                f"the server at {where} closed the connection without answering Init: {exc}"
            )
        reason = getattr(exc, "reason", None) or str(exc)
        return ConnectError(f"Init to OpenD's WebSocket gateway at {where} failed: {reason}")

    def _lose(self, error: FutuError, *, log: bool = True) -> None:
        super()._lose(error, log=log)
        for event in (self._accepted, self._pong):
            if event is not None:
                event.set()

    # -- the bytes ---------------------------------------------------------------------------

    def _encode(self, proto_id: int, serial: int, body: bytes) -> bytes:
        ws = self._ws
        if ws is None:
            raise ClientClosed("the WebSocket connection is not open")
        return ws.encode(proto_id, serial, body)

    def _on_data(self, data: bytes) -> Any:
        ws = self._ws
        assert ws is not None
        try:
            blocker = super()._on_data(data)
        finally:
            out = ws.take_outgoing()  # a Pong, the echo of a Close
            if out:
                self._write_soon(out)
        if ws.pongs != self._pongs:
            self._pongs = ws.pongs
            if self._pong is not None:
                self._pong.set()
        return blocker

    def _write_soon(self, data: bytes) -> None:
        """Write control frames from the reader, which cannot await."""
        pipe = self._pipe
        if pipe is None or self._error is not None:
            return
        if self._sending:
            self._outbox.append(data)
        elif pipe.try_write(data):
            self.bytes_out += len(data)
        elif self._tg is not None:
            self._tg.start_soon(self._transmit, data)

    async def close(self) -> None:
        """Send a Close frame (best effort, never waiting long), then close the socket."""
        ws, pipe = self._ws, self._pipe
        if ws is not None and pipe is not None and self._error is None and not self._sending:
            data = ws.close()
            if data and not pipe.try_write(data):
                with anyio.move_on_after(_CLOSE_SEND_TIMEOUT, shield=True):
                    try:
                        await pipe.send(data)
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                        pass
        await super().close()

    def _ended(self) -> bool:
        return self._error is not None

    async def _keepalive(self) -> None:
        """Ping every ``ping_interval``; no Pong within as long again means the link is dead."""
        ws = self._ws
        assert ws is not None
        interval = self.options.ping_interval
        while True:
            await anyio.sleep(interval)
            if self.closed:
                return
            pongs = ws.pongs
            self._pong = pong = anyio.Event()
            await self._transmit(ws.ping())
            with anyio.move_on_after(interval):
                await pong.wait()
            self._pong = None
            if ws.pongs == pongs and not self._ended():
                self._lose(
                    ConnectionLost(
                        f"OpenD did not answer a WebSocket ping (this transport's KeepAlive) "
                        f"within {interval:g}s; link dead"
                    )
                )
                await self._abort_pipe()
                return


def new_connection(websocket: WebSocketOptions | None, **options: Any) -> Connection:
    """A :class:`Connection` (TCP) or, with WebSocket options, a :class:`WsConnection`."""
    return Connection(**options) if websocket is None else WsConnection(websocket, **options)

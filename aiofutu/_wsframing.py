"""Sans-IO client side of OpenD's WebSocket gateway: bytes in, :class:`~aiofutu._codec.Frame` out.

:class:`WsClientFraming` stands where :class:`~aiofutu._codec.FrameDecoder` stands on TCP: the
connection feeds it received bytes and drains frames (``proto_id`` = the packet's cmd,
``serial`` = its section), and encodes requests through it. Underneath, ``wsproto`` does RFC
6455 (the upgrade, masking, fragments, Ping/Pong, Close) and :mod:`aiofutu._wscodec` the
``ft-v1.0`` packet in each binary message. Control frames the peer asks for (a Pong for its
Ping, the echo of its Close) are queued for :meth:`WsClientFraming.take_outgoing`.

``wsproto`` is the optional extra ``aiofutu[ws]``; it is imported when a framing is created,
never when this module is.
"""

from __future__ import annotations

import struct
from collections import deque
from typing import TYPE_CHECKING, Any

from ._codec import Frame
from ._wscodec import (
    DEFAULT_MAX_MESSAGE,
    REPLY_HEADER_SIZE,
    WS_MAGIC,
    decode_reply,
    encode_request,
)
from .errors import ConnectionLost, FutuError, MissingDependency, RemoteProtocolError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("WsClientFraming", "load_wsproto")

#: The server-to-client packet header (``_wscodec``'s), read in place in the hot loop.
_REPLY = struct.Struct(">8sIQi20s")
assert _REPLY.size == REPLY_HEADER_SIZE
#: How many of the first received bytes are kept to describe a peer that is not a gateway.
_HEAD_SIZE = 64


def load_wsproto() -> Any:
    """The ``wsproto`` package, or a :class:`MissingDependency` that says how to get it."""
    try:
        import wsproto
        import wsproto.connection
        import wsproto.events
        import wsproto.utilities
    except ImportError:
        raise MissingDependency(
            'transport="websocket" needs wsproto: pip install "aiofutu[ws]"'
        ) from None
    return wsproto


class WsClientFraming:
    """One client connection's WebSocket layer and packet codec, without I/O.

    Call :meth:`handshake` first and send its bytes; :attr:`accepted` turns true (and
    ``on_accept`` is called) once the gateway's ``101`` reply has been fed. A refused upgrade,
    a peer that does not answer in HTTP, or broken WebSocket framing raise a non-recoverable
    :class:`RemoteProtocolError` from :meth:`drain`; a Close from the peer raises
    :class:`ConnectionLost`; a bad packet inside a good message is a recoverable error for that
    packet only (the next drain goes on).
    """

    #: decoders on TCP decrypt bodies; there is no encryption on this transport
    decrypt: Callable[[int, bytes], bytes] | None = None

    def __init__(self, host: str, port: int, *, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        wsproto = load_wsproto()
        self._ev = wsproto.events
        self._open = wsproto.connection.ConnectionState.OPEN
        self._remote_closing = wsproto.connection.ConnectionState.REMOTE_CLOSING
        self._ws_error = wsproto.utilities.RemoteProtocolError
        self._ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        self._host = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.max_message = max_message
        self.accepted = False
        self.on_accept: Callable[[], None] | None = None
        #: Pongs received (the connection's liveness check counts them)
        self.pongs = 0
        #: the first bytes received, until the upgrade is accepted (to describe a wrong peer)
        self.head: bytes | None = b""
        self._events: deque[Any] = deque()
        self._parts: list[bytes] = []
        self._size = 0
        self._outgoing: list[bytes] = []
        #: frames not cut yet (from ``_pos``), and the upgrade reply until its header is whole
        self._buf = b""
        self._pos = 0
        #: chunks received since, joined once the frame being cut can be complete (so a large
        #: frame that arrives in many reads is joined once, not once per read)
        self._pending: list[bytes] = []
        self._pending_len = 0
        self._need = 1
        self._reply = b""
        #: wsproto has a fragmented message in progress (its next frames are its, too)
        self._in_message = False
        #: the upgrade reply's header is complete: what follows is WebSocket frames
        self._framing = False
        self._deferred: RemoteProtocolError | None = None
        self._error: FutuError | None = None

    # ---- sending ----------------------------------------------------------------------------

    def handshake(self) -> bytes:
        """The HTTP upgrade request (``GET /``, no subprotocol, no extensions)."""
        data: bytes = self._ws.send(self._ev.Request(host=self._host, target="/"))
        return data

    def encode(self, cmd: int, section: int, body: bytes) -> bytes:
        """One request packet as one binary WebSocket message (masked, as a client must)."""
        if self._ws.state is not self._open:
            raise ConnectionLost("the WebSocket connection is not open")
        data: bytes = self._ws.send(self._ev.BytesMessage(data=encode_request(cmd, section, body)))
        return data

    def ping(self, payload: bytes = b"aiofutu") -> bytes:
        """A Ping frame (the gateway has no KeepAlive; a Pong proves the link is alive)."""
        if self._ws.state is not self._open:
            return b""
        data: bytes = self._ws.send(self._ev.Ping(payload=payload))
        return data

    def close(self) -> bytes:
        """A Close frame (1000), or nothing when the connection is not open."""
        if self._ws.state is not self._open:
            return b""
        data: bytes = self._ws.send(self._ev.CloseConnection(code=1000))
        return data

    def take_outgoing(self) -> bytes:
        """Control frames to send that the peer asked for (Pong, Close echo); ``b""`` if none."""
        if not self._outgoing:
            return b""
        out = b"".join(self._outgoing)
        self._outgoing.clear()
        return out

    # ---- receiving --------------------------------------------------------------------------

    @property
    def has_deferred_error(self) -> bool:
        """True when the next :meth:`drain` raises the error of a packet met after good ones."""
        return self._deferred is not None

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes."""
        if self._error is not None:
            raise self._error
        data = bytes(data)
        if self._framing:  # the upgrade reply's header is in: frames, cut in drain()
            if data:
                self._pending.append(data)
                self._pending_len += len(data)
            return
        head = (self.head or b"") + data[: _HEAD_SIZE - len(self.head or b"")]
        self.head = head
        if not b"HTTP/".startswith(head[:5]):
            raise self._fail(
                RemoteProtocolError(
                    "the server does not speak HTTP: it answered the WebSocket upgrade "
                    f"with {_describe(head)}"
                )
            )
        # wsproto gets the reply's header only; what follows it is frames, for drain()
        self._reply += data
        ends = self._reply.find(b"\r\n\r\n")
        if ends >= 0:
            cut = len(data) - (len(self._reply) - ends - 4)
            data, self._buf, self._pos = data[:cut], data[cut:], 0
            self._reply = b""
            self._framing = True
        try:
            self._ws.receive_data(data)
            self._events.extend(self._ws.events())
        except self._ws_error as exc:
            raise self._fail(
                RemoteProtocolError(f"bad reply to the WebSocket upgrade: {exc}")
            ) from None

    def drain(self) -> list[Frame]:
        """Every packet received whole so far, in order (see the class docstring for errors).

        The frame every packet comes in (final, binary, unmasked, with no message in progress)
        is cut here directly; any other frame (Ping, Close, a fragment, text, a broken one)
        is handed whole to wsproto, which checks it and says what it is.
        """
        deferred = self._deferred
        if deferred is not None:
            self._deferred = None
            raise deferred
        if self._error is not None:
            raise self._error
        out: list[Frame] = []
        try:
            self._drain(out)
        except RemoteProtocolError as exc:
            if not exc.recoverable:
                raise self._fail(exc) from None
            if out:
                self._deferred = exc
                return out
            raise
        except ConnectionLost as exc:
            self._error = exc
            if out:
                return out
            raise
        return out

    def _drain(self, out: list[Frame]) -> None:
        events = self._events
        while True:
            while events:
                event = events.popleft()
                kind = type(event)
                if kind is self._ev.BytesMessage or kind is self._ev.TextMessage:
                    self._in_message = not event.message_finished
                if kind is self._ev.BytesMessage:
                    frame = self._message(event)
                    if frame is not None:
                        out.append(frame)
                else:
                    self._control(event)
            if not self.accepted or not self._cut(out.append):
                return

    def _join(self) -> None:
        """Append the pending chunks to what is left of the buffer, if the frame can be whole."""
        if not self._pending or self._pending_len < self._need:
            return
        rest = self._buf[self._pos :]
        self._buf = b"".join([rest, *self._pending]) if rest else b"".join(self._pending)
        self._pos = 0
        self._pending = []
        self._pending_len = 0

    def _cut(self, append: Callable[[Frame], None]) -> bool:
        """Cut whole frames from the buffer; True when one went to wsproto (see its events)."""
        self._join()
        buf = self._buf
        pos = self._pos
        size = len(buf)
        limit = self.max_message
        packet = self._packet
        unpack = _REPLY.unpack_from
        while size - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            length = b1 & 0x7F
            start = pos + 2
            if length >= 126:
                start += 2 if length == 126 else 8
                if start > size:
                    self._need = start - size
                    return False
                length = int.from_bytes(buf[pos + 2 : start], "big")
            if b1 & 0x80:
                start += 4  # a masked server frame: wsproto refuses it
            if length > limit:
                raise RemoteProtocolError(
                    f"WebSocket frame of {length} bytes over the limit of {limit}"
                )
            end = start + length
            if end > size:
                self._need = end - size  # bytes still missing
                return False
            frame_at, self._pos, pos = pos, end, end
            if b0 == 0x82 and not b1 & 0x80 and not self._in_message:
                # FIN, binary, no RSV bits, unmasked: one packet. The usual one (our sign, no
                # error) is read here; anything else by decode_reply, which says what is wrong.
                if length >= REPLY_HEADER_SIZE:
                    sign, cmd, section, error, _ = unpack(buf, start)
                    if sign == WS_MAGIC and not error:
                        append(Frame(cmd, section, buf[start + REPLY_HEADER_SIZE : end]))
                        continue
                append(packet(buf[start:end]))
                continue
            self._ws.receive_data(buf[frame_at:end])
            self._events.extend(self._ws.events())
            return True
        self._need = 2 - (size - pos)
        return False

    def _packet(self, message: bytes) -> Frame:
        cmd, section, body, error, errmsg = decode_reply(message, max_size=self.max_message)
        if error and not body:
            raise RemoteProtocolError(
                f"OpenD answered with error {error}"
                + (f" ({errmsg})" if errmsg else "")
                + " and no body",
                proto_id=cmd,
                serial=section,
                recoverable=True,
            )
        return Frame(cmd, section, body)

    def _message(self, event: Any) -> Frame | None:
        data = event.data
        self._size += len(data)
        if self._size > self.max_message:
            raise RemoteProtocolError(
                f"WebSocket message over the limit of {self.max_message} bytes"
            )
        if not event.message_finished:
            self._parts.append(bytes(data))
            return None
        if self._parts:
            self._parts.append(bytes(data))
            data = b"".join(self._parts)
            self._parts = []
        self._size = 0
        return self._packet(data)

    def _control(self, event: Any) -> None:
        ev = self._ev
        if isinstance(event, ev.AcceptConnection):
            self.accepted = True
            self.head = None
            if self.on_accept is not None:
                self.on_accept()
        elif isinstance(event, ev.RejectConnection):
            raise RemoteProtocolError(
                f"the server refused the WebSocket upgrade with HTTP {event.status_code}: "
                "it is not OpenD's WebSocket gateway"
            )
        elif isinstance(event, ev.Ping):
            self._outgoing.append(self._ws.send(event.response()))
        elif isinstance(event, ev.Pong):
            self.pongs += 1
        elif isinstance(event, ev.TextMessage):
            raise RemoteProtocolError(
                "OpenD sent a text WebSocket message (the gateway sends binary only); skipped",
                recoverable=True,
            )
        elif isinstance(event, ev.CloseConnection):
            reason = f": {event.reason}" if event.reason else ""
            if self._ws.state is self._open:  # wsproto found broken framing (1002, 1007, ...)
                self._outgoing.append(self._ws.send(event))
                raise RemoteProtocolError(
                    f"broken WebSocket framing from the server ({event.code}{reason})"
                )
            if self._ws.state is self._remote_closing:  # the peer's Close: echo it
                self._outgoing.append(self._ws.send(event.response()))
            raise ConnectionLost(
                f"OpenD closed the WebSocket connection (code {event.code}{reason})"
            )
        # RejectData and anything else: nothing to do

    def _fail(self, exc: RemoteProtocolError) -> RemoteProtocolError:
        self._error = exc
        return exc


def _describe(head: bytes) -> str:
    shown = repr(head[:32]) + ("..." if len(head) > 32 else "")
    if head.startswith(b"FT"):
        return shown + " (it looks like OpenD's TCP API port, not its WebSocket port)"
    if head[:1] in (b"\x15", b"\x16") and head[1:2] == b"\x03":
        return shown + " (it looks like a TLS server: use ssl=)"
    return shown

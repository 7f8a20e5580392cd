"""The connection actor: the only owner of the socket.

One reader decodes frames (see ``_transport``: on asyncio the protocol's ``data_received``, on
trio one task), resolving request waiters by ``(proto_id, serial)`` and handing pushes to a
synchronous router that never runs user code. One task at a time writes, under a shielded scope,
so a request that is cancelled while its bytes are queued never leaves a half-written frame
behind. One task sends KeepAlive and declares the link dead when OpenD stops answering.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from itertools import count
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import anyio
import anyio.abc

from . import _protocol
from ._codec import DEFAULT_MAX_BODY, MAGIC, Frame, FrameDecoder, encode_frame
from ._crypto import AesCipher, RsaKey
from ._handshake import init_failed, plain_init_reply
from ._pb import init_connect_pb2, keep_alive_pb2
from ._transport import Pipe, open_pipe
from .enums import PUSH_PROTO_IDS, ProtoId
from .errors import (
    ClientClosed,
    ConnectError,
    ConnectionLost,
    FutuError,
    RemoteProtocolError,
    RequestTimeout,
)

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

    from ._wsframing import WsClientFraming

logger = logging.getLogger("aiofutu.connection")

__all__ = ("Connection", "ConnectionInfo")

_conn_ids = count(1)
#: How many of the first received bytes are kept to describe a peer that is not OpenD.
_HEAD_SIZE = 64


class PushSink(Protocol):
    """Where the reader sends pushes (``aiofutu._routing.PushHub`` is the one in use)."""

    handlers: dict[int, Callable[[list[Frame]], None]]
    on_push: Callable[[Frame], None] | None

    def after_chunk(self, seen: dict[int, list[Frame]]) -> Any: ...


class _Waiter:
    """One outstanding request: the reader fills ``frame`` or ``error`` and wakes the caller.

    On asyncio the caller waits on a plain future (a timer resolves it at the deadline);
    elsewhere on an anyio Event inside a cancel scope.
    """

    __slots__ = ("deadline", "error", "event", "frame", "future")

    def __init__(
        self, future: asyncio.Future[None] | None = None, deadline: float = math.inf
    ) -> None:
        self.future = future
        self.deadline = deadline  # loop time, for futures
        self.event = anyio.Event() if future is None else None
        self.frame: Frame | None = None
        self.error: BaseException | None = None

    def wake(self) -> None:
        future = self.future
        if future is None:
            assert self.event is not None
            self.event.set()
        elif not future.done():
            future.set_result(None)


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)  # no frame, no error: the request timed out


class ConnectionInfo:
    """What InitConnect told us about this session."""

    __slots__ = (
        "aes_cbc_iv",
        "aes_key",
        "conn_id",
        "keepalive_interval",
        "login_user_id",
        "server_version",
    )

    def __init__(self, s2c: init_connect_pb2.S2C) -> None:
        self.server_version: int = s2c.serverVer
        self.login_user_id: int = s2c.loginUserID
        self.conn_id: int = s2c.connID
        self.aes_key: str = s2c.connAESKey
        self.keepalive_interval: int = s2c.keepAliveInterval
        self.aes_cbc_iv: str | None = s2c.aesCBCiv if s2c.HasField("aesCBCiv") else None


class Connection:
    """One TCP session with OpenD, from InitConnect to close.

    Start it with ``await tg.start(conn.run, stream)`` style helpers in :meth:`open`; stop it with
    :meth:`close`. After the link drops, every pending and later request raises ``ConnectionLost``.
    (:class:`aiofutu._wsconnection.WsConnection` is the same over OpenD's WebSocket gateway.)
    """

    #: Replies are matched by ``(proto_id, serial)``; when False by serial alone (WebSocket).
    _match_cmd = True

    def __init__(
        self,
        *,
        request_timeout: float,
        max_body: int = DEFAULT_MAX_BODY,
        on_push: Callable[[Frame], None] | None = None,
        on_lost: Callable[[FutuError], None] | None = None,
        pushes: PushSink | None = None,
    ) -> None:
        self.id = next(_conn_ids)
        self.request_timeout = request_timeout
        self.on_push = on_push
        self.on_lost = on_lost
        self.info: ConnectionInfo | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.bad_frames = 0
        self.unmatched_replies = 0
        self.last_receive = time.monotonic()
        #: seconds from send to reply of the latest requests (shared by the client across links)
        self.latencies: deque[float] = deque(maxlen=1024)
        self._decoder: FrameDecoder | WsClientFraming = FrameDecoder(max_body)
        self._serial = _protocol.SerialCounter()
        self._pending: dict[tuple[int, int], _Waiter] = {}
        self._sweep_timer: asyncio.TimerHandle | None = None
        self._sweep_at = math.inf
        self._outbox: list[bytes] = []
        self._sending = False
        self._pipe: Pipe | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._error: FutuError | None = None
        self._rsa: RsaKey | None = None
        self._aes: AesCipher | None = None
        #: the first bytes received, kept until InitConnect succeeds to tell what the peer is
        self._head: bytearray | None = bytearray()
        #: Push frames by protocol id, handled synchronously in the reader (never user code):
        #: each handler gets the frames of its protocol from one read chunk, in arrival order.
        self.push_handlers: dict[int, Callable[[list[Frame]], None]] = {}
        #: Told (synchronously, from the reader) after each read chunk which handled protocols it
        #: carried, so that their routers flush; may return an awaitable for the reader to wait
        #: on (a full ``overflow="block"`` stream).
        self.pushes = pushes
        if pushes is not None:
            self.push_handlers = pushes.handlers
            if on_push is None:
                self.on_push = pushes.on_push

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._error is not None

    @property
    def pending_requests(self) -> int:
        return len(self._pending)

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
        """Connect, start the reader and writer in ``tg``, run InitConnect, start KeepAlive.

        With ``rsa_key``, InitConnect is RSA-encrypted and every later body AES-encrypted.
        """
        try:
            with anyio.fail_after(connect_timeout):
                pipe = await open_pipe(host, port, self._on_data, self._on_pipe_closed)
        except TimeoutError:
            raise ConnectError(
                f"timed out after {connect_timeout:g}s connecting to OpenD at {host}:{port}"
            ) from None
        except OSError as exc:
            raise ConnectError(
                f"cannot connect to OpenD at {host}:{port}: {exc.strerror or exc}"
            ) from None
        self._pipe = pipe
        self._tg = tg
        self._rsa = rsa_key
        if rsa_key is not None:
            self._decoder.decrypt = self._decrypt_body
        pipe.start(tg, f"aiofutu-reader-{self.id}")
        try:
            response = await self.request(
                ProtoId.INIT_CONNECT,
                _protocol.init_connect_request(
                    client_id, packet_enc_algo=2 if rsa_key is not None else -1
                ),
                init_connect_pb2.Response,
                timeout=connect_timeout,
            )
        except FutuError as exc:
            await self.close()
            raise self._init_failed(f"{host}:{port}", exc, connect_timeout) from None
        self._head = None
        self.info = ConnectionInfo(response.s2c)
        if rsa_key is not None:
            try:
                self._aes = AesCipher(self.info.aes_key, self.info.aes_cbc_iv)
            except ValueError as exc:
                await self.close()
                raise ConnectError(f"OpenD sent an unusable AES key: {exc}") from None
        logger.info(
            "conn %d: connected to OpenD %s:%d (server %d, connID %d, keepalive %ds)",
            self.id,
            host,
            port,
            self.info.server_version,
            self.info.conn_id,
            self.info.keepalive_interval,
        )
        tg.start_soon(self._keepalive, name=f"aiofutu-keepalive-{self.id}")
        return self.info

    def _init_failed(self, where: str, exc: FutuError, connect_timeout: float) -> ConnectError:
        """Say why InitConnect failed (see :func:`aiofutu._handshake.init_failed`)."""
        head = bytes(self._head or b"")
        self._head = None
        return init_failed(where, exc, connect_timeout, head, encrypted=self._rsa is not None)

    async def close(self) -> None:
        """Close the socket and fail whatever is pending with :class:`ClientClosed`."""
        self._lose(ClientClosed("the client was closed"), log=False)
        await self._abort_pipe()

    def _lose(self, error: FutuError, *, log: bool = True) -> None:
        """Mark the link dead (once), fail every waiter, wake the writer, tell the owner."""
        if self._error is not None:
            return
        self._error = error
        if log:
            logger.warning("conn %d: %s", self.id, error)
        for waiter in self._pending.values():
            waiter.error = error
            waiter.wake()
        self._pending.clear()
        self._outbox.clear()
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
            self._sweep_timer = None
            self._sweep_at = math.inf
        if self.on_lost is not None:
            self.on_lost(error)

    def _raise_closed(self) -> NoReturn:
        error = self._error
        assert error is not None
        if isinstance(error, ClientClosed):
            raise ClientClosed(str(error))
        raise ConnectionLost(f"connection to OpenD is lost: {error}") from error

    # -- requests --------------------------------------------------------------------------

    async def request_frame(self, proto_id: int, message: Any, timeout: float | None) -> Frame:
        """Send a request (a message, or its encoded body) and wait for the frame answering it."""
        if self._error is not None:
            self._raise_closed()
        body = message if type(message) is bytes else _protocol.encode_message(message, proto_id)
        serial = self._serial()
        key = (proto_id if self._match_cmd else 0, serial)
        data = self._encode(proto_id, serial, body)
        limit = self.request_timeout if timeout is None else timeout
        started = time.perf_counter()
        pipe = self._pipe
        loop = pipe.loop if pipe is not None else None
        if loop is not None and not self._sending and pipe is not None and pipe.try_write(data):
            # asyncio, written without blocking: wait on a bare future (the fast path)
            self.bytes_out += len(data)
            future: asyncio.Future[None] = loop.create_future()
            deadline = loop.time() + limit if limit > 0 else math.inf
            waiter = self._pending[key] = _Waiter(future, deadline)
            if deadline < self._sweep_at:
                self._arm_sweep(loop, deadline)
            try:
                await future
            finally:
                self._pending.pop(key, None)
        else:
            waiter = self._pending[key] = _Waiter()
            assert waiter.event is not None
            try:
                with anyio.move_on_after(limit if limit > 0 else math.inf):
                    await self._transmit(data)
                    await waiter.event.wait()
            finally:
                self._pending.pop(key, None)
        if waiter.frame is not None:
            self.latencies.append(time.perf_counter() - started)
            return waiter.frame
        error = waiter.error
        if error is None:
            raise RequestTimeout(
                f"no reply from OpenD to proto_id={proto_id} serial={serial} within {limit:g}s",
                proto_id=proto_id,
                serial=serial,
                timeout=limit,
            )
        if isinstance(error, RemoteProtocolError):
            raise RemoteProtocolError(
                error.reason, proto_id=proto_id, serial=serial, recoverable=error.recoverable
            )
        self._raise_closed()

    def _encode(self, proto_id: int, serial: int, body: bytes) -> bytes:
        return encode_frame(proto_id, serial, body, encrypt=self._encryptor(proto_id))

    async def request(
        self,
        proto_id: int,
        message: Any,
        response_type: type[_protocol.R],
        *,
        timeout: float | None = None,
    ) -> _protocol.R:
        """Send a request; return the parsed Response (retType 0) or raise a typed error."""
        frame = await self.request_frame(proto_id, message, timeout)
        return _protocol.decode_response(response_type, frame.body, proto_id, frame.serial)

    # -- tasks -----------------------------------------------------------------------------

    def _arm_sweep(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        """One timer for every request deadline (not one timer per request)."""
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
        self._sweep_at = when
        self._sweep_timer = loop.call_at(when, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        """Time out the requests whose deadline passed; re-arm for the next one."""
        self._sweep_timer = None
        self._sweep_at = math.inf
        now = loop.time()
        earliest = math.inf
        for waiter in self._pending.values():
            future = waiter.future
            if future is None or future.done():
                continue
            if waiter.deadline <= now:
                _expire(future)
            elif waiter.deadline < earliest:
                earliest = waiter.deadline
        if earliest < math.inf:
            self._arm_sweep(loop, earliest)

    def _on_data(self, data: bytes) -> Any:
        """Handle received bytes (synchronously: no await between a reply and its future).

        Returns an awaitable when the push router asks the reader to wait (a full
        ``overflow="block"`` stream).
        """
        self.bytes_in += len(data)
        self.last_receive = time.monotonic()
        head = self._head
        if head is not None and len(head) < _HEAD_SIZE:
            head += data[: _HEAD_SIZE - len(head)]
            if not MAGIC.startswith(head[:2]):  # not OpenD: say so now, not at the timeout
                raise RemoteProtocolError(f"bad magic {bytes(head[:2])!r} (expected b'FT')")
        decoder = self._decoder
        pending = self._pending
        push_ids = PUSH_PROTO_IDS
        handlers = self.push_handlers
        match_cmd = self._match_cmd
        decoder.feed(data)
        seen: dict[int, list[Frame]] | None = None
        while True:
            try:
                frames = decoder.drain()
            except RemoteProtocolError as exc:
                if not exc.recoverable:
                    raise
                self._bad_frame(exc)
                continue
            if not frames:
                break
            batches: dict[int, list[Frame]] | None = None
            for frame in frames:
                proto_id = frame[0]
                if proto_id in handlers:
                    if batches is None:
                        batches = {proto_id: [frame]}
                    else:
                        batch = batches.get(proto_id)
                        if batch is None:
                            batches[proto_id] = [frame]
                        else:
                            batch.append(frame)
                    continue
                if proto_id in push_ids:
                    if self.on_push is not None:
                        self.on_push(frame)
                    continue
                waiter = pending.pop((proto_id if match_cmd else 0, frame[1]), None)
                if waiter is None:
                    self._unmatched(frame)
                    continue
                waiter.frame = frame
                waiter.wake()
            if batches is not None:
                for proto_id, batch in batches.items():
                    handlers[proto_id](batch)
                seen = batches if seen is None else {**seen, **batches}
            if not decoder.has_deferred_error:
                break  # drain() took every whole frame
        pushes = self.pushes
        if seen is None or pushes is None:
            return None
        return pushes.after_chunk(seen)

    def _on_pipe_closed(self, exc: BaseException | None) -> None:
        """The reader's end: EOF, a socket error, broken framing, or a bug in a push handler."""
        log = self.info is not None  # before InitConnect, open() raises it in full instead
        if exc is None or isinstance(exc, anyio.EndOfStream):
            self._lose(ConnectionLost("OpenD closed the connection"), log=log)
        elif isinstance(exc, (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)):
            self._lose(
                ConnectionLost(f"connection to OpenD failed: {exc or type(exc).__name__}"), log=log
            )
        elif isinstance(exc, (RemoteProtocolError, ConnectionLost)):
            self._lose(exc, log=log)
        else:  # a bug in a push router must not hang every waiter
            logger.error("conn %d: reader failed", self.id, exc_info=exc)
            self._lose(ConnectionLost(f"reader failed: {exc!r}"))

    # -- encryption --------------------------------------------------------------------------

    def _encryptor(self, proto_id: int) -> Callable[[bytes], bytes] | None:
        if self._rsa is None:
            return None
        if proto_id == ProtoId.INIT_CONNECT:
            return self._rsa.encrypt
        if self._aes is None:
            raise ClientClosed("encrypted session is not initialised")
        return self._aes.encrypt

    def _decrypt_body(self, proto_id: int, body: bytes) -> bytes:
        """Decoder hook: RSA for the InitConnect reply, AES for everything after it."""
        if proto_id == ProtoId.INIT_CONNECT:
            assert self._rsa is not None
            # A plain-text reply means OpenD refused or ignored our encrypted InitConnect; check
            # first, since a wrong-key RSA decrypt may "succeed" with garbage.
            said = plain_init_reply(body)
            if said is not None:
                raise RemoteProtocolError(
                    f"OpenD answered InitConnect without encryption ({said}): OpenD has no RSA "
                    "key configured, or a different one; check that the client and OpenD use "
                    "the same RSA key",
                    proto_id=proto_id,
                    recoverable=True,
                )
            try:
                return self._rsa.decrypt(body)
            except ValueError:
                raise RemoteProtocolError(
                    "cannot decrypt OpenD's InitConnect reply with this RSA key",
                    proto_id=proto_id,
                    recoverable=True,
                ) from None
        aes = self._aes
        if aes is None:
            raise RemoteProtocolError(
                "encrypted frame before the session key is known", proto_id=proto_id
            )
        try:
            return aes.decrypt(body)
        except ValueError as exc:
            raise RemoteProtocolError(
                f"cannot decrypt body with the session's AES key: {exc}",
                proto_id=proto_id,
                recoverable=True,
            ) from None

    def _unmatched(self, frame: Frame) -> None:
        self.unmatched_replies += 1
        logger.debug(
            "conn %d: reply proto_id=%d serial=%d matches no pending request",
            self.id,
            frame.proto_id,
            frame.serial,
        )

    def _bad_frame(self, exc: RemoteProtocolError) -> None:
        """A frame with intact boundaries but bad content: fail its request or drop it."""
        self.bad_frames += 1
        key = ((exc.proto_id or 0) if self._match_cmd else 0, exc.serial or 0)
        waiter = self._pending.pop(key, None)
        if waiter is not None:  # the caller gets the error: no need to shout about it here
            waiter.error = exc
            waiter.wake()
            logger.debug("conn %d: bad reply frame: %s", self.id, exc)
        else:
            logger.warning("conn %d: skipped a bad frame: %s", self.id, exc)

    async def _transmit(self, data: bytes) -> None:
        """Write a frame now, from the requesting task (no hand-off to a writer task).

        One task writes at a time: a request that finds a write in progress only queues its
        frame, and the writing task drains the queue before it lets go. The write is shielded,
        so cancelling a request can never leave half a frame on the wire; it is bounded by the
        request timeout instead, after which the link counts as dead.
        """
        if self._sending:
            self._outbox.append(data)
            return
        pipe = self._pipe
        if pipe is None or self._error is not None:
            return
        self._sending = True
        outbox = self._outbox
        deadline = anyio.current_time() + max(self.request_timeout, 1.0)
        try:
            # One scope, shielded from outside cancellation but with its own deadline.
            with anyio.CancelScope(shield=True, deadline=deadline) as scope:
                while True:
                    await pipe.send(data)
                    self.bytes_out += len(data)
                    if not outbox:
                        break
                    data = outbox[0] if len(outbox) == 1 else b"".join(outbox)
                    outbox.clear()
            if scope.cancelled_caught:
                self._lose(ConnectionLost("OpenD stopped reading: a write did not complete"))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            self._lose(ConnectionLost(f"sending to OpenD failed: {exc or type(exc).__name__}"))
        finally:
            self._sending = False

    async def _keepalive(self) -> None:
        """KeepAlive at 0.8x the server's interval; no answer within the interval means dead."""
        assert self.info is not None
        interval = max(self.info.keepalive_interval, 1)
        while True:
            await anyio.sleep(interval * 0.8)
            if self.closed:
                return
            try:
                await self.request(
                    ProtoId.KEEP_ALIVE,
                    _protocol.keep_alive_request(),
                    keep_alive_pb2.Response,
                    timeout=interval,
                )
            except RequestTimeout:
                self._lose(
                    ConnectionLost(f"OpenD did not answer KeepAlive within {interval}s; link dead")
                )
                await self._abort_pipe()
                return
            except (ConnectionLost, ClientClosed):
                return
            except FutuError as exc:
                logger.warning("conn %d: KeepAlive failed: %s", self.id, exc)

    async def _abort_pipe(self) -> None:
        pipe = self._pipe
        if pipe is not None:
            self._pipe = None
            with anyio.CancelScope(shield=True):
                await pipe.aclose()

"""The byte pipe under a :class:`~aiofutu._connection.Connection`.

The connection hands every received chunk to one synchronous ``on_data`` callback (decode,
resolve futures, route pushes; it never awaits) and writes with ``await send()``. Two pipes
feed it:

* on asyncio, an :class:`asyncio.Protocol` (like asyncpg's protocol layer): ``on_data`` runs in
  ``data_received`` itself, so a reply wakes its requester directly, with no reader task in
  between (one event-loop hop less per reply and per read);
* elsewhere (trio), an anyio byte stream read by one task in the connection's task group.

Either way there is one reader, and backpressure (``on_data`` returning an awaitable) stops
reading until it completes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, cast

import anyio
import anyio.abc
import anyio.lowlevel

if TYPE_CHECKING:
    import ssl as _ssl
    from collections.abc import Awaitable, Callable

__all__ = ("Pipe", "open_pipe")

logger = logging.getLogger("aiofutu.connection")

_RECEIVE_SIZE = 256 * 1024
#: Pause writing above this many buffered bytes (asyncio's default is 64 KiB).
_WRITE_HIGH_WATER = 1024 * 1024


class Pipe:
    """What the connection needs from a socket: send, close, and a reader started in ``tg``."""

    #: the asyncio loop when the pipe is an asyncio protocol (replies may then resolve plain
    #: asyncio futures), else ``None``
    loop: asyncio.AbstractEventLoop | None = None

    def try_write(self, data: bytes) -> bool:
        """Write ``data`` now if that cannot block; ``False`` means use :meth:`send`."""
        return False

    async def send(self, data: bytes) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    def start(self, tg: anyio.abc.TaskGroup, name: str) -> None:
        raise NotImplementedError


async def open_pipe(
    host: str,
    port: int,
    on_data: Callable[[bytes], Awaitable[None] | None],
    on_closed: Callable[[BaseException | None], None],
    *,
    ssl: _ssl.SSLContext | None = None,
) -> Pipe:
    """Connect to ``host:port`` (raises ``OSError``); the pipe reads once :meth:`Pipe.start`.

    ``on_data(chunk)`` handles bytes and may return an awaitable to wait on before reading
    more; ``on_closed(exc)`` is called once when the pipe ends by itself (``None``: EOF).
    With ``ssl``, TLS runs over the socket (the certificate is checked for ``host`` unless the
    context says otherwise); a failed TLS handshake raises ``ssl.SSLError`` (an ``OSError``).
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not asyncio (trio): the portable stream
        loop = None
    if loop is None:
        if ssl is None:
            stream: anyio.abc.ByteStream = await anyio.connect_tcp(host, port)
        else:
            stream = await anyio.connect_tcp(
                host, port, ssl_context=ssl, tls_hostname=host, tls_standard_compatible=False
            )
        return _StreamPipe(stream, on_data, on_closed)
    _, protocol = await loop.create_connection(
        lambda: _ProtocolPipe(on_data, on_closed),
        host,
        port,
        ssl=ssl,
        server_hostname=host if ssl is not None else None,
    )
    protocol.loop = loop
    return protocol


class _StreamPipe(Pipe):
    """An anyio byte stream, read by one task."""

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        on_data: Callable[[bytes], Awaitable[None] | None],
        on_closed: Callable[[BaseException | None], None],
    ) -> None:
        self._stream = stream
        self._on_data = on_data
        self._on_closed = on_closed

    def start(self, tg: anyio.abc.TaskGroup, name: str) -> None:
        tg.start_soon(self._read, name=name)

    async def _read(self) -> None:
        stream = self._stream
        on_data = self._on_data
        try:
            while True:
                data = await stream.receive(_RECEIVE_SIZE)
                blocker = on_data(data)
                if blocker is not None:
                    await blocker
        except anyio.EndOfStream:
            self._on_closed(None)
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as exc:
            self._on_closed(exc)
        with anyio.CancelScope(shield=True):
            await stream.aclose()

    async def send(self, data: bytes) -> None:
        await self._stream.send(data)

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            await self._stream.aclose()


class _ProtocolPipe(asyncio.Protocol, Pipe):
    """An asyncio protocol: received bytes are handled in ``data_received`` (no reader task)."""

    def __init__(
        self,
        on_data: Callable[[bytes], Awaitable[None] | None],
        on_closed: Callable[[BaseException | None], None],
    ) -> None:
        self._on_data = on_data
        self._on_closed = on_closed
        self._transport: asyncio.Transport | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._early: list[bytes] = []  # bytes that arrived before start()
        self._ended = False
        self._can_write: anyio.Event | None = None  # set while writing is paused

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without subclassing it
        tcp = cast("asyncio.Transport", transport)
        self._transport = tcp
        tcp.set_write_buffer_limits(high=_WRITE_HIGH_WATER)

    def data_received(self, data: bytes) -> None:
        if self._ended:
            return
        if self._tg is None:
            self._early.append(data)
            return
        self._handle(data)

    def eof_received(self) -> bool:
        self._end(None)
        return False  # let asyncio close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(exc)
        can_write = self._can_write
        if can_write is not None:
            self._can_write = None
            can_write.set()

    def pause_writing(self) -> None:
        if self._can_write is None:
            self._can_write = anyio.Event()

    def resume_writing(self) -> None:
        can_write = self._can_write
        if can_write is not None:
            self._can_write = None
            can_write.set()

    # -- Pipe ------------------------------------------------------------------------------

    def start(self, tg: anyio.abc.TaskGroup, name: str) -> None:
        self._tg = tg
        early, self._early = self._early, []
        for data in early:
            if self._ended:
                break
            self._handle(data)

    def _handle(self, data: bytes) -> None:
        try:
            blocker = self._on_data(data)
        except Exception as exc:
            self._end(exc)
            self._abort()
            return
        if blocker is not None:
            transport = self._transport
            assert transport is not None
            assert self._tg is not None
            transport.pause_reading()
            self._tg.start_soon(self._resume_after, blocker, name="aiofutu-backpressure")

    async def _resume_after(self, blocker: Awaitable[None]) -> None:
        await blocker
        transport = self._transport
        if not self._ended and transport is not None and not transport.is_closing():
            transport.resume_reading()

    def _end(self, exc: BaseException | None) -> None:
        if not self._ended:
            self._ended = True
            self._on_closed(exc)

    def _abort(self) -> None:
        transport = self._transport
        if transport is not None:
            transport.abort()

    def try_write(self, data: bytes) -> bool:
        transport = self._transport
        if self._can_write is not None or transport is None or transport.is_closing():
            return False
        transport.write(data)
        return True

    async def send(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            raise anyio.BrokenResourceError
        transport.write(data)
        can_write = self._can_write
        if can_write is not None:  # the kernel and the buffer are full: wait for room
            await can_write.wait()
            if self._transport is None or transport.is_closing():
                raise anyio.BrokenResourceError

    async def aclose(self) -> None:
        self._ended = True
        transport = self._transport
        if transport is not None:
            transport.close()  # flushes what is buffered, then closes; never waits
        await anyio.lowlevel.checkpoint()

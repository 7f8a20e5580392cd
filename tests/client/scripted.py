"""A scripted OpenD for hostile-input tests: answers InitConnect, then lets a test decide."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc

from aiofutu._codec import FrameDecoder, encode_frame
from aiofutu._pb import init_connect_pb2

#: (proto_id, serial, body) -> raw bytes to send back (may be b"" for silence, or any garbage)
Handler = Callable[[int, int, bytes], bytes]


def init_connect_reply(serial: int, keepalive: int = 30) -> bytes:
    resp = init_connect_pb2.Response(retType=0)
    s2c = resp.s2c
    s2c.serverVer = 1011
    s2c.loginUserID = 1
    s2c.connID = 42
    s2c.connAESKey = "0123456789ABCDEF"
    s2c.keepAliveInterval = keepalive
    return encode_frame(1001, serial, resp.SerializeToString())


class Scripted:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.port = 0
        self.streams: list[anyio.abc.SocketStream] = []
        self.close_after_accept = False

    async def inject(self, raw: bytes) -> None:
        """Send raw bytes to every connected client."""
        for stream in self.streams:
            await stream.send(raw)

    async def _serve_one(self, stream: anyio.abc.SocketStream) -> None:
        async with stream:
            if self.close_after_accept:
                return
            self.streams.append(stream)
            decoder = FrameDecoder()
            try:
                while True:
                    decoder.feed(await stream.receive())
                    for frame in decoder:
                        if frame.proto_id == 1001:
                            await stream.send(init_connect_reply(frame.serial))
                            continue
                        out = self.handler(frame.proto_id, frame.serial, frame.body)
                        if out is None:
                            return  # close the connection
                        if out:
                            await stream.send(out)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass
            finally:
                self.streams.remove(stream)


@asynccontextmanager
async def scripted(handler: Handler) -> AsyncIterator[Scripted]:
    server = Scripted(handler)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    server.port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, server._serve_one)
        yield server
        tg.cancel_scope.cancel()

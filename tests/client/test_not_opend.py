"""Connecting to a port where something other than OpenD listens: say so, name what answered.

Each case is a real local TCP server. Only a reply that could be an encrypted OpenD reply (a
frame with OpenD's header whose body does not check) or OpenD refusing InitConnect suggests
encryption; a peer that is not OpenD at all is named as such, with the bytes it sent.
"""

from __future__ import annotations

import http.server
import logging
import random
import struct
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import anyio
import anyio.abc
import pytest

import aiofutu
from aiofutu import sim
from aiofutu._codec import HEADER_SIZE, encode_frame
from aiofutu._pb import init_connect_pb2

pytestmark = pytest.mark.anyio

Serve = Callable[[anyio.abc.SocketStream], Awaitable[None]]


@asynccontextmanager
async def tcp_server(serve: Serve) -> AsyncIterator[int]:
    """A loopback TCP server running ``serve`` for each connection; yields its port."""

    async def one(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            try:
                await serve(stream)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, one)
        yield port
        tg.cancel_scope.cancel()


@contextmanager
def http_server() -> Iterator[int]:
    """The standard library's HTTP server, in a thread: a real HTTP peer."""

    class Quiet(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


async def connect_error(port: int, **options: object) -> str:
    with anyio.fail_after(10), pytest.raises(aiofutu.ConnectError) as info:
        async with aiofutu.connect("127.0.0.1", port, connect_timeout=3, **options):  # type: ignore[arg-type]
            pass
    assert info.type is aiofutu.ConnectError
    return str(info.value)


async def test_an_http_server(caplog: pytest.LogCaptureFixture) -> None:
    """The standard library's server answers our frame (an HTTP/0.9 request line) with HTML."""
    caplog.set_level(logging.WARNING, logger="aiofutu")
    with http_server() as port:
        message = await connect_error(port)
    assert f"the server at 127.0.0.1:{port} does not speak OpenD's protocol" in message
    assert "it answered InitConnect with b'<!DOCTYPE HTML>" in message
    assert "it looks like an HTTP server" in message
    assert "rsa" not in message.lower()
    assert "magic" not in message
    assert not [r for r in caplog.records if r.name.startswith("aiofutu")]  # one message, not two


async def test_an_http_server_answering_with_a_status_line() -> None:
    async def serve(stream: anyio.abc.SocketStream) -> None:
        await stream.receive()
        await stream.send(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )

    async with tcp_server(serve) as port:
        message = await connect_error(port)
    assert message == (
        f"the server at 127.0.0.1:{port} does not speak OpenD's protocol: it answered "
        "InitConnect with b'HTTP/1.1 400 Bad Request\\r\\nConten'... (it looks like an HTTP "
        "server); check the host and port (OpenD's API port is 11111 unless OpenD.xml sets "
        "another)"
    )


async def test_a_server_sending_random_bytes() -> None:
    junk = random.Random(16).randbytes(200)
    assert not junk.startswith(b"F")

    async def serve(stream: anyio.abc.SocketStream) -> None:
        await stream.send(junk)
        await anyio.sleep(10)

    async with tcp_server(serve) as port:
        message = await connect_error(port)
    assert f"the server at 127.0.0.1:{port} does not speak OpenD's protocol" in message
    assert repr(junk[:32]) + "..." in message
    assert "looks like" not in message
    assert "rsa" not in message.lower()


async def test_a_server_that_closes_at_once() -> None:
    async def serve(stream: anyio.abc.SocketStream) -> None:
        return  # closes the connection as soon as it is accepted

    async with tcp_server(serve) as port:
        message = await connect_error(port)
    assert message == (
        f"the server at 127.0.0.1:{port} closed the connection without answering InitConnect "
        "(it is not OpenD, or OpenD refused this client)"
    )


@pytest.mark.parametrize(
    ("banner", "kind"),  # shorter than a frame header: no frame to decode, still known at once
    [
        (b"\x15\x03\x03\x00\x02\x02\x32", "a TLS server"),
        (b"SSH-2.0-OpenSSH_9.6\r\n", "an SSH server"),
        (b"220 mail.example ESMTP\r\n", None),
    ],
)
async def test_other_servers_are_named(banner: bytes, kind: str | None) -> None:
    async def serve(stream: anyio.abc.SocketStream) -> None:
        await stream.send(banner)
        await anyio.sleep(10)

    async with tcp_server(serve) as port:
        started = anyio.current_time()
        message = await connect_error(port)
        assert anyio.current_time() - started < 2  # at once, not at the 3 s connect timeout
    assert "does not speak OpenD's protocol" in message
    assert repr(banner) in message
    if kind is not None:
        assert f"it looks like {kind}" in message


def init_reply_with_body(request: bytes, body: bytes) -> bytes:
    """An InitConnect reply frame whose body is ``body`` but whose SHA1 is another body's."""
    serial = struct.unpack_from("<I", request, 8)[0]
    plain = init_connect_pb2.Response(retType=0).SerializeToString() + b"\x12\x00"
    frame = encode_frame(1001, serial, plain)
    header = frame[:HEADER_SIZE]
    return header[:12] + struct.pack("<I", len(body)) + header[16:] + body


async def test_an_encrypted_looking_opend_reply_hints_at_encryption() -> None:
    """OpenD's header, a body that does not check: it may well be encrypted."""

    async def serve(stream: anyio.abc.SocketStream) -> None:
        request = await stream.receive()
        await stream.send(init_reply_with_body(request, random.Random(1).randbytes(128)))
        await anyio.sleep(10)

    async with tcp_server(serve) as port:
        message = await connect_error(port)
    assert message.startswith(f"InitConnect to OpenD at 127.0.0.1:{port} failed: SHA1")
    assert "pass rsa_private_key= to connect() (--rsa-key on the command line)" in message


async def test_opend_refusing_init_connect_hints_at_encryption() -> None:
    pytest.importorskip("cryptography")
    from aiofutu._crypto import generate_private_key_pem

    async with sim.serve(port=0, tick_rate=0, rsa_key=generate_private_key_pem(1024)) as server:
        message = await connect_error(server.port)
    assert message.startswith(f"InitConnect to OpenD at 127.0.0.1:{server.port} failed: OpenD")
    assert "(--rsa-key on the command line)" in message
    assert "does not speak" not in message


async def test_a_real_opend_still_connects(server: sim.Simulator) -> None:
    async with aiofutu.connect("127.0.0.1", server.port) as client:
        assert client.connected
        assert client._conn._head is None  # the first bytes are not kept once connected

"""The client over OpenD's WebSocket gateway, what only that transport has: TLS (``wss://``),
the websocket key, peers that are not a gateway, and broken WebSocket input, over real sockets.

The rest of the client (requests, streams, reconnect, backfill) runs on both transports in
test_requests.py, test_streams.py and test_reconnect.py.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Ping, Request

import aiofutu
from aiofutu import SubType, sim
from aiofutu import _wscodec as wscodec
from aiofutu._pb import init_websocket_pb2, qot_get_ticker_pb2

pytestmark = pytest.mark.anyio

HK = "HK.00700"


# ---- a self-signed certificate for 127.0.0.1 ------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aiofutu test gateway")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def _client_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


def _tls_version(client: aiofutu.Client) -> str | None:
    """The TLS version of the client's socket (None: plain TCP), on either pipe."""
    from anyio.streams.tls import TLSAttribute

    from aiofutu._transport import _ProtocolPipe, _StreamPipe

    pipe = client._conn._pipe
    if isinstance(pipe, _ProtocolPipe):
        assert pipe._transport is not None
        ssl_object = pipe._transport.get_extra_info("ssl_object")
        return None if ssl_object is None else str(ssl_object.version())
    assert isinstance(pipe, _StreamPipe)
    return pipe._stream.extra(TLSAttribute.tls_version, None)


async def test_wss_streams_and_requests_over_tls(certificate: tuple[Path, Path]) -> None:
    options = {"websocket_port": 0, "websocket_ssl": _server_context(certificate)}
    async with sim.serve(port=0, tick_rate=0, codes=(HK,), **options) as server:
        assert server.websocket_port is not None
        async with aiofutu.connect(
            "127.0.0.1",
            server.websocket_port,
            transport="websocket",
            ssl=_client_context(certificate),
        ) as client:
            assert _tls_version(client) in ("TLSv1.2", "TLSv1.3")
            async with client.ticker_stream(HK, is_first_push=False) as stream:
                await server.burst(HK, n=50, ticks_per_push=5)
                with anyio.fail_after(5):
                    got = [await stream.__anext__() for _ in range(50)]
            assert [t.sequence for t in got] == [
                t.sequence for t in server.market.history(HK)[-50:]
            ]
            assert len(await client.get_rt_ticker(HK, 10)) == 10
            assert client.server_version > 0
        assert server.handshakes["websocket"] == 1


async def test_tls_failures_are_connect_errors(certificate: tuple[Path, Path]) -> None:
    tls = {"websocket_port": 0, "websocket_ssl": _server_context(certificate)}
    async with (
        sim.serve(port=0, tick_rate=0, **tls) as secure,
        sim.serve(port=0, tick_rate=0, websocket_port=0) as plain,
    ):
        assert secure.websocket_port is not None and plain.websocket_port is not None
        started = time.monotonic()
        # the system's CAs do not know the self-signed certificate
        with pytest.raises(aiofutu.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            async with aiofutu.connect(
                "127.0.0.1", secure.websocket_port, transport="websocket", ssl=True
            ):
                pass
        # plain ws:// to a wss:// gateway: the TLS server does not answer in HTTP
        with pytest.raises(aiofutu.ConnectError, match="WebSocket upgrade"):
            async with aiofutu.connect(
                "127.0.0.1", secure.websocket_port, transport="websocket", connect_timeout=2
            ):
                pass
        # wss:// to a plain gateway: no TLS handshake
        with pytest.raises(aiofutu.ConnectError, match=r"wss://127\.0\.0\.1"):
            async with aiofutu.connect(
                "127.0.0.1",
                plain.websocket_port,
                transport="websocket",
                ssl=_client_context(certificate),
                connect_timeout=2,
            ):
                pass
        assert time.monotonic() - started < 5  # each one fails at once or within its timeout


# ---- the key ----------------------------------------------------------------------------------


@pytest.mark.parametrize("given", [None, "wrong"])
async def test_a_wrong_or_missing_key_is_refused(given: str | None) -> None:
    async with sim.serve(port=0, tick_rate=0, websocket_port=0, websocket_key="right") as server:
        assert server.websocket_port is not None
        started = time.monotonic()
        with pytest.raises(aiofutu.ConnectError, match="did not answer Init") as info:
            async with aiofutu.connect(
                "127.0.0.1",
                server.websocket_port,
                transport="websocket",
                websocket_key=given,
                connect_timeout=0.5,
            ):
                pass
        assert time.monotonic() - started < 2
        assert "websocket_key" in str(info.value)
        assert server.handshakes["websocket-refused"] == 1
        assert server.handshakes["websocket"] == 0
        async with aiofutu.connect(
            "127.0.0.1", server.websocket_port, transport="websocket", websocket_key="right"
        ) as client:
            await client.subscribe([HK], [SubType.TICKER])
        assert server.handshakes["websocket"] == 1
        assert server.handshakes["plain"] == 0  # no InitConnect on this transport


# ---- peers that are not a gateway -------------------------------------------------------------


@asynccontextmanager
async def _listen(handler: Callable[[anyio.abc.SocketStream], object]) -> AsyncIterator[int]:
    """A TCP server on a free port running ``handler(stream)`` per connection."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def serve(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await handler(stream)  # type: ignore[misc]

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        yield port
        tg.cancel_scope.cancel()


async def _connect_error(port: int, connect_timeout: float = 1) -> str:
    started = time.monotonic()
    with pytest.raises(aiofutu.ConnectError) as info:
        async with aiofutu.connect(
            "127.0.0.1", port, transport="websocket", connect_timeout=connect_timeout
        ):
            pass
    assert time.monotonic() - started < connect_timeout + 2
    return str(info.value)


async def test_opend_tcp_port_is_not_a_gateway() -> None:
    async with sim.serve(port=0, tick_rate=0) as server:
        message = await _connect_error(server.port)
    assert "not OpenD's WebSocket gateway" in message


async def test_http_server_refusing_the_upgrade() -> None:
    async def http(stream: anyio.abc.SocketStream) -> None:
        await stream.receive()
        await stream.send(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
        await anyio.sleep(5)

    async with _listen(http) as port:
        message = await _connect_error(port)
    assert "refused the WebSocket upgrade with HTTP 404" in message


async def test_binary_server_is_named_at_once() -> None:
    async def binary(stream: anyio.abc.SocketStream) -> None:
        await stream.receive()
        await stream.send(b"FT\x00\x01" + bytes(60))  # OpenD's TCP framing, no line ending
        await anyio.sleep(5)

    async with _listen(binary) as port:
        started = time.monotonic()
        message = await _connect_error(port, connect_timeout=5)
        assert time.monotonic() - started < 1  # not at the timeout: the bytes say it all
    assert "does not speak HTTP" in message
    assert "TCP API port" in message


class Gateway:
    """A scripted gateway: a real wsproto server that answers Init, then runs ``on_request``."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.SERVER)

    async def send_packet(self, packet: bytes) -> None:
        await self.stream.send(self.ws.send(BytesMessage(data=packet)))

    async def run(
        self, on_request: Callable[[Gateway, wscodec.WsRequest], object], answer_init: bool
    ) -> None:
        """Serve until EOF or until ``on_request`` returns False."""
        while True:
            try:
                data = await self.stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return
            self.ws.receive_data(data)
            for event in self.ws.events():
                if isinstance(event, Request):
                    await self.stream.send(self.ws.send(AcceptConnection()))
                elif isinstance(event, Ping):
                    await self.stream.send(self.ws.send(event.response()))
                elif isinstance(event, BytesMessage):
                    request = wscodec.decode_request(event.data)
                    if request.cmd == wscodec.CMD_INIT:
                        if answer_init:
                            s2c = init_websocket_pb2.S2C(serverTime=1, connID=7)
                            body = init_websocket_pb2.Response(retType=0, s2c=s2c)
                            await self.send_packet(
                                wscodec.encode_reply(1, request.section, body.SerializeToString())
                            )
                    elif request.cmd == 1002:  # GetGlobalState after Init: no version here
                        await self.send_packet(
                            wscodec.encode_reply(1002, request.section, b"", error=-1, errmsg="x")
                        )
                    elif await on_request(self, request) is False:  # type: ignore[misc]
                        return


def _scripted(
    on_request: Callable[[Gateway, wscodec.WsRequest], object], *, answer_init: bool = True
) -> Callable[[anyio.abc.SocketStream], object]:
    async def handler(stream: anyio.abc.SocketStream) -> None:
        await Gateway(stream).run(on_request, answer_init)

    return handler


async def test_websocket_server_that_never_answers_init() -> None:
    async def ignore(gateway: Gateway, request: wscodec.WsRequest) -> None:
        return None

    async with _listen(_scripted(ignore, answer_init=False)) as port:
        message = await _connect_error(port)
    assert "did not answer Init within 1s" in message


def _ticker_reply(section: int) -> bytes:
    body = qot_get_ticker_pb2.Response(retType=0)
    body.s2c.security.market = 1
    body.s2c.security.code = "00700"
    return wscodec.encode_reply(3010, section, body.SerializeToString())


@pytest.mark.parametrize("how", ["half a frame", "a close frame", "no reply"])
async def test_socket_closed_mid_frame_fails_pending_requests(how: str) -> None:
    """The gateway goes away while a request waits: a typed error at once, no hang."""

    async def die(gateway: Gateway, request: wscodec.WsRequest) -> bool:
        if how == "half a frame":
            frame = gateway.ws.send(BytesMessage(data=_ticker_reply(request.section)))
            await gateway.stream.send(frame[: len(frame) // 2])
        elif how == "a close frame":
            from wsproto.events import CloseConnection

            await gateway.stream.send(gateway.ws.send(CloseConnection(code=1011, reason="bye")))
        await anyio.sleep(0.05)
        return False  # the handler ends: the socket is closed

    async with _listen(_scripted(die)) as port:
        async with aiofutu.connect("127.0.0.1", port, transport="websocket", timeout=30) as c:
            started = time.monotonic()
            with pytest.raises(aiofutu.ConnectionLost) as info:
                await c.request(3010, b"", qot_get_ticker_pb2.Response)
            assert time.monotonic() - started < 2
            if how == "a close frame":
                assert "code 1011: bye" in str(info.value)
            assert not c.connected


async def test_bad_packets_are_typed_errors_and_the_link_goes_on() -> None:
    """An error header without a body, a packet that is too short, a text message: the request
    they answer (if any) gets a typed error, and the connection serves the next one."""

    async def odd(gateway: Gateway, request: wscodec.WsRequest) -> None:
        from wsproto.events import TextMessage

        await gateway.stream.send(gateway.ws.send(TextMessage(data="hello")))
        await gateway.send_packet(b"ft-v1.0\x00short")
        if request.body == b"\x08\x01":  # the first request: an error without a body
            await gateway.send_packet(
                wscodec.encode_reply(3010, request.section, b"", error=5, errmsg="denied")
            )
        else:
            await gateway.send_packet(_ticker_reply(request.section))

    async with _listen(_scripted(odd)) as port:
        async with aiofutu.connect("127.0.0.1", port, transport="websocket", timeout=5) as c:
            with pytest.raises(aiofutu.RemoteProtocolError, match="error 5 \\(denied\\)"):
                await c.request(
                    3010, b"\x08\x01", qot_get_ticker_pb2.Response
                )  # an encoded body is sent as is
            response = await c.request(3010, b"", qot_get_ticker_pb2.Response)
            assert response.s2c.security.code == "00700"
            assert c.connected
            assert c.stats()["bad_frames"] >= 4


# ---- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"transport": "udp"}, "transport must be"),
        ({"websocket_key": "k"}, 'transport="websocket" only'),
        ({"ssl": True}, 'transport="websocket" only'),
        ({"transport": "websocket", "ssl": "yes"}, "ssl must be"),
        ({"transport": "websocket", "websocket_key": 5}, "websocket_key must be"),
        ({"transport": "websocket", "websocket_ping_interval": 0}, "positive number"),
        ({"transport": "websocket", "rsa_private_key": "opend.pem"}, "use ssl="),
    ],
)
def test_bad_options_fail_at_once(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(aiofutu.ConfigurationError, match=match):
        aiofutu.connect(**kwargs)  # type: ignore[arg-type]


def test_without_wsproto_a_clear_missing_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wsproto", None)
    with pytest.raises(aiofutu.MissingDependency, match=r'pip install "aiofutu\[ws\]"'):
        aiofutu.connect("127.0.0.1", 1, transport="websocket")
    aiofutu.connect("127.0.0.1", 1)  # TCP does not need it

"""The client's sans-IO WebSocket framing, in memory: a wsproto server makes the bytes.

Packets in plain binary frames are cut by the framing itself; every other frame (fragments,
Ping, Close, text, broken ones) goes to wsproto whole. Both paths must give the same packets,
in order, whatever the chunking of the byte stream.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    Request,
    TextMessage,
)

from aiofutu import _wscodec as wscodec
from aiofutu._codec import Frame
from aiofutu._wsframing import WsClientFraming
from aiofutu.errors import ConnectionLost, RemoteProtocolError


def _pair(**kwargs: int) -> tuple[WsClientFraming, WSConnection, bytes]:
    """A framing after its upgrade request, the server that took it, and the server's 101."""
    client = WsClientFraming("127.0.0.1", 33333, **kwargs)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.handshake())
    (request,) = server.events()
    assert isinstance(request, Request) and request.target == "/"
    assert request.subprotocols == [] and request.extensions == []
    return client, server, server.send(AcceptConnection())


def _packet(cmd: int, section: int, body: bytes = b"", **kwargs: object) -> bytes:
    return wscodec.encode_reply(cmd, section, body, **kwargs)  # type: ignore[arg-type]


def _fragments(server: WSConnection, packet: bytes, parts: int) -> bytes:
    step = max(1, len(packet) // parts)
    chunks = [packet[i : i + step] for i in range(0, len(packet), step)]
    return b"".join(
        server.send(Message(data=chunk, message_finished=i == len(chunks) - 1))
        for i, chunk in enumerate(chunks)
    )


def _feed_all(client: WsClientFraming, data: bytes, cuts: list[int] | None = None) -> list[Frame]:
    out: list[Frame] = []
    points = sorted({c for c in (cuts or []) if 0 < c < len(data)})
    start = 0
    for end in [*points, len(data)]:
        client.feed(data[start:end])
        start = end
        while True:
            frames = client.drain()
            out.extend(frames)
            if not client.has_deferred_error:
                break
    return out


def _stream(server: WSConnection) -> tuple[bytes, list[Frame]]:
    """Packets in plain frames, fragmented messages and control frames, interleaved."""
    expected: list[Frame] = []
    data = b""
    for i in range(40):
        body = bytes([i]) * (i * 37 % 300)
        packet = _packet(3011, 0 if i % 3 else i + 2, body)
        expected.append(Frame(3011, 0 if i % 3 else i + 2, body))
        if i % 7 == 3:
            data += _fragments(server, packet, 3)
        elif i % 11 == 5:
            data += server.send(Ping(payload=b"p")) + server.send(BytesMessage(data=packet))
        else:
            data += server.send(BytesMessage(data=packet))
    big = bytes(70_000)  # a 64-bit length field
    data += server.send(BytesMessage(data=_packet(3010, 99, big)))
    expected.append(Frame(3010, 99, big))
    return data, expected


def test_upgrade_then_packets_in_one_chunk() -> None:
    client, server, accept = _pair()
    data, expected = _stream(server)
    accepted: list[bool] = []
    client.on_accept = lambda: accepted.append(True)
    assert _feed_all(client, accept + data) == expected
    assert accepted == [True] and client.accepted
    pongs = client.take_outgoing()  # the Pings were answered
    assert pongs
    server.receive_data(pongs)
    assert [type(e).__name__ for e in server.events()] == ["Pong"] * 3  # i = 5, 16, 27


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=80_000), max_size=40))
def test_any_chunking_gives_the_same_packets(cuts: list[int]) -> None:
    client, server, accept = _pair()
    data, expected = _stream(server)
    assert _feed_all(client, accept + data, cuts) == expected


def test_requests_are_masked_packets_the_server_reads() -> None:
    client, server, accept = _pair()
    _feed_all(client, accept)
    wire = client.encode(3010, 7, b"\x08\x01")
    assert wire[1] & 0x80  # masked, as a client must
    server.receive_data(wire)
    (message,) = server.events()
    assert isinstance(message, BytesMessage)
    assert wscodec.decode_request(message.data) == wscodec.WsRequest(3010, 7, b"\x08\x01")
    server.receive_data(client.ping())
    assert [type(e).__name__ for e in server.events()] == ["Ping"]


def test_a_bad_packet_is_recoverable_and_the_next_one_arrives() -> None:
    client, server, accept = _pair()
    good = _packet(3011, 0, b"x")
    data = (
        server.send(BytesMessage(data=good))
        + server.send(BytesMessage(data=b"ft-v1.0\x00short"))
        + server.send(BytesMessage(data=_packet(3010, 5, b"", error=5, errmsg="denied")))
        + server.send(TextMessage(data="hi"))
        + server.send(BytesMessage(data=good))
    )
    client.feed(accept + data)
    assert client.drain() == [Frame(3011, 0, b"x")]
    assert client.has_deferred_error
    with pytest.raises(RemoteProtocolError, match="shorter than the 44-byte header") as short:
        client.drain()
    assert short.value.recoverable
    with pytest.raises(RemoteProtocolError, match=r"error 5 \(denied\) and no body") as denied:
        client.drain()
    assert (denied.value.proto_id, denied.value.serial) == (3010, 5)
    with pytest.raises(RemoteProtocolError, match="text"):
        client.drain()
    assert client.drain() == [Frame(3011, 0, b"x")]


def test_close_is_echoed_and_ends_the_link() -> None:
    client, server, accept = _pair()
    data = server.send(BytesMessage(data=_packet(3011, 0, b"a"))) + server.send(
        CloseConnection(code=1011, reason="bye")
    )
    client.feed(accept + data)
    assert client.drain() == [Frame(3011, 0, b"a")]
    with pytest.raises(ConnectionLost, match="code 1011: bye"):
        client.drain()
    server.receive_data(client.take_outgoing())
    (echo,) = server.events()
    assert isinstance(echo, CloseConnection) and echo.code == 1011
    with pytest.raises(ConnectionLost):
        client.feed(b"more")


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (b"\x82\x85\x00\x00\x00\x00hello", "broken WebSocket framing"),  # masked by a server
        (b"\xc2\x01x", "broken WebSocket framing"),  # an RSV bit, no extension agreed
        (b"\x00\x01x", "broken WebSocket framing"),  # a continuation of nothing
    ],
)
def test_broken_framing_is_fatal(frame: bytes, match: str) -> None:
    client, _, accept = _pair()
    client.feed(accept + frame)
    with pytest.raises(RemoteProtocolError, match=match) as info:
        client.drain()
    assert not info.value.recoverable
    assert client.take_outgoing()  # wsproto's Close (1002) for the server


def test_a_frame_over_the_limit_is_refused_from_its_header() -> None:
    client, _, accept = _pair(max_message=1000)
    client.feed(accept + b"\x82\x7f" + struct.pack(">Q", 1 << 40))
    with pytest.raises(RemoteProtocolError, match="over the limit of 1000"):
        client.drain()


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        (b"FT\x00\x00\x01\x00", "TCP API port"),
        (b"\x15\x03\x01\x00\x02\x02\x46", "TLS server"),
        (b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n", "HTTP 404"),
        (b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n", "bad reply"),
    ],
)
def test_a_peer_that_is_not_a_gateway(reply: bytes, match: str) -> None:
    client, _, _ = _pair()
    with pytest.raises(RemoteProtocolError, match=match):
        client.feed(reply)
        client.drain()
    assert not client.accepted

"""Hostile and broken input: each case gets a typed error and loses no unrelated work."""

from __future__ import annotations

import struct

import anyio
import pytest

import aiofutu
from aiofutu import RetType, SubType, sim
from aiofutu._codec import encode_frame
from aiofutu._pb import keep_alive_pb2, qot_get_ticker_pb2, qot_update_ticker_pb2

from .scripted import scripted

pytestmark = pytest.mark.anyio


def keepalive_reply(serial: int) -> bytes:
    resp = keep_alive_pb2.Response(retType=0)
    resp.s2c.time = 1
    return encode_frame(1004, serial, resp.SerializeToString())


async def keepalive(client: aiofutu.Client) -> int:
    req = keep_alive_pb2.Request()
    req.c2s.time = 1
    resp = await client.request(aiofutu.ProtoId.KEEP_ALIVE, req, timeout=2)
    return int(resp.s2c.time)


async def test_wrong_magic_closes_with_protocol_error() -> None:
    def handler(proto_id: int, serial: int, body: bytes) -> bytes:
        return b"XY" + keepalive_reply(serial)[2:]

    async with scripted(handler) as srv, aiofutu.connect("127.0.0.1", srv.port) as client:
        with pytest.raises(aiofutu.RemoteProtocolError, match="magic") as info:
            await keepalive(client)
        assert info.value.proto_id == 1004
        assert not info.value.recoverable
        with pytest.raises(aiofutu.ConnectionLost, match="magic"):
            await keepalive(client)


async def test_bad_sha1_fails_that_request_only() -> None:
    async with sim.serve(port=0, tick_rate=0) as server:
        async with aiofutu.connect("127.0.0.1", server.port) as client:
            await client.subscribe(["HK.00700"], [SubType.TICKER])
            server.faults.corrupt_replies = 1
            with pytest.raises(aiofutu.RemoteProtocolError, match="SHA1") as info:
                await client.get_rt_ticker("HK.00700", 5)
            assert info.value.recoverable
            assert info.value.proto_id == aiofutu.ProtoId.QOT_GET_TICKER
            assert len(await client.get_rt_ticker("HK.00700", 5)) == 5
            assert client.stats()["bad_frames"] == 1


async def test_oversized_body_is_rejected_before_buffering() -> None:
    async with sim.serve(port=0, tick_rate=0) as server:
        async with aiofutu.connect("127.0.0.1", server.port, max_body=2000) as client:
            await client.subscribe(["HK.00700"], [SubType.TICKER])
            with pytest.raises(aiofutu.RemoteProtocolError, match="exceeds the limit"):
                await client.get_rt_ticker("HK.00700", 1000)
            assert not client.connected


async def test_truncated_frame_then_eof() -> None:
    def handler(proto_id: int, serial: int, body: bytes) -> bytes | None:
        if proto_id == 1004:
            return keepalive_reply(serial)[:30]
        return None

    async with scripted(handler) as srv, aiofutu.connect("127.0.0.1", srv.port) as client:

        async def truncated() -> None:
            with pytest.raises(aiofutu.ConnectionLost):
                await keepalive(client)

        async with anyio.create_task_group() as tg:
            tg.start_soon(truncated)
            await anyio.sleep(0.2)
            for stream in list(srv.streams):
                await stream.aclose()


async def test_unknown_proto_id_and_unknown_serial_are_skipped() -> None:
    def handler(proto_id: int, serial: int, body: bytes) -> bytes:
        junk_reply = encode_frame(1004, serial + 1000, b"")  # answers nothing we asked
        unknown = encode_frame(9999, serial, b"\x08\x00")  # a protocol we do not know
        return junk_reply + unknown + keepalive_reply(serial)

    async with scripted(handler) as srv, aiofutu.connect("127.0.0.1", srv.port) as client:
        assert await keepalive(client) == 1
        assert await keepalive(client) == 1
        stats = client.stats()
        assert stats["unmatched_replies"] == 4
        assert client.connected


async def test_reply_that_does_not_parse() -> None:
    def handler(proto_id: int, serial: int, body: bytes) -> bytes:
        if body == b"\x0a\x02\x08\x07":  # our KeepAlive with time=7: answer garbage
            return encode_frame(proto_id, serial, b"\xff\xff\xff\xff")
        return keepalive_reply(serial)

    async with scripted(handler) as srv, aiofutu.connect("127.0.0.1", srv.port) as client:
        req = keep_alive_pb2.Request()
        req.c2s.time = 7
        with pytest.raises(aiofutu.RemoteProtocolError, match="does not parse") as info:
            await client.request(aiofutu.ProtoId.KEEP_ALIVE, req, timeout=2)
        assert info.value.recoverable
        assert await keepalive(client) == 1


@pytest.mark.parametrize("ret_type", [*(int(r) for r in RetType if r != 0), -7, 12])
async def test_every_ret_type_is_opend_error(ret_type: int) -> None:
    def handler(proto_id: int, serial: int, body: bytes) -> bytes:
        resp = keep_alive_pb2.Response(retType=ret_type, retMsg="nope", errCode=33)
        return encode_frame(proto_id, serial, resp.SerializeToString())

    async with scripted(handler) as srv, aiofutu.connect("127.0.0.1", srv.port) as client:
        with pytest.raises(aiofutu.OpenDError) as info:
            await keepalive(client)
        err = info.value
        assert (err.ret_type, err.err_code, err.ret_msg, err.proto_id) == (
            ret_type,
            33,
            "nope",
            1004,
        )
        assert client.connected


async def test_bad_pushes_are_counted_not_fatal() -> None:
    def handler(proto_id: int, serial: int, body: bytes) -> bytes:
        return keepalive_reply(serial)

    async with scripted(handler) as srv, aiofutu.connect("127.0.0.1", srv.port) as client:
        stream = client.ticker_stream("HK.00700")
        client._book.confirmed(["HK.00700"], [SubType.TICKER], push=True)  # pretend it exists
        await stream.start()
        push = qot_update_ticker_pb2.Response(retType=0)
        push.s2c.security.market = 11
        push.s2c.security.code = "NOPE"  # a code nobody streams
        push.s2c.tickerList.add(time="t", sequence=1, dir=1, price=1.0, volume=1, turnover=1.0)
        await srv.inject(encode_frame(3011, 0, push.SerializeToString()))
        await srv.inject(encode_frame(3011, 0, b"\xff\xff\xff"))  # push that does not parse
        body = b"\x0a"
        header = struct.pack("<2sIBBII20s8s", b"FT", 3011, 0, 0, 0, len(body), b"\0" * 20, b"")
        await srv.inject(header + body)  # bad SHA1 push
        assert await keepalive(client) == 1
        stats = client.stats()
        assert stats["unrouted_pushes"] == 1
        assert stats["bad_pushes"] == 1
        assert stats["bad_frames"] == 1
        assert stream.pending == 0


async def test_server_closing_right_after_accept() -> None:
    async with scripted(lambda *a: b"") as srv:
        srv.close_after_accept = True
        with pytest.raises(aiofutu.ConnectError, match="InitConnect"):
            async with aiofutu.connect("127.0.0.1", srv.port, connect_timeout=2):
                pass


async def test_get_ticker_reply_for_other_security_still_parses() -> None:
    def handler(proto_id: int, serial: int, body: bytes) -> bytes:
        if proto_id == 3001:
            return encode_frame(3001, serial, b"\x08\x00\x22\x00")
        resp = qot_get_ticker_pb2.Response(retType=0)
        resp.s2c.security.market = 1
        resp.s2c.security.code = "00700"
        return encode_frame(proto_id, serial, resp.SerializeToString())

    async with scripted(handler) as srv, aiofutu.connect("127.0.0.1", srv.port) as client:
        await client.subscribe(["HK.00700"], [SubType.TICKER])
        assert await client.get_rt_ticker("HK.00700", 10) == []


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda c: c.subscribe(123, [SubType.TICKER]), "codes"),
        (lambda c: c.subscribe(["HK.00700"], 4), "sub_types"),
        (lambda c: c.subscribe(["HK.00700"], ["TICK"]), "sub type"),
        (lambda c: c.subscribe([], [SubType.TICKER]), "codes"),
        (lambda c: c.subscribe(["HK.00700"], [SubType.TICKER], session="X"), "session"),
        (lambda c: c.get_rt_ticker("HK.00700", 10, timeout=-1), "timeout"),
        (lambda c: c.query_subscription(timeout="x"), "timeout"),
    ],
)
async def test_bad_user_arguments(call: object, name: str) -> None:
    async with sim.serve(port=0, tick_rate=0) as server:
        async with aiofutu.connect("127.0.0.1", server.port) as client:
            await client.subscribe(["HK.00700"], [SubType.TICKER])
            with pytest.raises(aiofutu.ConfigurationError, match=name) as info:
                await call(client)  # type: ignore[operator]
            assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"port": "11111"}, "port"),
        ({"port": 0}, "port"),
        ({"host": ""}, "host"),
        ({"timeout": 0}, "timeout"),
        ({"connect_timeout": -1}, "connect_timeout"),
        ({"client_id": ""}, "client_id"),
        ({"reconnect": "yes"}, "reconnect"),
        ({"max_body": 0}, "max_body"),
    ],
)
def test_bad_connect_arguments(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(aiofutu.ConfigurationError, match=name):
        aiofutu.connect(**kwargs)  # type: ignore[arg-type]


async def test_stream_arguments() -> None:
    async with sim.serve(port=0, tick_rate=0) as server:
        async with aiofutu.connect("127.0.0.1", server.port) as client:
            with pytest.raises(aiofutu.ConfigurationError, match="buffer"):
                client.ticker_stream("HK.00700", buffer=0)
            with pytest.raises(aiofutu.ConfigurationError, match="overflow"):
                client.ticker_stream("HK.00700", overflow="sometimes")  # type: ignore[arg-type]
            with pytest.raises(aiofutu.InvalidCode):
                client.ticker_stream("AAPL")
            with pytest.raises(aiofutu.ConfigurationError, match="max_rows"):
                client.ticker_frames(["HK.00700"], max_rows=0)
            with pytest.raises(aiofutu.ConfigurationError, match="max_latency"):
                client.ticker_frames(["HK.00700"], max_latency=-1)

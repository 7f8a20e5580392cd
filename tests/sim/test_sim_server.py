"""The simulator over real sockets, driven by a raw client (codec + protobuf, no aiofutu client)."""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from aiofutu import sim
from aiofutu._codec import Frame, FrameDecoder, encode_frame
from aiofutu._pb import (
    get_global_state_pb2,
    init_connect_pb2,
    keep_alive_pb2,
    qot_common_pb2,
    qot_get_sub_info_pb2,
    qot_get_ticker_pb2,
    qot_reg_qot_push_pb2,
    qot_sub_pb2,
    qot_update_ticker_pb2,
)
from aiofutu.errors import RemoteProtocolError

if TYPE_CHECKING:
    from anyio.abc import SocketStream

TICKER, QUOTE = 4, 1
HK, US = 1, 11
_MODULES: dict[int, Any] = {
    1001: init_connect_pb2,
    1002: get_global_state_pb2,
    1004: keep_alive_pb2,
    3001: qot_sub_pb2,
    3002: qot_reg_qot_push_pb2,
    3003: qot_get_sub_info_pb2,
    3010: qot_get_ticker_pb2,
}
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$")


def _security(code: str) -> qot_common_pb2.Security:
    market, short = code.split(".", 1)
    return qot_common_pb2.Security(market={"HK": HK, "US": US}[market], code=short)


class RawClient:
    """Just enough of a client: send requests, match replies, collect pushes."""

    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self.decoder = FrameDecoder()
        self.serial = 100
        self.pushes: list[Frame] = []

    async def send(self, proto_id: int, message: Any) -> int:
        self.serial += 1
        await self.stream.send(encode_frame(proto_id, self.serial, message.SerializeToString()))
        return self.serial

    async def frame(self, timeout: float = 5.0) -> Frame:
        with anyio.fail_after(timeout):
            while True:
                frame = self.decoder.next_frame()
                if frame is not None:
                    return frame
                self.decoder.feed(await self.stream.receive(1 << 20))

    async def request(self, proto_id: int, c2s: Any) -> Any:
        module = _MODULES[proto_id]
        serial = await self.send(proto_id, module.Request(c2s=c2s))
        while True:
            frame = await self.frame()
            if frame.proto_id == 3011:
                self.pushes.append(frame)
                continue
            if frame.proto_id in (3005, 3013, 3015):  # state kinds' first pushes: not tested here
                continue
            assert (frame.proto_id, frame.serial) == (proto_id, serial)
            return module.Response.FromString(frame.body)

    async def init(self) -> init_connect_pb2.Response:
        c2s = init_connect_pb2.C2S(clientVer=300, clientID="test", recvNotify=True)
        response = await self.request(1001, c2s)
        assert response.retType == 0
        return response  # type: ignore[no-any-return]

    async def subscribe(
        self, codes: list[str], types: list[int], *, push: bool = True, first: bool = True
    ) -> qot_sub_pb2.Response:
        c2s = qot_sub_pb2.C2S(
            securityList=[_security(c) for c in codes],
            subTypeList=types,
            isSubOrUnSub=True,
            isRegOrUnRegPush=push,
            isFirstPush=first,
        )
        return await self.request(3001, c2s)  # type: ignore[no-any-return]

    async def unsubscribe(self, codes: list[str], types: list[int]) -> qot_sub_pb2.Response:
        c2s = qot_sub_pb2.C2S(
            securityList=[_security(c) for c in codes], subTypeList=types, isSubOrUnSub=False
        )
        return await self.request(3001, c2s)  # type: ignore[no-any-return]

    async def get_ticker(self, code: str, n: int) -> qot_get_ticker_pb2.Response:
        c2s = qot_get_ticker_pb2.C2S(security=_security(code), maxRetNum=n)
        return await self.request(3010, c2s)  # type: ignore[no-any-return]

    async def push(self, timeout: float = 5.0) -> qot_update_ticker_pb2.Response:
        frame = self.pushes.pop(0) if self.pushes else await self.frame(timeout)
        assert frame.proto_id == 3011
        return qot_update_ticker_pb2.Response.FromString(frame.body)


async def _connect(server: sim.Simulator, *, init: bool = True) -> RawClient:
    client = RawClient(await anyio.connect_tcp(server.host, server.port))
    if init:
        await client.init()
    return client


async def test_init_connect_reply() -> None:
    async with sim.serve(tick_rate=0, keepalive_interval=7) as server:
        async with await anyio.connect_tcp(server.host, server.port) as s1:
            async with await anyio.connect_tcp(server.host, server.port) as s2:
                r1 = await RawClient(s1).init()
                r2 = await RawClient(s2).init()
                assert server.connection_count == 2
    for r in (r1, r2):
        assert r.HasField("s2c")
        assert r.s2c.serverVer == 1011
        assert r.s2c.loginUserID > 0
        assert r.s2c.keepAliveInterval == 7
        assert len(r.s2c.connAESKey) == 16
        assert not r.s2c.HasField("aesCBCiv")
    assert r1.s2c.connID != r2.s2c.connID


async def test_request_before_init_connect_is_refused() -> None:
    async with sim.serve(tick_rate=0) as server:
        async with (await _connect(server, init=False)).stream as stream:
            client = RawClient(stream)
            c2s = keep_alive_pb2.C2S(time=1)
            reply = await client.request(1004, c2s)
            assert reply.retType == -1
            assert "InitConnect" in reply.retMsg
            await client.init()  # still usable afterwards
            reply = await client.request(1004, c2s)
            assert reply.retType == 0
            assert abs(reply.s2c.time - time.time()) < 5


async def test_global_state() -> None:
    async with sim.serve(tick_rate=0) as server:
        client = await _connect(server)
        async with client.stream:
            c2s = get_global_state_pb2.C2S(userID=0)
            reply = await client.request(1002, c2s)
    assert reply.retType == 0
    assert reply.s2c.IsInitialized()
    assert reply.s2c.qotLogined
    assert not reply.s2c.trdLogined
    assert reply.s2c.marketHK in {1, 2, 3, 4, 5, 6}
    assert reply.s2c.connID > 0


async def test_unknown_proto_and_garbage_body() -> None:
    async with sim.serve(tick_rate=0) as server:
        client = await _connect(server)
        async with client.stream:
            await client.stream.send(encode_frame(9999, 77, b"\x0a\x00"))
            frame = await client.frame()
            assert (frame.proto_id, frame.serial) == (9999, 77)
            reply = keep_alive_pb2.Response.FromString(frame.body)
            assert reply.retType == -1
            assert "9999" in reply.retMsg
            await client.stream.send(encode_frame(3010, 5, b"\xff\xff\xff"))
            frame = await client.frame()
            assert keep_alive_pb2.Response.FromString(frame.body).retType == -1
            await client.stream.send(encode_frame(1004, 6, b""))  # no c2s
            frame = await client.frame()
            reply = keep_alive_pb2.Response.FromString(frame.body)
            assert reply.retType == -1
            assert "c2s" in reply.retMsg


async def test_subscribe_then_get_ticker_1000() -> None:
    async with sim.serve(tick_rate=0) as server:
        client = await _connect(server)
        async with client.stream:
            assert (await client.subscribe(["HK.00700"], [TICKER], push=False)).retType == 0
            reply = await client.get_ticker("HK.00700", 1000)
            more = await client.get_ticker("HK.00700", 5000)
            few = await client.get_ticker("HK.00700", 10)
    assert reply.retType == 0
    assert reply.s2c.name == "Tencent"
    assert (reply.s2c.security.market, reply.s2c.security.code) == (HK, "00700")
    ticks = list(reply.s2c.tickerList)
    assert len(ticks) == 1000
    assert len(more.s2c.tickerList) == 1000
    assert list(few.s2c.tickerList) == ticks[-10:]
    assert ticks == server.market.history("HK.00700")
    required = ("time", "sequence", "dir", "price", "volume", "turnover", "recvTime", "type")
    for tick in ticks:
        for field in (*required, "typeSign", "pushDataType", "timestamp"):
            assert tick.HasField(field), field
        assert not tick.HasField("hpVolume")
        assert tick.sequence >> 32 == int(tick.timestamp)
        assert _TIME.match(tick.time)
        assert tick.pushDataType == 1
        assert tick.dir in (1, 2, 3)
        assert tick.turnover == pytest.approx(tick.price * tick.volume)
    sequences = [t.sequence for t in ticks]
    assert sequences == sorted(set(sequences))


async def test_get_ticker_errors() -> None:
    async with sim.serve(tick_rate=0) as server:
        client = await _connect(server)
        async with client.stream:
            reply = await client.get_ticker("HK.00700", 10)
            assert reply.retType == -1
            assert "TICKER" in reply.retMsg
            assert "subscribe" in reply.retMsg
            await client.subscribe(["HK.00700"], [QUOTE])
            assert (await client.get_ticker("HK.00700", 10)).retType == -1
            await client.subscribe(["HK.00700"], [TICKER])
            reply = await client.get_ticker("HK.00700", 0)
            assert reply.retType == -1
            assert "maxRetNum" in reply.retMsg


async def test_first_push_duplicate_then_live_push() -> None:
    async with sim.serve(tick_rate=50, codes=()) as server:
        client = await _connect(server)
        async with client.stream:
            await client.subscribe(["HK.00700"], [TICKER])
            first = await client.push()
            last_stored = first.s2c.tickerList[0]
            history = await client.get_ticker("HK.00700", 1000)
            assert last_stored in list(history.s2c.tickerList)  # a re-sent, already known tick
            live = await client.push(timeout=2)
    assert first.retType == 0
    assert first.s2c.name == "Tencent"
    tick = live.s2c.tickerList[0]
    assert tick.sequence > last_stored.sequence
    assert tick.sequence >> 32 == int(tick.timestamp)


async def test_no_push_without_registration_and_reg_qot_push() -> None:
    async with sim.serve(tick_rate=0) as server:
        client = await _connect(server)
        async with client.stream:
            await client.subscribe(["HK.00700"], [TICKER], push=False)
            await server.burst("HK.00700", 5)
            c2s = qot_reg_qot_push_pb2.C2S(
                securityList=[_security("HK.00700")],
                subTypeList=[TICKER],
                isRegOrUnReg=True,
                isFirstPush=False,
            )
            reply = await client.request(3002, c2s)
            assert reply.retType == 0
            assert not client.pushes
            await server.burst("HK.00700", 3)
            pushes = [await client.push() for _ in range(3)]
    assert [p.s2c.tickerList[0] for p in pushes] == server.market.history("HK.00700")[-3:]


async def test_unsubscribe_minimum_age() -> None:
    async with sim.serve(tick_rate=0) as server:
        client = await _connect(server)
        async with client.stream:
            await client.subscribe(["HK.00700"], [TICKER], first=False)
            reply = await client.unsubscribe(["HK.00700"], [TICKER])
            assert reply.retType == -1
            assert "one minute" in reply.retMsg
            c2s = qot_sub_pb2.C2S(isSubOrUnSub=False, isUnsubAll=True)
            reply = await client.request(3001, c2s)
            assert reply.retType == -1
    async with sim.serve(tick_rate=0, unsub_min_age=0) as server:
        client = await _connect(server)
        async with client.stream:
            await client.subscribe(["HK.00700"], [TICKER], first=False)
            reply = await client.unsubscribe(["HK.00700"], [TICKER])
            assert reply.retType == 0
            assert reply.HasField("s2c")
            assert (await client.get_ticker("HK.00700", 1)).retType == -1
            await server.burst("HK.00700", 10)  # no longer registered: nothing arrives
            info = await client.request(3003, qot_get_sub_info_pb2.C2S())
            assert info.s2c.totalUsedQuota == 0
            assert not client.pushes


async def test_subscribing_many_codes_does_not_build_their_history() -> None:
    codes = [f"HK.{10000 + i:05d}" for i in range(300)]
    async with sim.serve(tick_rate=0, allow_any_code=True, codes=()) as server:
        client = await _connect(server)
        async with client.stream:
            assert (await client.subscribe(codes, [TICKER])).retType == 0  # with first pushes
            firsts = [await client.push() for _ in codes]
            made = [server.market.security(code).history_made for code in codes]
            reply = await client.get_ticker(codes[7], 1000)
    assert made == [1] * len(codes)  # only the latest tick, for the first push
    assert {p.s2c.security.code for p in firsts} == {c[3:] for c in codes}
    ticks = list(reply.s2c.tickerList)
    assert len(ticks) == 1000
    assert ticks == server.market.history(codes[7])
    assert ticks[-1] == firsts[7].s2c.tickerList[0]
    assert server.market.security(codes[8]).history_made == 1


async def test_sub_info() -> None:
    async with sim.serve(tick_rate=0, sub_quota=100) as server:
        a = await _connect(server)
        b = await _connect(server)
        async with a.stream, b.stream:
            await a.subscribe(["HK.00700"], [TICKER, QUOTE], first=False)
            await a.subscribe(["US.AAPL"], [TICKER], first=False)
            await b.subscribe(["HK.00700", "HK.09988"], [TICKER], first=False)
            own = await a.request(3003, qot_get_sub_info_pb2.C2S())
            every = await b.request(3003, qot_get_sub_info_pb2.C2S(isReqAllConn=True))
    assert own.retType == 0
    assert own.s2c.totalUsedQuota == 4  # HK.00700 TICKER counts once for both connections
    assert own.s2c.remainQuota == 96
    (conn,) = own.s2c.connSubInfoList
    assert conn.isOwnConnData
    assert conn.usedQuota == 3
    groups = {i.subType: sorted(s.code for s in i.securityList) for i in conn.subInfoList}
    assert groups == {QUOTE: ["00700"], TICKER: ["00700", "AAPL"]}
    assert len(every.s2c.connSubInfoList) == 2
    assert sorted(c.isOwnConnData for c in every.s2c.connSubInfoList) == [False, True]


async def test_quota_refusal() -> None:
    async with sim.serve(tick_rate=0, sub_quota=2) as server:
        client = await _connect(server)
        async with client.stream:
            reply = await client.subscribe(["HK.00700", "HK.09988", "US.AAPL"], [TICKER])
            assert reply.retType == -1
            assert reply.errCode != 0
            assert "quota" in reply.retMsg
            assert (await client.subscribe(["HK.00700", "HK.09988"], [TICKER])).retType == 0
            assert (await client.subscribe(["HK.00700"], [TICKER])).retType == 0  # already held
            assert (await client.subscribe(["US.AAPL"], [TICKER])).retType == -1


async def test_invalid_subscriptions() -> None:
    async with sim.serve(tick_rate=0) as server:
        client = await _connect(server)
        async with client.stream:
            assert (await client.subscribe(["HK.00700"], [])).retType == -1
            bad = qot_common_pb2.Security(market=999, code="X")
            c2s = qot_sub_pb2.C2S(securityList=[bad], subTypeList=[TICKER], isSubOrUnSub=True)
            reply = await client.request(3001, c2s)
            assert reply.retType == -1
            assert "market=999" in reply.retMsg


async def test_skip_ticks_makes_a_counter_jump() -> None:
    async with sim.serve(tick_rate=0) as server:
        client = await _connect(server)
        async with client.stream:
            await client.subscribe(["HK.00700"], [TICKER], first=False)
            before = server.market.history("HK.00700")[-1].sequence
            server.skip_ticks("HK.00700", 5)
            await server.burst("HK.00700", 2)
            pushes = [await client.push() for _ in range(2)]
    counters = [p.s2c.tickerList[0].sequence & 0xFFFFFFFF for p in pushes]
    assert counters == [(before & 0xFFFFFFFF) + 6, (before & 0xFFFFFFFF) + 7]


@pytest.mark.parametrize("ticks_per_push", [1, 10])
async def test_burst_arrives_complete_and_in_order(ticks_per_push: int) -> None:
    n = 20_000
    async with sim.serve(tick_rate=0) as server:
        client = await _connect(server)
        async with client.stream:
            await client.subscribe(["HK.00700"], [TICKER], first=False)
            start = server.market.history("HK.00700")[-1].sequence & 0xFFFFFFFF
            received: list[int] = []

            async def read() -> None:
                while len(received) < n:
                    push = await client.push()
                    received.extend(t.sequence for t in push.s2c.tickerList)

            async with anyio.create_task_group() as tg:
                tg.start_soon(read)
                result = await server.burst("HK.00700", n, ticks_per_push=ticks_per_push)
    assert result.messages == n // ticks_per_push
    assert result.connections == 1
    assert [s & 0xFFFFFFFF for s in received] == list(range(start + 1, start + n + 1))
    assert server.market.history("HK.00700")[-1].sequence == received[-1]


async def test_burst_pushes_equal_protobuf_encoding() -> None:
    async with sim.serve(tick_rate=0) as server:
        client = await _connect(server)
        async with client.stream:
            await client.subscribe(["US.AAPL"], [TICKER], first=False)
            await server.burst("US.AAPL", 3, ticks_per_push=3)
            frame = await client.frame()
    expected = qot_update_ticker_pb2.Response(
        retType=0,
        s2c=qot_update_ticker_pb2.S2C(
            security=_security("US.AAPL"),
            tickerList=server.market.history("US.AAPL")[-3:],
            name="Apple Inc.",
        ),
    )
    assert frame.body == expected.SerializeToString()


async def test_drop_connections_gives_eof() -> None:
    async with sim.serve(tick_rate=0) as server:
        client = await _connect(server)
        async with client.stream:
            await server.drop_connections()
            assert server.connection_count == 0
            with anyio.fail_after(5), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                await client.stream.receive()
        client = await _connect(server)  # the server still accepts new connections
        async with client.stream:
            assert server.connection_count == 1
            await server.drop_connections(reset=True)
            with anyio.fail_after(5), pytest.raises(anyio.BrokenResourceError):
                await client.stream.receive()


async def test_stall_and_reply_delay() -> None:
    async with sim.serve(tick_rate=0) as server:
        client = await _connect(server)
        async with client.stream:
            server.stall = True
            await client.send(1004, keep_alive_pb2.Request(c2s=keep_alive_pb2.C2S(time=1)))
            with pytest.raises(TimeoutError):
                await client.frame(timeout=0.2)
            server.stall = False
            server.reply_delay = 0.2
            started = anyio.current_time()
            c2s = keep_alive_pb2.C2S(time=1)
            reply = await client.request(1004, c2s)
            assert reply.retType == 0
            assert anyio.current_time() - started >= 0.15


async def test_corrupt_sha1_reply() -> None:
    async with sim.serve(tick_rate=0) as server:
        client = await _connect(server)
        async with client.stream:
            server.faults.corrupt_replies = 1
            await client.send(1004, keep_alive_pb2.Request(c2s=keep_alive_pb2.C2S(time=1)))
            with pytest.raises(RemoteProtocolError, match="SHA1"):
                await client.frame()
            c2s = keep_alive_pb2.C2S(time=1)
            assert (await client.request(1004, c2s)).retType == 0


async def test_live_flow_smoke() -> None:
    async with sim.serve(tick_rate=200, codes=("HK.00700",)) as server:
        client = await _connect(server)
        async with client.stream:
            await client.subscribe(["HK.00700"], [TICKER], first=False)
            push = await client.push(timeout=2)
            assert push.s2c.security.code == "00700"
            await server.burst("HK.00700", 100)
            await server.drop_connections()


async def test_client_that_does_not_read_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    async with sim.serve(tick_rate=0, max_push_backlog=256 * 1024) as server:
        client = await _connect(server)
        async with client.stream:
            await client.subscribe(["HK.00700"], [TICKER], first=False)
            (session,) = server.sessions()
            sec = server.market.security("HK.00700")
            server.push_ticks(sec, sec.generate(10_000))  # ~1.5 MB at once, never read
            with anyio.fail_after(5):
                await session.closed.wait()
            assert server.connection_count == 0
    assert "is not reading" in caplog.text


async def test_json_request_gets_json_reply() -> None:
    async with sim.serve(tick_rate=0, max_ticks=50) as server:
        client = await _connect(server)
        async with client.stream:
            await client.stream.send(encode_frame(1004, 9, b'{"c2s": {"time": "1"}}', fmt=1))
            frame = await client.frame()
            await client.subscribe(["HK.00700"], [TICKER], push=False)
            reply = await client.get_ticker("HK.00700", 1000)
    assert frame.fmt == 1
    body = json.loads(frame.body)
    assert body["retType"] == 0
    assert int(body["s2c"]["time"]) > 0
    assert len(reply.s2c.tickerList) == 50


async def test_json_pushes_when_asked_for() -> None:
    async with sim.serve(tick_rate=0) as server:
        client = await _connect(server, init=False)
        async with client.stream:
            c2s = init_connect_pb2.C2S(clientVer=300, clientID="json", pushProtoFmt=1)
            assert (await client.request(1001, c2s)).retType == 0
            await client.subscribe(["HK.00700"], [TICKER], first=True)
            await server.burst("HK.00700", 2, ticks_per_push=2)
            frames = [client.pushes.pop(0) if client.pushes else await client.frame()]
            frames.append(await client.frame())
    assert [f.fmt for f in frames] == [1, 1]
    pushes = [json.loads(f.body) for f in frames]
    assert [len(p["s2c"]["tickerList"]) for p in pushes] == [1, 2]
    assert pushes[1]["s2c"]["name"] == "Tencent"
    last = server.market.history("HK.00700")[-1]
    assert int(pushes[1]["s2c"]["tickerList"][1]["sequence"]) == last.sequence

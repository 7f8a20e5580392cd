"""The simulator's state kinds over real sockets, driven by a raw client (codec + protobuf, no
aiofutu client): basic quotes (3004/3005), order books (3012/3013) and HK broker queues
(3014/3015), derived from the tick tape, their first pushes and pushes, the test setters, a book
burst, and the errors for bad requests (which never end the session)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import pytest

from aiofutu import sim
from aiofutu._codec import Frame, FrameDecoder, encode_frame
from aiofutu._pb import (
    init_connect_pb2,
    keep_alive_pb2,
    qot_common_pb2,
    qot_get_basic_qot_pb2,
    qot_get_broker_pb2,
    qot_get_order_book_pb2,
    qot_reg_qot_push_pb2,
    qot_sub_pb2,
    qot_update_basic_qot_pb2,
    qot_update_broker_pb2,
    qot_update_order_book_pb2,
    qot_update_ticker_pb2,
)
from aiofutu.sim import ErrCode
from aiofutu.sim.kinds._common import tick_size, to_units
from aiofutu.sim.kinds.basic import DayFold

if TYPE_CHECKING:
    from anyio.abc import SocketStream

    from aiofutu.enums import Market

pytestmark = pytest.mark.anyio

QUOTE, BOOK, TICKER, BROKER, ODD = 1, 2, 4, 14, 22
HK, US, SH = "HK.00700", "US.AAPL", "SH.600519"
_WIRE = {"HK": 1, "US": 11, "SH": 21}
_MODULES: dict[int, Any] = {
    1001: init_connect_pb2,
    1004: keep_alive_pb2,
    3001: qot_sub_pb2,
    3002: qot_reg_qot_push_pb2,
    3004: qot_get_basic_qot_pb2,
    3012: qot_get_order_book_pb2,
    3014: qot_get_broker_pb2,
}
_PUSHES: dict[int, Any] = {
    3005: qot_update_basic_qot_pb2,
    3011: qot_update_ticker_pb2,
    3013: qot_update_order_book_pb2,
    3015: qot_update_broker_pb2,
}


def _security(code: str) -> qot_common_pb2.Security:
    market, short = code.split(".", 1)
    return qot_common_pb2.Security(market=_WIRE[market], code=short)


class RawClient:
    """Send requests, match replies, keep pushes (decoded) by protocol id."""

    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self.decoder = FrameDecoder()
        self.serial = 100
        self.pushes: list[tuple[int, Any]] = []

    @classmethod
    async def connect(cls, server: sim.Simulator) -> RawClient:
        client = cls(await anyio.connect_tcp("127.0.0.1", server.port))
        c2s = init_connect_pb2.C2S(clientVer=100, clientID="raw", recvNotify=False)
        assert (await client.request(1001, c2s)).retType == 0
        return client

    async def frame(self, timeout: float = 5.0) -> Frame:
        with anyio.fail_after(timeout):
            while True:
                frame = self.decoder.next_frame()
                if frame is not None:
                    return frame
                self.decoder.feed(await self.stream.receive(1 << 20))

    def _keep(self, frame: Frame) -> None:
        response = _PUSHES[frame.proto_id].Response.FromString(frame.body)
        assert response.retType == 0
        self.pushes.append((frame.proto_id, response.s2c))

    async def request(self, proto_id: int, c2s: Any) -> Any:
        self.serial += 1
        body = _MODULES[proto_id].Request(c2s=c2s).SerializePartialToString()
        await self.stream.send(encode_frame(proto_id, self.serial, body))
        while True:
            frame = await self.frame()
            if frame.proto_id in _PUSHES:
                self._keep(frame)
                continue
            assert (frame.proto_id, frame.serial) == (proto_id, self.serial)
            return _MODULES[proto_id].Response.FromString(frame.body)

    async def push(self, proto_id: int, timeout: float = 5.0) -> Any:
        """The next kept or arriving push of ``proto_id`` (others are kept)."""
        while True:
            for i, (pid, s2c) in enumerate(self.pushes):
                if pid == proto_id:
                    del self.pushes[i]
                    return s2c
            self._keep(await self.frame(timeout))

    async def quiet(self, seconds: float = 0.2) -> None:
        """Read whatever arrives for ``seconds`` into :attr:`pushes`."""
        with anyio.move_on_after(seconds):
            while True:
                self._keep(await self.frame(seconds + 1))

    async def subscribe(
        self, codes: list[str], types: list[int], *, push: bool = True, first: bool | None = None
    ) -> Any:
        c2s = qot_sub_pb2.C2S(
            securityList=[_security(c) for c in codes],
            subTypeList=types,
            isSubOrUnSub=True,
            isRegOrUnRegPush=push,
        )
        if first is not None:
            c2s.isFirstPush = first
        return await self.request(3001, c2s)

    async def quote(self, *codes: str) -> Any:
        c2s = qot_get_basic_qot_pb2.C2S(securityList=[_security(c) for c in codes])
        return await self.request(3004, c2s)

    async def book(self, code: str, num: int, book_type: int | None = None) -> Any:
        c2s = qot_get_order_book_pb2.C2S(security=_security(code), num=num)
        if book_type is not None:
            c2s.orderBookType = book_type
        return await self.request(3012, c2s)

    async def broker(self, code: str) -> Any:
        return await self.request(3014, qot_get_broker_pb2.C2S(security=_security(code)))

    async def alive(self) -> None:
        assert (await self.request(1004, keep_alive_pb2.C2S(time=0))).retType == 0

    async def aclose(self) -> None:
        await anyio.aclose_forcefully(self.stream)


def _serve(**options: Any) -> sim.Simulator:
    return sim.serve(tick_rate=0, unsub_min_age=0, **options)


def _fold(server: sim.Simulator, code: str) -> DayFold:
    ticks = server.market.history(code)
    date = ticks[-1].time[:10]
    return DayFold.from_ticks(t for t in ticks if t.time[:10] == date)


def _on_ladder(market: Market, price: float) -> bool:
    units = to_units(price)
    return units % tick_size(market, units, True) == 0


def _check_book(server: sim.Simulator, code: str, s2c: Any, levels: int) -> None:
    """Both sides ``levels`` deep, best first, on the ladder, centred on the last price."""
    sec = server.market.security(code)
    bids = [lv.price for lv in s2c.orderBookBidList]
    asks = [lv.price for lv in s2c.orderBookAskList]
    assert len(bids) == len(asks) == levels
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
    assert bids[0] < asks[0]
    assert all(_on_ladder(sec.market, p) for p in bids + asks)
    last = sec.latest()
    assert last is not None
    assert last.price in (bids[0], asks[0])  # the touch sits at the last traded price
    assert all(lv.volume > 0 and lv.orederCount > 0 for lv in s2c.orderBookBidList)


# ---- quotes ---------------------------------------------------------------------------------


async def test_quote_first_push_and_get_are_the_fold_of_the_tape() -> None:
    async with _serve() as server:
        client = await RawClient.connect(server)
        assert (await client.subscribe([HK], [QUOTE])).retType == 0
        first = await client.push(3005)
        fold = _fold(server, HK)
        (q,) = first.basicQotList
        assert q.curPrice == server.market.history(HK)[-1].price == fold.last
        assert (q.volume, q.highPrice, q.lowPrice, q.openPrice) == (
            fold.volume,
            fold.high,
            fold.low,
            fold.open,
        )
        assert q.turnover == pytest.approx(fold.turnover)
        assert q.updateTime == fold.last_time and q.name == "Tencent"
        assert q.lastClosePrice == 480.0 and q.priceSpread == 0.2  # HK ladder at 480
        reply = await client.quote(HK)
        assert reply.retType == 0 and list(reply.s2c.basicQotList) == [q]

        await server.burst(HK, 30, ticks_per_push=10)
        pushed = await client.push(3005)  # one state push after the burst
        burst = server.market.history(HK)[-30:]
        (after,) = pushed.basicQotList
        assert after.curPrice == burst[-1].price
        assert after.volume == fold.volume + sum(t.volume for t in burst)
        assert after.turnover == pytest.approx(fold.turnover + sum(t.turnover for t in burst))
        assert (await client.quote(HK)).s2c.basicQotList[0] == after
        await client.aclose()


async def test_quote_of_several_codes_and_in_json() -> None:
    async with _serve() as server:
        client = await RawClient.connect(server)
        assert (await client.subscribe([HK, US], [QUOTE], push=False)).retType == 0
        reply = await client.quote(US, HK, US)  # de-duplicated, in order
        assert [q.security.code for q in reply.s2c.basicQotList] == ["AAPL", "00700"]
        assert reply.s2c.basicQotList[0].curPrice == server.market.history(US)[-1].price
        await client.quiet()
        assert client.pushes == []  # push not registered: no first push, no pushes
        await client.aclose()


# ---- order books ----------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "depth"), [(HK, 10), (US, 60), (SH, 5)])
async def test_book_depth_per_market_num_clamped(code: str, depth: int) -> None:
    async with _serve() as server:
        client = await RawClient.connect(server)
        assert (await client.subscribe([code], [BOOK])).retType == 0
        first = await client.push(3013)
        _check_book(server, code, first, depth)
        three = await client.book(code, 3)
        assert three.retType == 0
        _check_book(server, code, three.s2c, 3)
        assert list(three.s2c.orderBookBidList) == list(first.orderBookBidList)[:3]
        many = await client.book(code, 1000)  # above the right's depth: clamped
        assert many.retType == 0 and len(many.s2c.orderBookAskList) == depth
        assert not many.s2c.HasField("orderBookType")
        for num in (0, -1):
            bad = await client.book(code, num)
            assert bad.retType == -1 and "num must be between 1 and" in bad.retMsg
        await client.alive()
        await client.aclose()


async def test_book_follows_the_tape_and_recv_time() -> None:
    async with _serve() as server:
        client = await RawClient.connect(server)
        assert (await client.subscribe([HK], [BOOK, QUOTE])).retType == 0
        await client.push(3013)
        await client.push(3005)
        for _ in range(3):
            await server.burst(HK, 5)
            book = await client.push(3013)
            quote = (await client.push(3005)).basicQotList[0]
            _check_book(server, HK, book, 10)
            assert quote.curPrice in (
                book.orderBookBidList[0].price,
                book.orderBookAskList[0].price,
            )
            last = server.market.history(HK)[-1]
            assert (book.svrRecvTimeBid, book.svrRecvTimeAskTimestamp) == (
                last.time,
                last.timestamp,
            )
        await client.aclose()


async def test_odd_lot_book() -> None:
    async with _serve() as server:
        client = await RawClient.connect(server)
        assert (await client.subscribe([HK], [ODD], push=False)).retType == 0
        normal = await client.book(HK, 10)
        assert normal.retType == -1 and normal.errCode == ErrCode.NOT_SUBSCRIBED
        assert "ORDER_BOOK (2)" in normal.retMsg
        odd = await client.book(HK, 10, 1)
        assert odd.retType == 0 and odd.s2c.orderBookType == 1
        _check_book(server, HK, odd.s2c, 10)
        bad = await client.book(HK, 10, 7)
        assert bad.retType == -1 and "orderBookType" in bad.retMsg
        await client.aclose()


async def test_sf_right_serves_the_full_book_with_details() -> None:
    async with _serve(quote_right="SF") as server:
        client = await RawClient.connect(server)
        assert (await client.subscribe([HK], [BOOK, BROKER], push=False)).retType == 0
        book = (await client.book(HK, 100)).s2c
        _check_book(server, HK, book, 40)
        for level in book.orderBookBidList:
            assert level.detailList and sum(d.volume for d in level.detailList) == level.volume
        queue = (await client.broker(HK)).s2c
        assert all(b.HasField("orderID") and b.volume > 0 for b in queue.brokerBidList)
        await client.aclose()


# ---- broker queues --------------------------------------------------------------------------


async def test_broker_queue_hk_only() -> None:
    async with _serve() as server:
        client = await RawClient.connect(server)
        refused = await client.subscribe([US], [BROKER])
        assert refused.retType == -1 and "HK securities only" in refused.retMsg
        assert (await client.subscribe([HK, US], [QUOTE, BROKER])).retType == -1  # all or none
        assert (await client.subscribe([HK], [BROKER])).retType == 0
        first = await client.push(3015)
        assert (first.security.market, first.security.code) == (1, "00700")
        for side in (first.brokerBidList, first.brokerAskList):
            positions = [b.pos for b in side]
            assert positions == sorted(positions) and set(positions) == set(range(1, 11))
            assert all(b.id and b.name and not b.HasField("orderID") for b in side)
        got = await client.broker(HK)
        assert got.retType == 0 and got.s2c.brokerBidList == first.brokerBidList
        us = await client.broker(US)
        assert us.retType == -1 and "HK securities only" in us.retMsg
        await server.burst(HK, 3)
        assert (await client.push(3015)).brokerBidList != first.brokerBidList
        await client.aclose()


# ---- errors never end the session -----------------------------------------------------------


async def test_not_subscribed_unknown_and_malformed() -> None:
    async with _serve() as server:
        client = await RawClient.connect(server)
        for reply, name in (
            (await client.quote(HK), "QUOTE (1)"),
            (await client.book(HK, 10), "ORDER_BOOK (2)"),
            (await client.broker(HK), "BROKER (14)"),
        ):
            assert reply.retType == -1 and reply.errCode == ErrCode.NOT_SUBSCRIBED
            assert f"{HK} is not subscribed to {name.split()[0]}" in reply.retMsg
            assert name in reply.retMsg
        assert (await client.subscribe([HK], [QUOTE], push=False)).retType == 0
        partly = await client.quote(HK, US)
        assert partly.retType == -1 and "US.AAPL is not subscribed to QUOTE" in partly.retMsg
        unknown = await client.quote("HK.99999")
        assert unknown.retType == -1 and unknown.errCode == ErrCode.UNKNOWN_SECURITY
        empty = await client.request(3004, qot_get_basic_qot_pb2.C2S())
        assert empty.retType == -1 and "securityList is empty" in empty.retMsg
        nobook = await client.request(3012, qot_get_order_book_pb2.C2S(num=5))
        assert nobook.retType == -1 and nobook.retMsg
        badsec = await client.broker("HK.")
        assert badsec.retType == -1
        await client.alive()
        await client.aclose()


async def test_pushes_only_to_registered_and_first_push_on_request() -> None:
    async with _serve() as server:
        pushed = await RawClient.connect(server)
        silent = await RawClient.connect(server)
        nofirst = await RawClient.connect(server)
        assert (await pushed.subscribe([HK], [QUOTE, BOOK])).retType == 0
        assert (await silent.subscribe([HK], [QUOTE, BOOK], push=False)).retType == 0
        assert (await nofirst.subscribe([HK], [QUOTE], first=False)).retType == 0
        await pushed.push(3005)
        await pushed.push(3013)
        await server.burst(HK, 2)
        await pushed.push(3005)
        await pushed.push(3013)
        q = await nofirst.push(3005)  # no first push: this is the burst's state
        assert q.basicQotList[0].curPrice == server.market.history(HK)[-1].price
        await silent.quiet()
        assert silent.pushes == []
        # registering later (RegQotPush) sends the first push
        c2s = qot_reg_qot_push_pb2.C2S(
            securityList=[_security(HK)], subTypeList=[BOOK], isRegOrUnReg=True, isFirstPush=True
        )
        assert (await silent.request(3002, c2s)).retType == 0
        _check_book(server, HK, await silent.push(3013), 10)
        for c in (pushed, silent, nofirst):
            await c.aclose()


# ---- setters and the book burst -------------------------------------------------------------


async def test_set_quote_book_and_broker_exactly_until_the_next_tick() -> None:
    async with _serve() as server:
        client = await RawClient.connect(server)
        assert (await client.subscribe([HK], [QUOTE, BOOK, BROKER], first=False)).retType == 0
        server.set_quote(HK, last_price=512.5, volume=123_456, update_time="2026-01-02 10:00:00")
        q = (await client.push(3005)).basicQotList[0]
        assert (q.curPrice, q.volume, q.updateTime) == (512.5, 123_456, "2026-01-02 10:00:00")
        assert q.name == "Tencent"  # the rest stays as the tape made it
        assert (await client.quote(HK)).s2c.basicQotList[0] == q

        bids = [(512.4, 1200, 3), (512.2, 800, 2, {9001: 500, 9002: 300})]
        asks = [(512.6, 400, 1)]
        server.set_order_book(HK, bids=bids, asks=asks)
        book = await client.push(3013)
        got = (await client.book(HK, 10)).s2c
        for s2c in (book, got):
            assert [(lv.price, lv.volume, lv.orederCount) for lv in s2c.orderBookBidList] == [
                b[:3] for b in bids
            ]
            assert [(d.orderID, d.volume) for d in s2c.orderBookBidList[1].detailList] == [
                (9001, 500),
                (9002, 300),
            ]
            assert [(lv.price, lv.volume) for lv in s2c.orderBookAskList] == [(512.6, 400)]

        server.set_broker_queue(HK, bids=[(1234, "Sim A", 1)], asks=[(4321, "Sim B", 1, 77, 900)])
        queue = await client.push(3015)
        assert [(b.id, b.name, b.pos) for b in queue.brokerBidList] == [(1234, "Sim A", 1)]
        assert [(b.orderID, b.volume) for b in queue.brokerAskList] == [(77, 900)]

        await server.burst(HK, 1)  # the next tick derives the states from the tape again
        assert (await client.push(3005)).basicQotList[0].curPrice == server.market.history(HK)[
            -1
        ].price
        _check_book(server, HK, await client.push(3013), 10)

        with pytest.raises(TypeError, match="unknown quote field"):
            server.set_quote(HK, lastprice=1.0)
        with pytest.raises(ValueError, match="a level is"):
            server.set_order_book(HK, bids=[(1.0, 2)], asks=[])
        with pytest.raises(ValueError, match="HK securities only"):
            server.set_broker_queue(US, bids=[], asks=[])
        await client.aclose()


async def test_burst_books_reaches_every_registered_connection() -> None:
    async with _serve() as server:
        a = await RawClient.connect(server)
        b = await RawClient.connect(server)
        for c in (a, b):
            assert (await c.subscribe([HK], [BOOK], first=False)).retType == 0
        n = 500
        async with anyio.create_task_group() as tg:
            results: list[Any] = []

            async def read(c: RawClient) -> None:
                results.append([await c.push(3013) for _ in range(n)])

            tg.start_soon(read, a)
            tg.start_soon(read, b)
            burst = await server.burst_books(HK, n)
        assert burst.updates == n and burst.connections == 2 and burst.updates_per_second > 0
        first, second = results
        assert first == second and len(first) == n
        assert len({s.SerializeToString() for s in first}) == 64  # distinct books, cycled
        current = (await a.book(HK, 10)).s2c
        assert list(current.orderBookBidList) == list(first[-1].orderBookBidList)
        for s2c in first[:3]:
            assert len(s2c.orderBookBidList) == 10 and s2c.orderBookBidList[0].price < (
                s2c.orderBookAskList[0].price
            )
        for c in (a, b):
            await c.aclose()


# ---- the WebSocket gateway serves them too --------------------------------------------------


async def test_websocket_gateway_serves_quotes_and_their_pushes() -> None:
    pytest.importorskip("wsproto")
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, BytesMessage, Request

    from aiofutu import _wscodec as wscodec

    async with _serve(websocket_port=0) as server:
        assert server.websocket_port
        stream = await anyio.connect_tcp("127.0.0.1", server.websocket_port)
        ws = WSConnection(ConnectionType.CLIENT)
        events: list[Any] = []

        async def event() -> Any:
            with anyio.fail_after(5):
                while not events:
                    ws.receive_data(await stream.receive())
                    events.extend(ws.events())
                return events.pop(0)

        async def packet() -> wscodec.WsReply:
            ev = await event()
            assert isinstance(ev, BytesMessage) and ev.message_finished
            return wscodec.decode_reply(bytes(ev.data))

        async def send(data: bytes) -> None:
            await stream.send(ws.send(BytesMessage(data=data)))

        await stream.send(ws.send(Request(host="127.0.0.1", target="/")))
        assert isinstance(await event(), AcceptConnection)
        await send(wscodec.encode_init_request(None, 2))
        assert (await packet()).cmd == wscodec.CMD_INIT
        sub = qot_sub_pb2.C2S(securityList=[_security(HK)], subTypeList=[QUOTE], isSubOrUnSub=True)
        sub.isRegOrUnRegPush = True
        await send(
            wscodec.encode_request(3001, 3, qot_sub_pb2.Request(c2s=sub).SerializeToString())
        )
        reply = await packet()
        assert (reply.cmd, reply.section, reply.error) == (3001, 3, 0)
        first = await packet()
        assert (first.cmd, first.section) == (3005, 0)
        pushed = qot_update_basic_qot_pb2.Response.FromString(first.body).s2c.basicQotList[0]
        assert pushed.curPrice == server.market.history(HK)[-1].price
        get = qot_get_basic_qot_pb2.C2S(securityList=[_security(HK)])
        body = qot_get_basic_qot_pb2.Request(c2s=get).SerializeToString()
        await send(wscodec.encode_request(3004, 4, body))
        reply = await packet()
        assert (reply.cmd, reply.section, reply.error) == (3004, 4, 0)
        quote = qot_get_basic_qot_pb2.Response.FromString(reply.body).s2c.basicQotList[0]
        assert quote == pushed
        server.set_quote(HK, last_price=499.8)
        again = await packet()
        assert (again.cmd, again.section) == (3005, 0)
        s2c = qot_update_basic_qot_pb2.Response.FromString(again.body).s2c
        assert s2c.basicQotList[0].curPrice == 499.8
        await anyio.aclose_forcefully(stream)


async def test_json_push_format() -> None:
    async with _serve() as server:
        stream = await anyio.connect_tcp("127.0.0.1", server.port)
        c2s = init_connect_pb2.C2S(clientVer=100, clientID="json", pushProtoFmt=1)
        body = init_connect_pb2.Request(c2s=c2s).SerializeToString()
        await stream.send(encode_frame(1001, 1, body))
        sub = qot_sub_pb2.C2S(securityList=[_security(HK)], subTypeList=[BOOK], isSubOrUnSub=True)
        sub.isRegOrUnRegPush = True
        await stream.send(encode_frame(3001, 2, qot_sub_pb2.Request(c2s=sub).SerializeToString()))
        decoder = FrameDecoder()
        frames: list[Frame] = []
        with anyio.fail_after(5):
            while len(frames) < 3:
                decoder.feed(await stream.receive())
                while (frame := decoder.next_frame()) is not None:
                    frames.append(frame)
        push = frames[2]
        assert push.proto_id == 3013 and push.fmt == 1
        from google.protobuf import json_format

        s2c = json_format.Parse(push.body, qot_update_order_book_pb2.Response()).s2c
        _check_book(server, HK, s2c, 10)
        await anyio.aclose_forcefully(stream)

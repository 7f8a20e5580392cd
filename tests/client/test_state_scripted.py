"""The state kinds' verbs against a scripted OpenD: what is sent, what is refused before sending.

A scripted server answers exactly what a test says, so these check the client's side alone:
typed errors before anything is sent, the request bytes, replies decoded, and pushes reaching
streams (with a first push on subscribing) over a real socket.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import aiofutu
from aiofutu import SubType
from aiofutu._codec import encode_frame
from aiofutu._pb import (
    qot_common_pb2,
    qot_get_basic_qot_pb2,
    qot_get_order_book_pb2,
    qot_sub_pb2,
    qot_update_basic_qot_pb2,
)
from aiofutu.enums import Market
from aiofutu.errors import ConfigurationError, SubscriptionRequired, UnsupportedMarket
from aiofutu.sim.kinds import orderbook as sim_book

from .scripted import scripted

pytestmark = pytest.mark.anyio

HK = "HK.00700"
SUB_OK = qot_sub_pb2.Response(retType=0).SerializeToString()


def basic_qot(code: str, price: float) -> qot_common_pb2.BasicQot:
    market, local = code.split(".")
    q = qot_common_pb2.BasicQot(
        isSuspended=False,
        listTime="2004-06-16",
        priceSpread=0.2,
        updateTime="2024-01-02 10:00:00.500",
        highPrice=price,
        openPrice=price,
        lowPrice=price,
        curPrice=price,
        lastClosePrice=price,
        volume=100,
        turnover=price * 100,
        turnoverRate=0.1,
        amplitude=0.0,
        name="TENCENT",
    )
    q.security.market = Market[market].wire
    q.security.code = local
    return q


class Recorder:
    """A handler that records requests and answers Qot_Sub, 3004 and 3012."""

    def __init__(self, first_push: bytes = b"") -> None:
        self.seen: list[tuple[int, bytes]] = []
        self.first_push = first_push

    def __call__(self, proto_id: int, serial: int, body: bytes) -> bytes:
        self.seen.append((proto_id, body))
        if proto_id == 3001:
            return encode_frame(3001, serial, SUB_OK) + self.first_push
        if proto_id == 3004:
            req = qot_get_basic_qot_pb2.Request.FromString(body)
            resp = qot_get_basic_qot_pb2.Response(retType=0)
            for i, sec in enumerate(req.c2s.securityList):
                resp.s2c.basicQotList.append(basic_qot(f"HK.{sec.code}", 100.0 + i))
            return encode_frame(3004, serial, resp.SerializeToString())
        if proto_id == 3012:
            req_book = qot_get_order_book_pb2.Request.FromString(body)
            sides = sim_book.book_sides(Market.HK, 380.0, req_book.c2s.num, 1)
            s2c = sim_book.s2c(Market.HK, "00700", sides, name="TENCENT")
            return encode_frame(3012, serial, sim_book.get_reply_body(s2c))
        return b""

    def protos(self) -> list[int]:
        return [p for p, _ in self.seen if p != 1004]


async def test_requests_need_their_subscription_and_nothing_is_sent() -> None:
    rec = Recorder()
    async with scripted(rec) as srv, aiofutu.connect("127.0.0.1", srv.port) as client:
        with pytest.raises(SubscriptionRequired, match="QUOTE"):
            await client.get_stock_quote([HK])
        with pytest.raises(SubscriptionRequired, match="ORDER_BOOK"):
            await client.get_order_book(HK)
        await client.subscribe(HK, SubType.ORDER_BOOK)
        with pytest.raises(SubscriptionRequired, match="ORDER_BOOK_ODD"):
            await client.get_order_book(HK, order_book_type="ODD")
        with pytest.raises(SubscriptionRequired, match="BROKER"):
            await client.get_broker_queue(HK)
        assert rec.protos() == [3001]  # the subscribe only


async def test_bad_arguments_are_typed_errors_before_sending() -> None:
    rec = Recorder()
    async with scripted(rec) as srv, aiofutu.connect("127.0.0.1", srv.port) as client:
        await client.subscribe(["HK.00700", "SH.600519"], [SubType.ORDER_BOOK, SubType.BROKER])
        for num in (0, -1, 11, True, "10"):
            with pytest.raises(ConfigurationError, match="num"):
                await client.get_order_book("SH.600519" if num == 11 else HK, num)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="between 1 and 5"):
            await client.get_order_book("SH.600519", 6)
        with pytest.raises(ConfigurationError):
            await client.get_order_book(HK, 10, order_book_type="SIDEWAYS")
        with pytest.raises(UnsupportedMarket, match="HK"):
            await client.get_broker_queue("SH.600519")
        with pytest.raises(UnsupportedMarket):
            client.broker_stream("US.AAPL")
        with pytest.raises(aiofutu.InvalidCode):
            await client.get_stock_quote(["HK00700"])
        with pytest.raises(ConfigurationError):
            await client.get_stock_quote([])
        with pytest.raises(ConfigurationError):
            client.quote_stream(HK, conflate=False, buffer=0)
        assert rec.protos() == [3001]


async def test_get_stock_quote_sends_deduplicated_codes_and_decodes() -> None:
    pl = pytest.importorskip("polars")
    rec = Recorder()
    codes = ["HK.00700", "HK.09988", "HK.00700"]
    async with scripted(rec) as srv, aiofutu.connect("127.0.0.1", srv.port) as client:
        await client.subscribe(codes[:2], SubType.QUOTE)
        quotes = await client.get_stock_quote(codes)
        frame = await client.get_stock_quote_frame(codes)
    req = qot_get_basic_qot_pb2.Request.FromString(rec.seen[1][1])
    assert [s.code for s in req.c2s.securityList] == ["00700", "09988"]
    assert [(q.code, q.last_price, q.name) for q in quotes] == [
        ("HK.00700", 100.0, "TENCENT"),
        ("HK.09988", 101.0, "TENCENT"),
    ]
    assert isinstance(frame, pl.DataFrame)
    assert frame.width == 62
    assert frame["last_price"].to_list() == [100.0, 101.0]
    assert frame["data_time"].to_list() == ["10:00:00.500"] * 2


async def test_get_order_book_and_its_frame() -> None:
    pytest.importorskip("polars")
    rec = Recorder()
    async with scripted(rec) as srv, aiofutu.connect("127.0.0.1", srv.port) as client:
        await client.subscribe(HK, SubType.ORDER_BOOK)
        book = await client.get_order_book(HK, 3)
        as_sdk = await client.get_order_book_frame(HK, 4)
    req = qot_get_order_book_pb2.Request.FromString(rec.seen[1][1])
    assert req.c2s.num == 3 and not req.c2s.HasField("orderBookType")
    assert (book.code, len(book.bids), len(book.asks)) == (HK, 3, 3)
    assert book.bids[0].price < book.asks[0].price
    assert list(as_sdk) == ["code", "name", "svr_recv_time_bid", "svr_recv_time_ask", "Bid", "Ask"]
    assert as_sdk["Bid"].columns == ["price", "volume", "order_num", "order_details"]
    assert as_sdk["Bid"].height == 4


def quote_push(*quotes: qot_common_pb2.BasicQot) -> bytes:
    resp = qot_update_basic_qot_pb2.Response(retType=0)
    resp.s2c.basicQotList.extend(quotes)
    return encode_frame(3005, 0, resp.SerializeToString())


async def test_quote_stream_subscribes_with_first_push_and_conflates() -> None:
    rec = Recorder(first_push=quote_push(basic_qot(HK, 1.0)))
    async with scripted(rec) as srv, aiofutu.connect("127.0.0.1", srv.port) as client:
        async with client.quote_stream(HK) as quotes:
            with anyio.fail_after(5):
                first = await quotes.__anext__()
            assert first.last_price == 1.0  # the first push: the current state
            sub = qot_sub_pb2.Request.FromString(rec.seen[0][1])
            assert list(sub.c2s.subTypeList) == [SubType.QUOTE.wire]
            assert sub.c2s.isFirstPush and sub.c2s.isRegOrUnRegPush
            await srv.inject(b"".join(quote_push(basic_qot(HK, p)) for p in (2.0, 3.0, 4.0)))
            with anyio.fail_after(5):
                while quotes.received < 4:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            newest = await quotes.__anext__()
            assert newest.last_price == 4.0
            assert quotes.conflated == 2
            # a push for a code nobody streams, and a garbage push: counted, reader alive
            await srv.inject(
                quote_push(basic_qot("HK.09988", 9.0)) + encode_frame(3005, 0, b"\xff")
            )
            await srv.inject(quote_push(basic_qot(HK, 5.0)))
            with anyio.fail_after(5):
                assert (await quotes.__anext__()).last_price == 5.0
            stats = client.stats()
            assert stats["unrouted_pushes"] == 1
            assert stats["bad_pushes"] == 1
            assert any(s["kind"] == "quote" and s["conflated"] == 2 for s in stats["streams"])
            # a second stream on the same code starts from the latest state, no new Qot_Sub
            subs = rec.protos().count(3001)
            async with client.quote_stream(HK, conflate=False) as again:
                with anyio.fail_after(5):
                    assert (await again.__anext__()).last_price == 5.0
            assert rec.protos().count(3001) == subs


async def test_order_book_stream_odd_lot_subscribes_its_sub_type() -> None:
    rec = Recorder()
    async with scripted(rec) as srv, aiofutu.connect("127.0.0.1", srv.port) as client:
        async with client.order_book_stream(HK, odd_lot=True) as books:
            sub = qot_sub_pb2.Request.FromString(rec.seen[0][1])
            assert list(sub.c2s.subTypeList) == [SubType.ORDER_BOOK_ODD.wire]
            sides = sim_book.book_sides(Market.HK, 380.0, 2, 1)
            normal = sim_book.push_body(sim_book.s2c(Market.HK, "00700", sides))
            odd = sim_book.push_body(sim_book.s2c(Market.HK, "00700", sides, order_book_type=1))
            await srv.inject(encode_frame(3013, 0, normal) + encode_frame(3013, 0, odd))
            with anyio.fail_after(5):
                book = await books.__anext__()
            assert book.order_book_type is not None and book.order_book_type.value == "ODD"
            assert books.received == 1
        assert client.stats()["unrouted_pushes"] == 1


async def test_streams_end_when_the_client_closes() -> None:
    rec = Recorder()
    got: list[Any] = []
    async with scripted(rec) as srv:
        async with aiofutu.connect("127.0.0.1", srv.port) as client:
            stream = client.broker_stream(HK)
            await stream.start()
        with anyio.fail_after(5):
            async for item in stream:
                got.append(item)
    assert got == []

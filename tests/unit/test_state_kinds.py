"""The three state kinds, sans-IO: models, decoders, request builders and the simulator's builders.

Wire compatibility with the official SDK is in ``test_state_kinds_sdk.py``.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from aiofutu._pb import (
    qot_common_pb2,
    qot_get_basic_qot_pb2,
    qot_get_broker_pb2,
    qot_get_order_book_pb2,
    qot_update_basic_qot_pb2,
    qot_update_broker_pb2,
    qot_update_order_book_pb2,
)
from aiofutu.enums import Market
from aiofutu.errors import ConfigurationError, InvalidCode, UnsupportedMarket
from aiofutu.quotes import basic, broker, orderbook
from aiofutu.quotes._enums import OrderBookType, SecurityStatus
from aiofutu.sim.kinds import basic as sim_basic
from aiofutu.sim.kinds import broker as sim_broker
from aiofutu.sim.kinds import orderbook as sim_book
from aiofutu.sim.kinds._common import snap, tick_size, to_units

pl = pytest.importorskip("polars")


def _basic_qot(**extra: Any) -> qot_common_pb2.BasicQot:
    fields: dict[str, Any] = {
        "isSuspended": False,
        "listTime": "2004-06-16",
        "priceSpread": 0.2,
        "updateTime": "2024-01-02 10:00:00.500",
        "highPrice": 482.0,
        "openPrice": 479.0,
        "lowPrice": 478.4,
        "curPrice": 481.2,
        "lastClosePrice": 478.0,
        "volume": 1_000,
        "turnover": 481_000.0,
        "turnoverRate": 0.01,
        "amplitude": 0.8,
    }
    q = qot_common_pb2.BasicQot(**{**fields, **extra})
    q.security.market = 1
    q.security.code = "00700"
    return q


# =============================================================================== basic quote


def test_quote_decodes_core_fields_and_times() -> None:
    s2c = qot_get_basic_qot_pb2.S2C()
    s2c.basicQotList.append(_basic_qot(name="Tencent", updateTimestamp=1704160800.5, secStatus=1))
    (q,) = basic.quotes_from_s2c(s2c)
    assert q.code == "HK.00700"
    assert q.name == "Tencent"
    assert (q.last_price, q.prev_close_price, q.volume) == (481.2, 478.0, 1_000)
    assert q.update_time == "2024-01-02 10:00:00.500"
    assert (q.data_date, q.data_time) == ("2024-01-02", "10:00:00.500")
    assert q.datetime == dt.datetime(2024, 1, 2, 2, 0, 0, 500_000, tzinfo=dt.timezone.utc)
    assert q.sec_status is SecurityStatus.NORMAL
    assert q.option is q.future is q.warrant is q.pre_market is None


def test_quote_absent_optionals_read_as_sdk_defaults() -> None:
    (q,) = basic.quotes_from_s2c(qot_get_basic_qot_pb2.S2C(basicQotList=[_basic_qot()]))
    assert q.name == "N/A"
    assert q.datetime is None
    assert q.dark_status.value == q.sec_status.value == "N/A"


def test_trusted_quote_equals_a_validated_one_and_is_frozen() -> None:
    q = _full_quote()
    again = basic.Quote.model_validate(q.model_dump())
    assert again == q
    assert hash(again) == hash(q)
    with pytest.raises(ValidationError):
        q.last_price = 1.0  # type: ignore[misc]
    with pytest.raises(ValidationError):
        basic.Quote.model_validate({**q.model_dump(), "bogus": 1})


def _full_quote() -> basic.Quote:
    q = _basic_qot(name="X", hpVolume=1000.4, darkStatus=1, secStatus=21, overnight={"price": 1.0})
    q.optionExData.strikePrice = 500.0
    q.optionExData.contractSizeFloat = 100.0
    q.optionExData.optionAreaType = 2
    q.futureExData.lastSettlePrice = 480.0
    q.futureExData.expiryDateDistance = 9
    q.warrantExData.premium = 3.5
    q.preMarket.volume = 7
    return basic.quote_from_pb(q)


def test_quote_extras_decode() -> None:
    q = _full_quote()
    assert q.option is not None and q.option.strike_price == 500.0
    assert q.option.contract_size_float == 100.0
    assert q.option.option_area_type.value == "EUROPEAN"
    assert q.future is not None and q.future.expiry_date_distance == 9
    assert q.warrant is not None and q.warrant.premium == 3.5 and q.warrant.delta is None
    assert q.pre_market is not None and q.pre_market.volume == 7 and q.pre_market.price is None
    assert q.overnight is not None and q.overnight.price == 1.0
    assert q.after_market is None
    assert q.hp_volume == 1000.4


def test_push_with_several_securities_splits_per_code() -> None:
    a, b, a2 = _basic_qot(), _basic_qot(), _basic_qot(curPrice=1.0)
    b.security.market, b.security.code = 11, "AAPL"
    push = qot_update_basic_qot_pb2.Response.FromString(sim_basic.push_body([a, b, a2])).s2c
    quotes = basic.quotes_from_s2c(push)
    assert [q.code for q in quotes] == ["HK.00700", "US.AAPL", "HK.00700"]
    split = basic.quotes_by_code(quotes)
    assert list(split) == ["HK.00700", "US.AAPL"]
    assert split["HK.00700"].last_price == 1.0  # the newest state wins


def test_quote_frame_has_the_sdk_columns() -> None:
    df = basic.quotes_to_polars([_full_quote()])
    assert len(basic.QUOTE_COLUMNS) == 62
    assert tuple(df.columns) == basic.QUOTE_COLUMNS
    row = df.row(0, named=True)
    assert row["listing_date"] == "N/A"  # options hide the listing date, as in the SDK
    assert row["contract_size"] == 100.0
    assert row["expiry_date_distance"] == 9  # from the future block: the option left it unset
    assert row["volume"] == 1000  # hp volume, rounded
    assert row["dark_status"] == "TRADING"
    assert row["sec_status"] == "AFTER_TRANSACTION"
    assert row["pre_volume"] == 7 and row["pre_price"] is None
    assert row["after_price"] is None and row["overnight_price"] == 1.0
    assert basic.quotes_to_polars([]).shape == (0, 62)


def test_quote_request_dedupes_and_validates() -> None:
    req = basic.get_basic_qot_request(["HK.00700", "US.AAPL", "HK.00700"])
    assert [(s.market, s.code) for s in req.c2s.securityList] == [(1, "00700"), (11, "AAPL")]
    assert req.c2s.header.HasField("securityFirm")
    one = basic.get_basic_qot_request("SH.600519")
    assert [(s.market, s.code) for s in one.c2s.securityList] == [(21, "600519")]
    with pytest.raises(ConfigurationError):
        basic.get_basic_qot_request([])
    with pytest.raises(ConfigurationError):
        basic.get_basic_qot_request(5)  # type: ignore[arg-type]
    with pytest.raises(InvalidCode):
        basic.get_basic_qot_request(["HK.00700", "00700"])


# =============================================================================== order book


def _book_s2c() -> qot_get_order_book_pb2.S2C:
    s2c = qot_get_order_book_pb2.S2C(name="Tencent", svrRecvTimeBid="2025-04-07 05:39:20.352")
    s2c.security.market, s2c.security.code = 1, "00700"
    s2c.svrRecvTimeBidTimestamp = 1744004360.352
    for i in range(3):
        bid = s2c.orderBookBidList.add(price=480.0 - i * 0.2, volume=100 * (i + 1), orederCount=i)
        bid.detailList.add(orderID=10 + i, volume=100)
        s2c.orderBookAskList.add(price=480.2 + i * 0.2, volume=300, orederCount=1, hpVolume=299.6)
    return s2c


def test_order_book_decodes_both_sides_in_server_order() -> None:
    book = orderbook.order_book_from_s2c(_book_s2c())
    assert book.code == "HK.00700" and book.name == "Tencent"
    assert [lv.price for lv in book.bids] == [480.0, 479.8, 479.6]
    assert [lv.price for lv in book.asks] == pytest.approx([480.2, 480.4, 480.6])
    assert book.bids[1].details == (orderbook.OrderBookDetail(order_id=11, volume=100),)
    assert book.asks[0].details == () and book.asks[0].hp_volume == 299.6
    assert book.svr_recv_time_bid == "2025-04-07 05:39:20.352"
    assert book.bid_datetime is not None and book.bid_datetime.tzinfo is dt.timezone.utc
    assert book.svr_recv_time_ask == "" and book.ask_datetime is None
    assert book.order_book_type is None and book.kind is OrderBookType.NORMAL


def test_order_book_push_and_reply_decode_alike() -> None:
    data = _book_s2c().SerializeToString()
    push = qot_update_order_book_pb2.S2C.FromString(data)
    assert orderbook.order_book_from_s2c(push) == orderbook.order_book_from_s2c(_book_s2c())
    odd = qot_update_order_book_pb2.S2C.FromString(data)
    odd.orderBookType = 1
    assert orderbook.order_book_from_s2c(odd).order_book_type is OrderBookType.ODD


def test_order_book_frames_keep_the_sdk_shape() -> None:
    out = orderbook.order_book_to_polars(orderbook.order_book_from_s2c(_book_s2c()))
    assert list(out) == ["code", "name", "svr_recv_time_bid", "svr_recv_time_ask", "Bid", "Ask"]
    assert tuple(out["Bid"].columns) == orderbook.LEVEL_COLUMNS
    assert out["Bid"]["order_details"].to_list()[0] == [{"order_id": 10, "order_volume": 100}]
    assert out["Ask"]["volume"].to_list() == [300, 300, 300]  # hp 299.6 rounded


@pytest.mark.parametrize(
    ("code", "num"),
    [("HK.00700", 0), ("HK.00700", -1), ("SH.600519", 6), ("US.AAPL", 61), ("HK.00700", 2**31)],
)
def test_order_book_num_out_of_range(code: str, num: int) -> None:
    with pytest.raises(ConfigurationError, match="num must be between 1 and"):
        orderbook.get_order_book_request(code, num)


@pytest.mark.parametrize("num", ["10", 10.0, True, None])
def test_order_book_num_must_be_an_int(num: Any) -> None:
    with pytest.raises(ConfigurationError, match="num must be an int"):
        orderbook.get_order_book_request("HK.00700", num)


def test_order_book_request() -> None:
    req = orderbook.get_order_book_request("US.AAPL", 60)
    assert (req.c2s.security.market, req.c2s.security.code, req.c2s.num) == (11, "AAPL", 60)
    assert not req.c2s.HasField("orderBookType")
    assert orderbook.get_order_book_request("SZ.000001", 5).c2s.num == 5
    assert orderbook.get_order_book_request("HK.00700", 10, "ODD").c2s.orderBookType == 1
    with pytest.raises(ConfigurationError):
        orderbook.get_order_book_request("HK.00700", 10, "HALF")
    with pytest.raises(InvalidCode):
        orderbook.get_order_book_request("hk.00700")


# =============================================================================== broker queue


def _broker_s2c() -> qot_get_broker_pb2.S2C:
    s2c = qot_get_broker_pb2.S2C()
    s2c.security.market, s2c.security.code = 1, "00700"
    s2c.brokerBidList.add(id=5338, name="A", pos=1, orderID=99, volume=400)
    s2c.brokerAskList.add(id=6998, name="B", pos=1)
    s2c.brokerAskList.add(id=8305, name="C", pos=2)
    return s2c


def test_broker_queue_decodes_and_frames() -> None:
    data = _broker_s2c().SerializeToString()
    q = broker.broker_queue_from_s2c(qot_update_broker_pb2.S2C.FromString(data))
    assert q == broker.broker_queue_from_s2c(_broker_s2c())
    assert q.bids == (
        broker.BrokerEntry(broker_id=5338, name="A", position=1, order_id=99, volume=400),
    )
    assert [(b.broker_id, b.position, b.order_id) for b in q.asks] == [
        (6998, 1, None),
        (8305, 2, None),
    ]
    bid, ask = broker.broker_queue_to_polars(q)
    assert tuple(bid.columns) == broker.BID_COLUMNS and tuple(ask.columns) == broker.ASK_COLUMNS
    assert ask["order_id"].to_list() == [None, None]
    assert bid.row(0) == ("HK.00700", "N/A", 5338, "A", 1, 99, 400)


@pytest.mark.parametrize("code", ["US.AAPL", "SH.600519", "SZ.000001", "HK_FUTURE.999010"])
def test_broker_queue_is_hk_only(code: str) -> None:
    with pytest.raises(UnsupportedMarket, match="HK") as info:
        broker.get_broker_request(code)
    assert isinstance(info.value, ConfigurationError)
    assert info.value.code == code


def test_broker_request() -> None:
    req = broker.get_broker_request("HK.09988")
    assert (req.c2s.security.market, req.c2s.security.code) == (1, "09988")
    with pytest.raises(InvalidCode):
        broker.get_broker_request("HK")


# =============================================================================== simulator


def _tape(prices: list[float], start: float = 1_704_160_800.0) -> list[qot_common_pb2.Ticker]:
    return [
        qot_common_pb2.Ticker(
            time=f"t{i}",
            sequence=i,
            dir=1 + i % 2,
            price=p,
            volume=100 * (i + 1),
            turnover=p * 100 * (i + 1),
            timestamp=start + i,
        )
        for i, p in enumerate(prices)
    ]


@given(st.lists(st.integers(1, 5000), min_size=1, max_size=60))
def test_sim_quote_agrees_with_the_tape(cents: list[int]) -> None:
    ticks = _tape([c / 100 for c in cents])
    fold = sim_basic.DayFold.from_ticks(ticks)
    q = basic.quote_from_pb(
        sim_basic.basic_qot(Market.US, "AAPL", fold, prev_close=10.0, name="Apple")
    )
    assert q.last_price == ticks[-1].price
    assert q.open_price == ticks[0].price
    assert q.high_price == max(t.price for t in ticks)
    assert q.low_price == min(t.price for t in ticks)
    assert q.volume == sum(t.volume for t in ticks)
    assert q.turnover == pytest.approx(sum(t.turnover for t in ticks))
    assert q.update_time == ticks[-1].time and q.update_timestamp == ticks[-1].timestamp


def test_sim_quote_counts_only_the_day() -> None:
    ticks = _tape([1.0, 2.0, 3.0])
    fold = sim_basic.DayFold.from_ticks(ticks, since=ticks[1].timestamp)
    assert (fold.open, fold.count, fold.volume) == (2.0, 2, 500)
    empty = basic.quote_from_pb(
        sim_basic.basic_qot(Market.HK, "00700", sim_basic.DayFold(), prev_close=480.0)
    )
    assert (empty.last_price, empty.volume, empty.update_time) == (480.0, 0, "")


def _on_ladder(market: Market, price: float) -> bool:
    units = to_units(price)
    return units > 0 and units % tick_size(market, units, True) == 0


@settings(max_examples=60)
@given(
    st.sampled_from([Market.HK, Market.US, Market.SH]),
    st.integers(1, 2_000_000),
    st.integers(1, 40),
    st.integers(0, 2**32),
    st.sampled_from([0, 1, 2]),
)
def test_sim_book_on_the_ladder(market: Market, units: int, num: int, seed: int, d: int) -> None:
    last = units / 10_000
    bids, asks = sim_book.book_sides(market, last, num, seed, last_direction=d)
    assert (len(asks) == num and 1 <= len(bids) <= num) or len(bids) == num
    bid_prices = [lv.price for lv in bids]
    ask_prices = [lv.price for lv in asks]
    assert all(_on_ladder(market, p) for p in bid_prices + ask_prices)
    assert bid_prices == sorted(bid_prices, reverse=True) and len(set(bid_prices)) == len(bids)
    assert ask_prices == sorted(ask_prices) and len(set(ask_prices)) == len(asks)
    assert bid_prices[0] < ask_prices[0]
    touch = snap(market, units)  # the last price on the ladder sits at the touch
    assert to_units(bid_prices[0]) <= touch <= to_units(ask_prices[0])
    assert touch in (to_units(bid_prices[0]), to_units(ask_prices[0]))
    assert all(lv.volume > 0 and lv.orederCount >= 1 for lv in bids + asks)


def test_sim_book_is_deterministic_by_seed() -> None:
    one = sim_book.book_sides(Market.HK, 480.0, 10, 7, details=True)
    assert one == sim_book.book_sides(Market.HK, 480.0, 10, 7, details=True)
    assert one == sim_book.book_sides(Market.HK, 480.0, 10, random.Random("7:book"), details=True)
    assert one != sim_book.book_sides(Market.HK, 480.0, 10, 8, details=True)
    for level in one[0] + one[1]:
        assert len(level.detailList) == level.orederCount
        assert sum(d.volume for d in level.detailList) == level.volume


def test_sim_book_touch_follows_the_last_trade() -> None:
    bids, asks = sim_book.book_sides(Market.HK, 480.0, 1, 1, last_direction=1)
    assert (bids[0].price, asks[0].price) == (479.8, 480.0)  # a buy lifted the 480.0 offer
    bids, asks = sim_book.book_sides(Market.HK, 480.0, 1, 1, last_direction=2)
    assert (bids[0].price, asks[0].price) == (480.0, 480.2)
    bids, asks = sim_book.book_sides(Market.US, 0.5, 1, 1)
    assert (bids[0].price, asks[0].price) == (0.5, 0.5001)


def test_sim_ladder_matches_the_tick_generator() -> None:
    # the builders' HKEX table mirrors sim/_market.py's; they must not drift apart
    from aiofutu.sim import _market

    for market in (Market.HK, Market.US, Market.SH):
        for units in [*range(1, 30_000, 7), *range(99_000, 2_100_000, 997), 2_500, 5_000, 10_000]:
            for up in (True, False):
                assert tick_size(market, units, up) == _market._tick(market, units, up)


@pytest.mark.parametrize(
    ("market", "right", "depth"),
    [
        (Market.HK, "LV1", 0),
        (Market.HK, "LV2", 10),
        (Market.HK, "SF", sim_book.FULL_BOOK_LEVELS),
        (Market.HK_FUTURE, "LV1", 1),
        (Market.US, "LV1", 1),
        (Market.US, "LV2", 60),
        (Market.SH, "LV1", 5),
        (Market.SZ, "LV2", 5),
    ],
)
def test_sim_depth_limits(market: Market, right: str, depth: int) -> None:
    assert sim_book.depth_limit(market, right) == depth
    assert orderbook.max_depth(market) >= depth


def test_sim_book_bodies_decode_as_reply_and_push() -> None:
    sides = sim_book.book_sides(Market.HK, 480.0, 10, 3)
    s2c = sim_book.s2c(Market.HK, "00700", sides, name="Tencent", recv_time=("t", 1.5))
    reply = qot_get_order_book_pb2.Response.FromString(sim_book.get_reply_body(s2c))
    push = qot_update_order_book_pb2.Response.FromString(sim_book.push_body(s2c))
    assert reply.retType == push.retType == 0
    a, b = orderbook.order_book_from_s2c(reply.s2c), orderbook.order_book_from_s2c(push.s2c)
    assert a == b and len(a.bids) == len(a.asks) == 10
    assert a.svr_recv_time_ask == "t" and a.svr_recv_time_bid_timestamp == 1.5


def test_sim_broker_queue_is_seeded_and_sits_on_the_book() -> None:
    bids, asks = sim_broker.broker_sides(10, 8, 5, details=True)
    assert (bids, asks) == sim_broker.broker_sides(10, 8, 5, details=True)
    assert (bids, asks) != sim_broker.broker_sides(10, 8, 6, details=True)
    assert {b.pos for b in bids} == set(range(1, 11)) and {b.pos for b in asks} == set(range(1, 9))
    assert [b.pos for b in bids] == sorted(b.pos for b in bids)
    assert all(b.HasField("orderID") and b.volume > 0 for b in bids + asks)
    q = broker.broker_queue_from_s2c(
        qot_update_broker_pb2.Response.FromString(
            sim_broker.push_body(sim_broker.s2c(Market.HK, "00700", (bids, asks)))
        ).s2c
    )
    assert len(q.bids) == len(bids) and q.bids[0].broker_id == bids[0].id
    plain, _ = sim_broker.broker_sides(3, 3, 5)
    assert not any(b.HasField("orderID") for b in plain)
    reply = qot_get_broker_pb2.Response.FromString(
        sim_broker.get_reply_body(sim_broker.s2c(Market.HK, "00700", (plain, [])))
    )
    assert reply.retType == 0 and len(reply.s2c.brokerBidList) == len(plain)

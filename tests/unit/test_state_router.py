"""The state router and LatestStream, sans-IO: 3005/3013/3015 frames in, states per stream out.

Conflation, every-update delivery with overflow policies, fan-out, variants (odd-lot books),
bad and unrouted pushes, and the re-sync bookkeeping around a reconnect (hold/release).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiofutu import SlowConsumer, SubType
from aiofutu._codec import Frame
from aiofutu._kinds import KINDS_BY_NAME
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
from aiofutu.errors import ConnectionLost, OpenDError, RemoteProtocolError
from aiofutu.latest import LatestStream
from aiofutu.quotes import _book_columns, _broker_columns
from aiofutu.quotes._book_columns import BookView, book_from_reply, book_from_view
from aiofutu.quotes._broker_columns import BrokerView, broker_from_reply, broker_from_view
from aiofutu.quotes._quote_columns import QuoteView, quotes_from_view
from aiofutu.quotes._state_router import StateRouter
from aiofutu.quotes.basic import Quote, quotes_from_s2c
from aiofutu.quotes.broker import broker_queue_from_s2c
from aiofutu.quotes.orderbook import OrderBook, order_book_from_s2c
from aiofutu.sim.kinds import broker as sim_broker
from aiofutu.sim.kinds import orderbook as sim_book

HK = "HK.00700"
HK2 = "HK.09988"


class _NoClient:
    """Stands in for the attacher: the router never calls back into it."""


def router(kind: str) -> StateRouter:
    return StateRouter(KINDS_BY_NAME[kind])


def stream(r: StateRouter, *codes: str, **kw: Any) -> LatestStream[Any]:
    s: LatestStream[Any] = LatestStream(_NoClient(), codes, kind=r.kind.name, **kw)  # type: ignore[arg-type, union-attr]
    r.attach(s)
    s._attached = True
    return s


def book_push(code: str, price: float, *, odd: bool | None = None, levels: int = 3) -> Frame:
    market, local = code.split(".")
    m = Market[market]
    sides = sim_book.book_sides(m, price, levels, 1)
    s2c = sim_book.s2c(m, local, sides, name="N", order_book_type=None if odd is None else int(odd))
    return Frame(3013, 0, sim_book.push_body(s2c))


def quote_pb(code: str, price: float, **extra: Any) -> qot_common_pb2.BasicQot:
    market, local = code.split(".")
    q = qot_common_pb2.BasicQot(
        isSuspended=False,
        listTime="2004-06-16",
        priceSpread=0.2,
        updateTime="2024-01-02 10:00:00",
        highPrice=price,
        openPrice=price,
        lowPrice=price,
        curPrice=price,
        lastClosePrice=price,
        volume=1,
        turnover=price,
        turnoverRate=0.0,
        amplitude=0.0,
        **extra,
    )
    q.security.market = Market[market].wire
    q.security.code = local
    return q


def quote_push(*quotes: qot_common_pb2.BasicQot) -> Frame:
    resp = qot_update_basic_qot_pb2.Response(retType=0)
    resp.s2c.basicQotList.extend(quotes)
    return Frame(3005, 0, resp.SerializeToString())


def feed(r: StateRouter, *frames: Frame) -> None:
    r.dispatch_batch(list(frames))
    r.flush()


def best_bid(book: OrderBook) -> float:
    return book.bids[0].price


# ------------------------------------------------------------------------------ conflation


def test_conflates_per_security_to_the_newest_state() -> None:
    r = router("order_book")
    s = stream(r, HK, HK2)
    feed(r, book_push(HK, 380.0), book_push(HK2, 80.0), book_push(HK, 381.0))
    feed(r, book_push(HK, 382.0))
    books = s.drain()
    assert [b.code for b in books] == [HK, HK2]  # the order the securities first changed
    assert best_bid(books[0]) == 382.0
    assert best_bid(books[1]) == 80.0
    assert (s.received, s.conflated, s.pending) == (4, 2, 0)
    assert s.received == len(books) + s.conflated


def test_conflated_updates_are_never_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    r = router("order_book")
    calls: list[Any] = []
    real = r._decode
    monkeypatch.setattr(r, "_decode", lambda pb: calls.append(pb) or real(pb))
    s = stream(r, HK)
    feed(r, *(book_push(HK, 380.0 + i) for i in range(5)))
    (book,) = s.drain()
    assert best_bid(book) == 384.0
    assert len(calls) == 1


def test_every_update_without_conflation_in_order() -> None:
    r = router("order_book")
    s = stream(r, HK, HK2, conflate=False)
    feed(r, book_push(HK, 380.0), book_push(HK2, 80.0), book_push(HK, 381.0))
    assert [(b.code, best_bid(b)) for b in s.drain()] == [(HK, 380.0), (HK2, 80.0), (HK, 381.0)]
    assert s.conflated == 0


def test_overflow_raise_leaves_a_hole_at_its_place() -> None:
    r = router("quote")
    s = stream(r, HK, conflate=False, buffer=2, overflow="raise")
    feed(r, *(quote_push(quote_pb(HK, 1.0 + i)) for i in range(5)))
    assert [q.last_price for q in s.drain()] == [1.0, 2.0]
    with pytest.raises(SlowConsumer) as info:
        s.drain()
    assert info.value.lost == 3
    feed(r, quote_push(quote_pb(HK, 9.0)))
    assert [q.last_price for q in s.drain()] == [9.0]
    assert s.received == 2 + s.dropped + 1


def test_overflow_drop_oldest_keeps_the_newest() -> None:
    r = router("quote")
    s = stream(r, HK, conflate=False, buffer=2, overflow="drop_oldest")
    feed(r, *(quote_push(quote_pb(HK, 1.0 + i)) for i in range(5)))
    assert [q.last_price for q in s.drain()] == [4.0, 5.0]
    assert s.dropped == 3


def test_block_stream_makes_flush_wait() -> None:
    r = router("quote")
    s = stream(r, HK, conflate=False, buffer=1, overflow="block")
    r.dispatch_batch([quote_push(quote_pb(HK, 1.0)), quote_push(quote_pb(HK, 2.0))])
    wait = r.flush()
    assert wait is not None  # the reader would wait for this consumer
    wait.close()  # type: ignore[attr-defined]
    assert [q.last_price for q in s.drain()] == [1.0, 2.0]  # nothing lost
    assert s.dropped == 0


# ------------------------------------------------------------------------------ routing


def test_fan_out_decodes_once_and_a_slow_stream_stalls_nobody() -> None:
    r = router("order_book")
    fast = stream(r, HK)
    slow = stream(r, HK, conflate=False, buffer=1, overflow="drop_oldest")
    for i in range(3):
        feed(r, book_push(HK, 380.0 + i))
        (book,) = fast.drain()
        assert best_bid(book) == 380.0 + i
    (last,) = slow.drain()
    assert last is book  # one model for both streams
    assert slow.dropped == 2


def test_odd_lot_books_route_by_type() -> None:
    r = router("order_book")
    normal = stream(r, HK)
    odd = stream(r, HK, variant=1)
    feed(r, book_push(HK, 380.0), book_push(HK, 390.0, odd=True), book_push(HK, 381.0, odd=False))
    (n,) = normal.drain()
    (o,) = odd.drain()
    assert best_bid(n) == 381.0
    assert best_bid(o) == 390.0
    assert o.order_book_type is not None and o.order_book_type.value == "ODD"


def test_a_quote_push_splits_per_security() -> None:
    r = router("quote")
    a = stream(r, HK)
    b = stream(r, HK2)
    feed(r, quote_push(quote_pb(HK, 380.0), quote_pb(HK2, 80.0), quote_pb("US.AAPL", 1.0)))
    assert [q.last_price for q in a.drain()] == [380.0]
    assert [q.last_price for q in b.drain()] == [80.0]
    assert r.unrouted == 1  # nobody streams US.AAPL: counted, dropped


def test_missing_optional_blocks_decode_as_absent() -> None:
    r = router("quote")
    s = stream(r, HK)
    feed(r, quote_push(quote_pb(HK, 1.0)))
    (q,) = s.drain()
    assert isinstance(q, Quote)
    assert q.name == "N/A" and q.option is None and q.pre_market is None


def test_bad_pushes_are_counted_never_raised() -> None:
    r = router("broker")
    s = stream(r, HK)
    bad_ret = qot_update_broker_pb2.Response(retType=-1, retMsg="no right")
    no_security = qot_update_broker_pb2.Response(retType=0)
    no_security.s2c.name = "x"  # the required security is missing: does not parse
    r.dispatch_batch(
        [
            Frame(3015, 0, b"\xff\xff\xff"),
            Frame(3015, 0, bad_ret.SerializeToString()),
            Frame(3015, 0, no_security.SerializePartialToString()),
        ]
    )
    r.flush()
    assert r.bad_pushes == 3
    assert s.drain() == []
    queue = sim_broker.s2c(Market.HK, "00700", sim_broker.broker_sides(2, 2, 1), name="T")
    feed(r, Frame(3015, 0, sim_broker.push_body(queue)))  # the reader goes on
    (q,) = s.drain()
    assert q.code == HK and len(q.bids) >= 2


# ------------------------------------------------------------------------------ joining, re-sync


def test_a_stream_joining_later_starts_from_the_latest_state() -> None:
    r = router("order_book")
    first = stream(r, HK)
    feed(r, book_push(HK, 380.0))
    assert [best_bid(b) for b in first.drain()] == [380.0]
    second = stream(r, HK, HK2)
    assert [best_bid(b) for b in second.drain()] == [380.0]
    assert r.without_state(second) == [HK2]  # what the attacher subscribes with first push
    assert first.drain() == []


def test_a_route_unwatched_for_a_while_forgets_its_state() -> None:
    r = router("quote")
    s = stream(r, HK)
    feed(r, quote_push(quote_pb(HK, 1.0)))
    r.detach(s)
    feed(r, quote_push(quote_pb(HK, 2.0)))  # nobody watches: unrouted, not cached
    assert r.unrouted == 1
    again = stream(r, HK)
    assert again.drain() == []
    assert r.without_state(again) == [HK]


def test_reconnect_marks_stale_then_the_fresh_state_resyncs() -> None:
    r = router("order_book")
    s = stream(r, HK, HK2, conflate=False)
    feed(r, book_push(HK, 380.0), book_push(HK2, 80.0))
    s.drain()
    r.hold()  # the link is lost
    assert s.stale == {HK, HK2}
    feed(r, book_push(HK, 385.0), book_push(HK, 386.0))  # first push, then an update: held
    assert s.drain() == []
    r.release()
    assert [best_bid(b) for b in s.drain()] == [385.0, 386.0]
    assert s.resynced == 1
    assert s.stale == {HK2}  # no fresh state for it yet
    feed(r, book_push(HK2, 81.0))
    assert s.resynced == 2 and s.stale == frozenset()


def test_fail_ends_only_the_refused_sub_type() -> None:
    r = router("order_book")
    normal = stream(r, HK)
    odd = stream(r, HK, variant=1)
    refused = OpenDError(proto_id=3001, ret_type=-1, err_code=0, ret_msg="no")
    r.fail({(1, "00700")}, refused, SubType.TICKER)  # another kind's: not ours
    r.fail({(1, "00700")}, refused, SubType.ORDER_BOOK_ODD)
    assert odd._ended and not normal._ended
    r.end_all(ConnectionLost("gone"))
    with pytest.raises(ConnectionLost):
        normal.drain()


def test_stream_stats_name_the_kind_and_conflation() -> None:
    from aiofutu._routing import stream_stats

    r = router("quote")
    s = stream(r, HK)
    feed(r, quote_push(quote_pb(HK, 1.0)), quote_push(quote_pb(HK, 2.0)))
    (row,) = stream_stats([r])["streams"]
    assert row["kind"] == "quote"
    assert (row["received"], row["conflated"], row["pending"]) == (2, 1, 1)
    assert s.pending == 1


# ------------------------------------------------------------------------------ the columnar view


@settings(max_examples=60, deadline=None)
@given(
    levels=st.integers(0, 12),
    details=st.booleans(),
    hp=st.sampled_from(["none", "all", "some"]),
    name=st.one_of(st.none(), st.text(max_size=5)),
    book_type=st.sampled_from([None, 0, 1]),
    recv=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_view_decode_equals_the_exact_decode(
    levels: int,
    details: bool,
    hp: str,
    name: str | None,
    book_type: int | None,
    recv: bool,
    seed: int,
) -> None:
    bids, asks = sim_book.book_sides(Market.HK, 380.0, levels, seed, details=details)
    for i, level in enumerate([*bids, *asks]):
        if hp == "all" or (hp == "some" and i % 2):
            level.hpVolume = level.volume + 0.5
    s2c = sim_book.s2c(
        Market.HK,
        "00700",
        (bids, asks),
        name=name,
        order_book_type=book_type,
        recv_time=("2025-04-07 05:39:20.352", 1744004360.352) if recv else None,
    )
    body = sim_book.push_body(s2c)
    view = BookView.FromString(body)
    exact = qot_update_order_book_pb2.Response.FromString(body)
    assert book_from_view((view.s2c, body)) == order_book_from_s2c(exact.s2c)
    # a 3012 reply has the push's S2C: get_order_book decodes it the same way
    assert book_from_reply(body, 3012, 1) == order_book_from_s2c(exact.s2c)
    if not details and hp != "some":  # what the view can hold: decoded from its columns
        assert _book_columns._side(view.s2c.orderBookBidList) is not None
        assert _book_columns._side(view.s2c.orderBookAskList) is not None
    elif levels and details:
        assert _book_columns._side(view.s2c.orderBookBidList) is None


@settings(max_examples=60, deadline=None)
@given(
    bid_levels=st.integers(0, 10),
    ask_levels=st.integers(0, 10),
    details=st.sampled_from(["none", "all", "some"]),
    name=st.one_of(st.none(), st.text(max_size=5)),
    seed=st.integers(0, 1000),
)
def test_broker_view_decode_equals_the_exact_decode(
    bid_levels: int, ask_levels: int, details: str, name: str | None, seed: int
) -> None:
    bids, asks = sim_broker.broker_sides(bid_levels, ask_levels, seed, details=details != "none")
    if details == "some":  # HK SF fields on some brokers only: the view cannot hold it
        for b in [*bids, *asks][::2]:
            b.ClearField("orderID")
    queue = sim_broker.s2c(Market.HK, "00700", (bids, asks), name=name)
    body = sim_broker.push_body(queue)
    exact = broker_queue_from_s2c(qot_update_broker_pb2.Response.FromString(body).s2c)
    view = BrokerView.FromString(body)
    assert broker_from_view((view.s2c, body)) == exact
    reply = sim_broker.get_reply_body(queue)
    assert broker_from_reply(reply, 3014, 1) == exact
    side = _broker_columns._side(view.s2c.brokerBidList)
    if details != "some" or len(bids) < 2:
        assert side is not None  # decoded from the columns
    else:
        assert side is None


def test_unchanged_brokers_are_shared_between_queues() -> None:
    bids, asks = sim_broker.broker_sides(3, 3, 5)
    one = broker_from_view(_broker_view(bids, asks))
    bids[0].pos += 1  # the next update moves one broker
    two = broker_from_view(_broker_view(bids, asks))
    assert two.bids[0].position == one.bids[0].position + 1
    assert two.bids[1] is one.bids[1] and two.asks[0] is one.asks[0]


def _broker_view(bids: Any, asks: Any) -> tuple[Any, bytes]:
    body = sim_broker.push_body(sim_broker.s2c(Market.HK, "00700", (bids, asks)))
    return BrokerView.FromString(body).s2c, body


def test_a_refused_or_broken_broker_reply_is_a_typed_error() -> None:
    refused = qot_get_broker_pb2.Response(retType=-1, retMsg="no right", errCode=3)
    with pytest.raises(OpenDError) as info:
        broker_from_reply(refused.SerializeToString(), 3014, 5)
    assert (info.value.ret_type, info.value.ret_msg) == (-1, "no right")
    with pytest.raises(RemoteProtocolError):
        broker_from_reply(b"\xff\xff\xff", 3014, 5)


def test_a_refused_or_broken_book_reply_is_a_typed_error() -> None:
    refused = qot_get_order_book_pb2.Response(retType=-1, retMsg="not subscribed", errCode=7)
    with pytest.raises(OpenDError) as info:
        book_from_reply(refused.SerializeToString(), 3012, 5)
    assert (info.value.ret_type, info.value.ret_msg) == (-1, "not subscribed")
    with pytest.raises(RemoteProtocolError):
        book_from_reply(b"\xff\xff\xff", 3012, 5)  # not protobuf
    with pytest.raises(OpenDError) as info:  # no retType: its default, as the exact decode
        book_from_reply(b"", 3012, 5)
    assert info.value.ret_type == -400


def test_unchanged_levels_are_shared_between_books() -> None:
    sides = sim_book.book_sides(Market.HK, 380.0, 5, 3)
    body = sim_book.push_body(sim_book.s2c(Market.HK, "00700", sides))
    bids, asks = sides
    bids[0].volume += 100  # the next update changes the best bid only
    changed = sim_book.push_body(sim_book.s2c(Market.HK, "00700", (bids, asks)))
    one = book_from_view((BookView.FromString(body).s2c, body))
    two = book_from_view((BookView.FromString(changed).s2c, changed))
    assert two.bids[0].volume == one.bids[0].volume + 100
    assert two.bids[0] is not one.bids[0]
    assert all(a is b for a, b in zip(one.bids[1:], two.bids[1:], strict=True))
    assert all(a is b for a, b in zip(one.asks, two.asks, strict=True))


_OPTIONAL_QUOTE = {
    "name": st.text(max_size=4),
    "updateTimestamp": st.floats(0, 2e9),
    "listTimestamp": st.floats(0, 2e9),
    "hpVolume": st.floats(0, 1e9),
    "darkStatus": st.integers(0, 3),
    "secStatus": st.integers(0, 25),
}


def _block(kind: str, seed: int) -> Any:
    if kind == "optionExData":
        block = qot_common_pb2.OptionBasicQotExData(
            strikePrice=1.5,
            contractSize=100,
            openInterest=seed,
            impliedVolatility=0.3,
            premium=0.1,
            delta=0.5,
            gamma=0.1,
            vega=0.2,
            theta=-0.1,
            rho=0.01,
        )
        if seed % 2:
            block.contractSizeFloat = 100.0
            block.optionAreaType = 1
        return block
    if kind == "futureExData":
        return qot_common_pb2.FutureBasicQotExData(
            lastSettlePrice=1.0, position=seed, positionChange=-seed
        )
    if kind == "warrantExData":
        return qot_common_pb2.WarrantBasicQotExData(premium=0.2)
    return qot_common_pb2.PreAfterMarketData(price=1.0 + seed, volume=seed)


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(0, 6),
    optional=st.dictionaries(
        st.sampled_from(sorted(_OPTIONAL_QUOTE)), st.sampled_from(["all", "some"])
    ),
    blocks=st.dictionaries(
        st.sampled_from(
            [
                "optionExData",
                "futureExData",
                "warrantExData",
                "preMarket",
                "afterMarket",
                "overnight",
            ]
        ),
        st.sampled_from(["all", "some"]),
    ),
    data=st.data(),
)
def test_quote_view_decode_equals_the_exact_decode(
    n: int, optional: dict[str, str], blocks: dict[str, str], data: st.DataObject
) -> None:
    resp = qot_get_basic_qot_pb2.Response(retType=0)
    for i in range(n):
        q = quote_pb(f"HK.{i:05d}", 10.0 + i)
        for name, how in optional.items():
            if how == "all" or i % 2:
                setattr(q, name, data.draw(_OPTIONAL_QUOTE[name]))
        for name, how in blocks.items():
            if how == "all" or i % 2:
                getattr(q, name).CopyFrom(_block(name, i))
        resp.s2c.basicQotList.append(q)
    body = resp.SerializeToString()
    exact = quotes_from_s2c(qot_get_basic_qot_pb2.Response.FromString(body).s2c)
    viewed = quotes_from_view(QuoteView.FromString(body).s2c)
    placeable = n <= 1 or all(how == "all" for how in (*optional.values(), *blocks.values()))
    if placeable:
        assert viewed == exact
    else:
        assert viewed is None or viewed == exact  # "some" may still be all (n small)

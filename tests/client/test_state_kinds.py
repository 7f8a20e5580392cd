"""Quotes, order books and broker queues end to end, over real sockets against the simulator.

Requests and their polars forms, state streams with and without conflation, fan-out, and the
re-sync after a reconnect (the simulator's ``drop_connections``), with states set exactly by the
simulator's test setters (``set_quote``, ``set_order_book``, ``set_broker_queue``).
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import aiofutu
from aiofutu import ClientState, ReconnectPolicy, SubType

from .conftest import Net

pytestmark = pytest.mark.anyio
#: every test here runs over TCP and over the WebSocket gateway (tests/client/conftest.py)
BOTH_TRANSPORTS = True

HK = "HK.00700"
HK2 = "HK.09988"
US = "US.AAPL"
BIDS = [(380.0, 1000, 3), (379.8, 2000, 5), (379.6, 300, 1)]
ASKS = [(380.2, 500, 2), (380.4, 800, 4)]


def _policy(delay: float) -> ReconnectPolicy:
    return ReconnectPolicy(initial_delay=delay, max_delay=delay, jitter=0.0)


async def _until(predicate: Any, within: float = 5.0) -> None:
    with anyio.fail_after(within):
        while not predicate():  # noqa: ASYNC110 (polling a counter)
            await anyio.sleep(0.01)


def _levels(side: Any) -> list[tuple[float, int, int]]:
    return [(lv.price, lv.volume, lv.order_count) for lv in side]


async def test_requests_see_the_simulators_states(net: Net) -> None:
    async with (
        net.serve(port=0, tick_rate=0, codes=(HK, US)) as server,
        net.connect(server) as client,
    ):
        await client.subscribe([HK, US], [SubType.TICKER, SubType.QUOTE], subscribe_push=False)
        await client.subscribe(HK, [SubType.ORDER_BOOK, SubType.BROKER], subscribe_push=False)
        quotes = await client.get_stock_quote([HK, US, HK])
        assert [q.code for q in quotes] == [HK, US]
        ticks = await client.get_rt_ticker(HK, 1)
        assert quotes[0].last_price == ticks[-1].price  # the quote is folded from the tape
        server.set_quote(HK, last_price=400.2, volume=12345)
        (q,) = await client.get_stock_quote(HK)
        assert (q.last_price, q.volume) == (400.2, 12345)

        server.set_order_book(HK, BIDS, ASKS)
        book = await client.get_order_book(HK, 10)
        assert (_levels(book.bids), _levels(book.asks)) == (BIDS, ASKS)
        assert book.code == HK and book.name != "N/A"
        short = await client.get_order_book(HK, 2)
        assert _levels(short.bids) == BIDS[:2]

        server.set_broker_queue(HK, [(1001, "B1", 1), (1002, "B2", 1)], [(2001, "A1", 1)])
        queue = await client.get_broker_queue(HK)
        assert [(b.broker_id, b.name, b.position) for b in queue.bids] == [
            (1001, "B1", 1),
            (1002, "B2", 1),
        ]
        assert [b.broker_id for b in queue.asks] == [2001]


async def test_polars_forms_have_the_sdks_shape(net: Net) -> None:
    pytest.importorskip("polars")
    async with (
        net.serve(port=0, tick_rate=0, codes=(HK,)) as server,
        net.connect(server) as client,
    ):
        await client.subscribe(HK, [SubType.QUOTE, SubType.ORDER_BOOK, SubType.BROKER])
        df = await client.get_stock_quote_frame([HK])
        assert df.columns == list(aiofutu.QUOTE_COLUMNS) and df.height == 1
        (q,) = await client.get_stock_quote(HK)
        assert df["last_price"][0] == q.last_price
        server.set_order_book(HK, BIDS, ASKS)
        book = await client.get_order_book_frame(HK, 10)
        assert book["Bid"]["price"].to_list() == [p for p, _, _ in BIDS]
        assert book["Ask"]["order_num"].to_list() == [n for _, _, n in ASKS]
        bid, ask = await client.get_broker_queue_frames(HK)
        assert bid.columns[2] == "bid_broker_id" and ask.columns[2] == "ask_broker_id"


async def test_quote_stream_conflates_and_every_update_without(net: Net) -> None:
    async with (
        net.serve(port=0, tick_rate=0, codes=(HK, HK2)) as server,
        net.connect(server) as client,
        client.quote_stream(HK, HK2) as latest,
    ):
        with anyio.fail_after(5):
            first = [await latest.__anext__(), await latest.__anext__()]
        assert {q.code for q in first} == {HK, HK2}  # first pushes: the current quotes
        every = client.quote_stream(HK, conflate=False)
        await every.start()
        assert len(every.drain()) == 1  # joined with the latest state
        for i in range(20):
            server.set_quote(HK, last_price=300.0 + i)
        server.set_quote(HK2, last_price=90.0)
        await _until(lambda: latest.received >= 23 and every.received >= 21)
        got = latest.drain()
        assert [(q.code, q.last_price) for q in got] == [(HK, 319.0), (HK2, 90.0)]
        assert latest.conflated == 19
        assert [q.last_price for q in every.drain()] == [300.0 + i for i in range(20)]
        assert every.conflated == 0 and every.dropped == 0
        await every.aclose()


async def test_book_burst_reaches_every_stream_and_a_slow_one_stalls_nobody(net: Net) -> None:
    n = 2_000
    async with (
        net.serve(port=0, tick_rate=0, codes=(HK,)) as server,
        net.connect(server) as client,
        client.order_book_stream(HK, conflate=False, buffer=n + 10) as every,
        client.order_book_stream(HK, conflate=False, buffer=10, overflow="drop_oldest") as slow,
        client.order_book_stream(HK) as latest,
    ):
        await _until(lambda: every.received >= 1 and latest.received >= 1)
        every.drain()
        got = 0

        async def consume() -> None:
            nonlocal got
            async for _book in every:
                got += 1
                if got == n:
                    return

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await server.burst_books(HK, n)
        assert got == n
        await _until(lambda: slow.received >= n + 1)
        assert slow.pending == 10 and slow.dropped == n + 1 - 10
        (newest,) = latest.drain()
        assert latest.conflated >= 1
        current = await client.get_order_book(HK, 10)
        assert _levels(newest.bids) == _levels(current.bids)  # the newest is the current book
        stats = client.stats()
        rows = [s for s in stats["streams"] if s["kind"] == "order_book"]
        assert len(rows) == 3


async def test_odd_lot_book_stream(net: Net) -> None:
    async with (
        net.serve(port=0, tick_rate=0, codes=(HK,)) as server,
        net.connect(server) as client,
        client.order_book_stream(HK, odd_lot=True) as odd,
        client.order_book_stream(HK) as normal,
    ):
        await _until(lambda: odd.received >= 1 and normal.received >= 1)
        odd.drain()
        normal.drain()
        server.set_order_book(HK, [(380.0, 7, 1)], [(380.2, 9, 1)], odd=True)
        await _until(lambda: odd.received >= 2)
        (book,) = odd.drain()
        assert book.kind.value == "ODD" and _levels(book.bids) == [(380.0, 7, 1)]
        assert normal.drain() == []  # the odd book is routed to the odd stream only
        assert SubType.ORDER_BOOK_ODD in client.subscriptions()[HK]


async def test_broker_stream_and_its_refusals(net: Net) -> None:
    async with (
        net.serve(port=0, tick_rate=0, codes=(HK, US)) as server,
        net.connect(server) as client,
    ):
        with pytest.raises(aiofutu.UnsupportedMarket):
            client.broker_stream(US)
        with pytest.raises(aiofutu.SubscriptionRequired):
            await client.get_broker_queue(HK)
        async with client.broker_stream(HK) as queues:
            await _until(lambda: queues.received >= 1)
            queues.drain()
            server.set_broker_queue(HK, [(7, "X", 1)], [(8, "Y", 2)])
            with anyio.fail_after(5):
                q = await queues.__anext__()
            assert [(b.broker_id, b.position) for b in q.bids] == [(7, 1)]


@pytest.mark.parametrize("conflate", [True, False])
async def test_reconnect_resyncs_each_stream_with_the_fresh_state(conflate: bool, net: Net) -> None:
    async with (
        net.serve(port=0, tick_rate=0, codes=(HK, HK2), unsub_min_age=0) as server,
        net.connect(server, reconnect=_policy(0.3), timeout=5) as client,
        client.order_book_stream(HK, HK2, conflate=conflate) as books,
        client.quote_stream(HK) as quotes,
    ):
        await _until(lambda: books.received >= 2 and quotes.received >= 1)
        books.drain()
        quotes.drain()
        assert books.resynced == 0 and books.stale == frozenset()
        await server.drop_connections()
        await _until(lambda: client.state is not ClientState.READY or client.reconnects)
        # while the client is away, the market moves on
        server.set_order_book(HK, BIDS, ASKS)
        server.set_quote(HK, last_price=401.0)
        await _until(lambda: client.reconnects == 1 and client.state is ClientState.READY, 10)
        await _until(lambda: books.resynced == 2 and quotes.resynced == 1)
        assert books.stale == frozenset() and quotes.stale == frozenset()
        fresh = {b.code: b for b in books.drain()}
        assert _levels(fresh[HK].bids) == BIDS  # the state set while the link was down
        assert HK2 in fresh
        (q,) = quotes.drain()
        assert q.last_price == 401.0
        # later updates come after the fresh state
        server.set_quote(HK, last_price=402.0)
        with anyio.fail_after(5):
            assert (await quotes.__anext__()).last_price == 402.0

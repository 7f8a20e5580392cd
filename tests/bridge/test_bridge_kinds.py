"""The state and series kinds through the bridge and the bus (real nats-server, real simulator).

For each kind, what the simulator pushes (set exactly with its test setters, or folded from a
burst of ticks) reaches a bus consumer equal to what a direct client's stream yields; two
bridges store one copy of each state update and never drop a distinct one; a malformed body is
counted and skipped; ``aiofutu tail --nats --kind quote`` reads the bus.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import aiofutu
from aiofutu import bridge, bus
from aiofutu._pb import qot_common_pb2
from aiofutu.bridge import _subjects
from aiofutu.bridge._buskinds import bus_kinds, kline_to_pb, rt_to_pb
from aiofutu.bridge._items import msg_id
from aiofutu.bridge._publisher import _check_kinds

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from aiofutu.sim import Simulator

    from .conftest import NatsServer

nats = pytest.importorskip("nats")
pytestmark = pytest.mark.anyio

HK = "HK.00700"
US = "US.AAPL"
BIDS = [(380.0, 1000, 3), (379.8, 2000, 5), (379.6, 300, 1)]
ASKS = [(380.2, 500, 2), (380.4, 800, 4)]
POLICY = aiofutu.ReconnectPolicy(initial_delay=0.05, max_delay=0.5)


@contextlib.asynccontextmanager
async def running_bridge(
    opend: Simulator, url: str, codes: tuple[str, ...], kinds: tuple[str, ...]
) -> AsyncIterator[bridge.Bridge]:
    async with (
        aiofutu.connect(opend.host, opend.port, reconnect=POLICY) as client,
        anyio.create_task_group() as tg,
    ):
        handle = await tg.start(lambda task_status: bridge.run(
            client, url, codes=codes, kinds=kinds, task_status=task_status
        ))  # fmt: skip
        try:
            yield handle
        finally:
            tg.cancel_scope.cancel()


async def stored(url: str, subject: str, at_least: int = 0, timeout: float = 5) -> int:
    """Messages the stream holds on ``subject`` (waiting until there are ``at_least``)."""
    nc = await nats.connect(url)
    try:
        with anyio.fail_after(timeout):
            while True:
                try:
                    info = await nc.jetstream().stream_info("FUTU", subjects_filter=subject)
                    count = int((info.state.subjects or {}).get(subject, 0))
                except nats.js.errors.NotFoundError:
                    count = 0
                if count >= at_least:
                    return count
                await anyio.sleep(0.02)
    finally:
        await nc.close()


async def take(stream: Any, n: int, timeout: float = 5) -> list[Any]:
    got: list[Any] = []
    with anyio.fail_after(timeout):
        async for item in stream:
            got.append(item)
            if len(got) >= n:
                break
    return got


# -- the contract (in memory) ------------------------------------------------------------------


def test_every_kind_of_the_table_is_a_bus_kind() -> None:
    tokens = list(bus_kinds())
    assert tokens[:1] == ["ticker"]
    for token in ("quote", "order_book", "order_book_odd", "broker", "rt", "kline_1m",
                  "kline_day", "kline_year"):  # fmt: skip
        assert token in tokens
        assert bridge.subject(token, HK) == f"futu.{token}.HK.00700"
        assert bridge.parse_subject(bridge.subject(token, "US..DJI")) == (token, "US..DJI")
    assert len([t for t in tokens if t.startswith("kline_")]) == 15
    with pytest.raises(aiofutu.ConfigurationError, match="not a bus kind"):
        _check_kinds("kline_7m")


def test_series_bodies_decode_to_equal_items() -> None:
    bar = aiofutu.KLine(time="2026-12-03 10:01:00", open=1.5, close=1.6, high=1.7, low=1.4,
                        volume=1200.0, turnover=1900.5, timestamp=1.8e9)  # fmt: skip
    odd = bar.model_copy(update={"volume": 12.25, "pe": None, "is_blank": True})
    kline = bus_kinds()["kline_1m"]
    for item in (bar, odd, aiofutu.KLine(time="2026-12-03 10:02:00")):
        assert kline.decode(kline_to_pb(item).SerializeToString()) == item
    rt = bus_kinds()["rt"]
    point = aiofutu.RTPoint(time="2026-12-03 10:01:00", minute=601, price=3.5, volume=300.0)
    assert rt.decode(rt_to_pb(point).SerializeToString()) == point


def test_msg_id_rules() -> None:
    """Series: the bar's content (an in-place update is a new id). States: chained to the
    previous update, so that A, B, A are three ids, and the same update after the same one
    is one id whichever bridge computes it."""
    kline = bus_kinds()["kline_1m"]
    bar = kline_to_pb(aiofutu.KLine(time="2026-12-03 10:01:00", close=1.6, volume=100.0))
    moved = kline_to_pb(aiofutu.KLine(time="2026-12-03 10:01:00", close=1.7, volume=200.0))
    assert msg_id(kline, HK, bar)[0] == msg_id(kline, HK, bar)[0]
    assert msg_id(kline, HK, bar)[0] != msg_id(kline, HK, moved)[0]
    assert msg_id(kline, HK, bar)[0].startswith("HK.00700:kline_1m:")
    book = bus_kinds()["order_book"]
    a = qot_common_pb2.OrderBook(price=1.0, volume=1, orederCount=1)  # any message will do
    b = qot_common_pb2.OrderBook(price=2.0, volume=1, orederCount=1)
    id_a, dig_a = msg_id(book, HK, a)
    id_b, dig_b = msg_id(book, HK, b, dig_a)
    id_a2, _ = msg_id(book, HK, a, dig_b)
    assert len({id_a, id_b, id_a2}) == 3
    assert msg_id(book, HK, b, dig_a)[0] == id_b


# -- end to end --------------------------------------------------------------------------------


async def test_state_kinds_reach_the_bus_as_a_direct_client_sees_them(
    opend: Simulator, nats_server: NatsServer
) -> None:
    url = nats_server.url
    kinds = ("quote", "order_book", "order_book_odd", "broker")
    async with (
        running_bridge(opend, url, (HK, US), kinds),
        aiofutu.connect(opend.host, opend.port) as direct,
    ):
        for token in kinds:  # each state is stored once, from the bridge's first push
            await stored(url, bridge.subject(token, HK), 1)
        opens = [
            (direct.quote_stream(HK, US, conflate=False),
             bus.quote_stream(url, [HK, US], conflate=False)),
            (direct.order_book_stream(HK, conflate=False),
             bus.order_book_stream(url, HK, conflate=False)),
            (direct.order_book_stream(HK, odd_lot=True, conflate=False),
             bus.order_book_stream(url, HK, odd_lot=True, conflate=False)),
            (direct.broker_stream(HK, conflate=False), bus.broker_stream(url, HK, conflate=False)),
        ]  # fmt: skip
        async with contextlib.AsyncExitStack() as stack:
            pairs = [
                (await stack.enter_async_context(d), await stack.enter_async_context(b))
                for d, b in opens
            ]
            # the current states first (OpenD's first push; the newest stored message)
            for (d, b), n in zip(pairs, (2, 1, 1, 1), strict=True):
                first_direct, first_bus = await take(d, n), await take(b, n)
                key = lambda m: m.code  # noqa: E731
                assert sorted(first_bus, key=key) == sorted(first_direct, key=key)
            opend.set_quote(HK, last_price=400.2, volume=12345, turnover=4940469.0)
            opend.set_order_book(HK, BIDS, ASKS, recv_time=("2026-12-03 10:00:00.125", 1.8e9))
            opend.set_order_book(HK, BIDS[:1], ASKS, odd=True)
            opend.set_broker_queue(HK, [(1001, "B1", 1), (1002, "B2", 1)], [(2001, "A1", 1)])
            got = [(await take(d, 1), await take(b, 1)) for d, b in pairs]
        for want, have in got:
            assert have == want
        quote, book, odd, brokers = (have[0] for _, have in got)
        assert (quote.code, quote.last_price, quote.volume) == (HK, 400.2, 12345)
        assert [(lv.price, lv.volume, lv.order_count) for lv in book.bids] == BIDS
        assert book.svr_recv_time_bid == "2026-12-03 10:00:00.125"
        assert len(odd.bids) == 1 and odd.asks[0].price == ASKS[0][0]
        assert [e.broker_id for e in brokers.bids] == [1001, 1002]


async def test_series_kinds_reach_the_bus_as_a_direct_client_sees_them(
    opend: Simulator, nats_server: NatsServer
) -> None:
    url = nats_server.url
    async with (
        running_bridge(opend, url, (HK,), ("kline_1m", "rt")),
        aiofutu.connect(opend.host, opend.port) as direct,
        direct.kline_stream(HK, is_first_push=False) as d_bars,
        direct.rt_stream(HK, is_first_push=False) as d_rt,
        bus.kline_stream(url, HK, since="new") as b_bars,
        bus.rt_stream(url, HK, since="new") as b_rt,
    ):
        await anyio.sleep(0.3)  # every consumer exists before the ticks
        await opend.burst(HK, 200)
        sec = opend.market.security(HK)
        for minute in (1, 2, 3):  # ticks of the next minutes: they close bars and minutes
            opend.push_ticks(sec, sec.generate(3, now=time.time() + 60 * minute))
        await stored(url, bridge.subject("rt", HK), 2)
        await anyio.sleep(0.5)
        want_bars = await take(d_bars, d_bars.pending)
        want_rt = await take(d_rt, d_rt.pending)
        have_bars = await take(b_bars, len(want_bars))
        have_rt = await take(b_rt, len(want_rt))
        await anyio.sleep(0.2)
        assert b_bars.pending == b_rt.pending == 0  # nothing more than the direct streams saw
    assert len(want_bars) > 1 and len(want_rt) > 1
    assert any(u.closed for u in want_bars) and any(u.closed for u in want_rt)
    assert have_bars == want_bars  # the same bars, open and closed flags, in the same order
    assert have_rt == want_rt
    assert {(u.kl_type, u.au_type) for u in have_bars} == {
        (aiofutu.KLType.K_1M, aiofutu.AuType.QFQ)
    }


async def test_two_bridges_store_one_copy_of_each_state_update(
    opend: Simulator, nats_server: NatsServer
) -> None:
    url = nats_server.url
    subject = bridge.subject("order_book", HK)
    other = [(379.0, 10, 1)]
    async with (
        running_bridge(opend, url, (HK,), ("order_book",)) as one,
        running_bridge(opend, url, (HK,), ("order_book",)) as two,
    ):
        assert await stored(url, subject, 1) == 1  # the first push of both: one copy
        async with bus.order_book_stream(url, HK, conflate=False, since="all") as books:
            await take(books, 1)
            for bids in (BIDS, other, BIDS, other):  # A, B, A, B: four distinct updates
                opend.set_order_book(HK, bids, ASKS)
                await anyio.sleep(0.05)
            got = await take(books, 4)
            assert [[lv.price for lv in b.bids] for b in got] == [
                [p for p, *_ in side] for side in (BIDS, other, BIDS, other)
            ]
            assert await stored(url, subject, 5) == 5

            def copies() -> int:  # not stored: skipped (found stored at start) or duplicates
                return sum(b.stats().duplicates + b.stats().skipped for b in (one, two))

            with anyio.fail_after(5):
                while copies() < 5:  # noqa: ASYNC110
                    await anyio.sleep(0.02)
            await anyio.sleep(0.2)
            assert books.pending == 0 and books.duplicates == 0


async def test_a_malformed_quote_message_is_counted_and_skipped(
    opend: Simulator, nats_server: NatsServer
) -> None:
    url = nats_server.url
    subject = bridge.subject("quote", HK)
    async with running_bridge(opend, url, (HK,), ("quote",)):
        await stored(url, subject, 1)
        nc = await nats.connect(url)
        try:
            async with bus.quote_stream(url, HK, since="new", conflate=False) as quotes:
                await anyio.sleep(0.2)
                js = nc.jetstream()
                good = _subjects.item_headers("quote", HK, "test-1")
                await js.publish(subject, b"\xff\xff\xff", headers=good)  # not a BasicQot
                await js.publish(subject, b"", headers={"Futu-Kind": "quote"})  # no code
                await js.publish(subject, b"", headers=_subjects.item_headers("quote", US, "x"))
                opend.set_quote(HK, last_price=401.0)
                (quote,) = await take(quotes, 1)
                assert quote.last_price == 401.0
                assert quotes.malformed == 3
        finally:
            await nc.close()


async def test_cli_tail_and_record_nats_kind(
    opend: Simulator, nats_server: NatsServer, tmp_path: Path
) -> None:
    url = nats_server.url
    async with running_bridge(opend, url, (HK,), ("quote", "kline_1m")):
        await stored(url, bridge.subject("quote", HK), 1)
        opend.set_quote(HK, last_price=402.5)
        await stored(url, bridge.subject("quote", HK), 2)
        done = await anyio.to_thread.run_sync(lambda: subprocess.run(
            [sys.executable, "-m", "aiofutu", "tail", "--nats", url, HK, "--kind", "quote",
             "--limit", "1", "--format", "json"],
            capture_output=True, text=True, timeout=30,
        ))  # fmt: skip
        out = tmp_path / "bars.jsonl"
        done_record = await anyio.to_thread.run_sync(lambda: subprocess.run(
            [sys.executable, "-m", "aiofutu", "record", "--nats", url, HK, "--kind", "kline",
             "--ktype", "K_1M", "--limit", "1", "--out", str(out)],
            capture_output=True, text=True, timeout=30,
        ))  # fmt: skip
    assert done.returncode == 0, done.stderr
    (row,) = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert row["code"] == HK and row["last_price"] == 402.5
    assert done_record.returncode == 0, done_record.stderr
    assert "wrote 1 kline rows" in done_record.stderr and "from the bus" in done_record.stderr
    (bar,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert bar["code"] == HK and bar["kl_type"] == "K_1M" and bar["closed"] is False


async def test_a_restarted_bridge_sends_a_changed_state_and_no_copy_of_an_unchanged_one(
    opend: Simulator, nats_server: NatsServer
) -> None:
    url = nats_server.url
    subject = bridge.subject("broker", HK)
    async with running_bridge(opend, url, (HK,), ("broker",)):
        assert await stored(url, subject, 1) == 1
    async with running_bridge(opend, url, (HK,), ("broker",)) as again:  # nothing changed
        with anyio.fail_after(5):
            while again.stats().skipped < 1:  # noqa: ASYNC110
                await anyio.sleep(0.02)
        assert await stored(url, subject) == 1
    async with bus.broker_stream(url, HK) as queues:
        (before,) = await take(queues, 1)  # the newest stored state, at once
        opend.set_broker_queue(HK, [(3001, "C1", 1)], [])  # changed while no bridge runs
        async with running_bridge(opend, url, (HK,), ("broker",)):
            (fresh,) = await take(queues, 1)
        assert [e.broker_id for e in fresh.bids] == [3001] and fresh != before
    assert await stored(url, subject) == 2


async def test_a_burst_of_recurring_books_reaches_the_bus_whole(
    opend: Simulator, nats_server: NatsServer
) -> None:
    """burst_books cycles through 64 distinct books: a content-only id would store 64 of
    these 300; the states' hash chain stores every update, in order."""
    url = nats_server.url
    async with (
        running_bridge(opend, url, (HK,), ("order_book",)),
        aiofutu.connect(opend.host, opend.port) as direct,
        direct.order_book_stream(HK, conflate=False, buffer=1000) as d_books,
    ):
        await stored(url, bridge.subject("order_book", HK), 1)
        async with bus.order_book_stream(url, HK, since="new", conflate=False) as books:
            await take(d_books, 1)  # the direct stream's first push
            await anyio.sleep(0.2)
            await opend.burst_books(HK, 300)
            want = await take(d_books, 300)
            have = await take(books, 300)
        assert have == want
        assert len({tuple(lv.price for lv in b.bids) for b in want}) <= 64


async def test_after_an_opend_reconnect_the_fresh_state_is_published_once(
    opend: Simulator, nats_server: NatsServer
) -> None:
    """One bridge for ticks and states: across an OpenD outage the client re-subscribes with
    OpenD's first push; a state that changed meanwhile is published, an unchanged one is not
    stored again, and the ticks go on."""
    url = nats_server.url
    quotes_subject, book_subject = bridge.subject("quote", HK), bridge.subject("order_book", HK)
    async with running_bridge(opend, url, (HK,), ("ticker", "quote", "order_book")) as handle:
        await stored(url, quotes_subject, 1)
        assert await stored(url, book_subject, 1) == 1
        async with (
            bus.quote_stream(url, HK) as quotes,
            bus.subscribe(url, HK, reorder_window=0) as ticks,
        ):
            (before,) = await take(quotes, 1)
            skipped = handle.stats().skipped
            await opend.drop_connections()
            opend.set_quote(HK, last_price=399.8)  # while the bridge is away
            (fresh,) = await take(quotes, 1)
            assert fresh.last_price == 399.8 and fresh != before
            with anyio.fail_after(5):  # the unchanged book came again: recognised, not sent
                while handle.stats().skipped <= skipped:  # noqa: ASYNC110
                    await anyio.sleep(0.02)
            assert await stored(url, book_subject) == 1
            await opend.burst(HK, 20)
            got = await take(ticks, 20)
            assert [t.code for t in got] == [HK] * 20


async def test_a_slow_state_consumer_gets_the_newest_book(
    opend: Simulator, nats_server: NatsServer
) -> None:
    """conflate=True (the default): a consumer that did not read during a burst of books
    gets the newest one only, as a direct state stream does; conflate=False gets all, or
    its overflow policy."""
    url = nats_server.url
    async with running_bridge(opend, url, (HK,), ("order_book",)):
        await stored(url, bridge.subject("order_book", HK), 1)
        async with (
            bus.order_book_stream(url, HK) as newest,
            bus.order_book_stream(url, HK, conflate=False, buffer=50, overflow="raise") as few,
            aiofutu.connect(opend.host, opend.port) as direct,
            direct.order_book_stream(HK) as d_newest,
        ):
            await take(newest, 1)
            await take(d_newest, 1)
            await opend.burst_books(HK, 200)
            with anyio.fail_after(5):
                while newest.received < 201 or few.received < 201:  # noqa: ASYNC110
                    await anyio.sleep(0.02)
            await anyio.sleep(0.1)
            assert newest.pending == 1 and newest.conflated == 199
            (last,) = await take(newest, 1)
            assert last == (await take(d_newest, 1))[0]  # the book the direct stream ends at
            got = await take(few, 50)
            assert len(got) == 50
            with pytest.raises(aiofutu.SlowConsumer):
                await take(few, 1)
            assert few.dropped == 151


async def test_a_state_consumer_resumes_after_a_broker_restart(
    opend: Simulator, nats_server: NatsServer
) -> None:
    url = nats_server.url
    async with running_bridge(opend, url, (HK,), ("quote",)):
        await stored(url, bridge.subject("quote", HK), 1)
        async with bus.quote_stream(url, HK, conflate=False) as quotes:
            await take(quotes, 1)
            await anyio.to_thread.run_sync(nats_server.restart)  # the file store is kept
            opend.set_quote(HK, last_price=398.6)
            (quote,) = await take(quotes, 1, timeout=10)
            assert quote.last_price == 398.6
            assert quotes.duplicates == 0 and quotes.malformed == 0


async def test_the_chain_starts_afresh_when_nats_cannot_say(nats_server: NatsServer) -> None:
    from aiofutu.bridge._publisher import last_item

    nc = await nats.connect(nats_server.url)
    assert await last_item(nc, "FUTU", bridge.subject("quote", HK)) is None  # no stream yet
    await nc.close()
    assert await last_item(nc, "FUTU", bridge.subject("quote", HK)) is None  # closed: logged

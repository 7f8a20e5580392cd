"""Where a state or series bus stream starts (since=), and where a durable one resumes.

Real nats-server, real simulator, a bridge publishing order books and quotes: ``since`` as a
stream sequence, a time and a timedelta deliver exactly the updates from there; a durable
consumer closed and opened again gets what was published meanwhile, once; with nothing new, a
durable state stream starts again from the newest state; bad values fail before connecting.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import aiofutu
from aiofutu import bridge, bus

from .test_bridge_kinds import ASKS, HK, running_bridge, stored, take

if TYPE_CHECKING:
    from aiofutu.sim import Simulator

    from .conftest import NatsServer

nats = pytest.importorskip("nats")
pytestmark = pytest.mark.anyio

SIDES = [[(380.0 - i * 0.2, 100 * (i + 1), 1)] for i in range(4)]  # four distinct books


def _best(book: Any) -> float:
    return float(book.bids[0].price)


async def _last_seq(url: str, subject: str) -> int:
    nc = await nats.connect(url)
    try:
        return int((await nc.jetstream().get_last_msg("FUTU", subject)).seq)
    finally:
        await nc.close()


async def _publish_books(opend: Simulator, url: str, subject: str) -> list[tuple[int, dt.datetime]]:
    """Four distinct books after the first push: each one's stream sequence, and a time just
    before it was stored."""
    out = []
    count = await stored(url, subject, 1)
    for bids in SIDES:
        await anyio.sleep(0.05)  # the stream's timestamps of two books never tie
        before = dt.datetime.now(dt.timezone.utc)
        opend.set_order_book(HK, bids, ASKS)
        count = await stored(url, subject, count + 1)
        out.append((await _last_seq(url, subject), before))
    return out


async def test_since_a_sequence_a_time_or_a_timedelta(
    opend: Simulator, nats_server: NatsServer
) -> None:
    url = nats_server.url
    subject = bridge.subject("order_book", HK)
    async with running_bridge(opend, url, (HK,), ("order_book",)):
        books = await _publish_books(opend, url, subject)
        (seq_c, time_c) = books[2]
        want = [SIDES[2][0][0], SIDES[3][0][0]]
        async with bus.order_book_stream(url, HK, conflate=False, since=seq_c) as s:
            assert [_best(b) for b in await take(s, 2)] == want
            await anyio.sleep(0.2)
            assert s.pending == 0
        async with bus.order_book_stream(url, HK, conflate=False, since=time_c) as s:
            assert [_best(b) for b in await take(s, 2)] == want
            await anyio.sleep(0.2)
            assert s.pending == 0
        async with bus.order_book_stream(
            url, HK, conflate=False, since=dt.timedelta(minutes=5)
        ) as s:
            got = await take(s, 5)  # the first push, then the four
            assert [_best(b) for b in got[1:]] == [side[0][0] for side in SIDES]


async def test_a_durable_stream_resumes_after_what_it_was_done_with(
    opend: Simulator, nats_server: NatsServer
) -> None:
    url = nats_server.url
    subject = bridge.subject("quote", HK)
    async with running_bridge(opend, url, (HK,), ("quote",)):
        count = await stored(url, subject, 1)

        async def publish(*prices: float) -> None:
            nonlocal count
            for price in prices:
                opend.set_quote(HK, last_price=price)
                count = await stored(url, subject, count + 1)

        opts: dict[str, Any] = {"conflate": False, "since": "all", "durable": "risk_service"}
        async with bus.quote_stream(url, HK, **opts) as s:
            await take(s, 1)  # the bridge's first push
            await publish(401.0, 402.0)
            assert [q.last_price for q in await take(s, 2)] == [401.0, 402.0]
        await publish(403.0, 404.0)  # while the service is down
        async with bus.quote_stream(url, HK, **opts) as s:
            assert [q.last_price for q in await take(s, 2)] == [403.0, 404.0]
            await anyio.sleep(0.3)
            assert s.pending == 0  # nothing it was done with comes again
        # nothing new since: a restarted state stream starts again from the newest state
        async with bus.quote_stream(url, HK, **opts) as s:
            assert [q.last_price for q in await take(s, 1)] == [404.0]
            await anyio.sleep(0.3)
            assert s.pending == 0
        # left by an exception: what was handed out last is not done, it comes again
        with pytest.raises(RuntimeError):
            async with bus.quote_stream(url, HK, **opts) as s:
                await publish(405.0)
                assert [q.last_price for q in await take(s, 2)] == [404.0, 405.0]
                raise RuntimeError("the service crashed while handling 405.0")
        async with bus.quote_stream(url, HK, **opts) as s:
            assert [q.last_price for q in await take(s, 1)] == [405.0]


async def test_a_durable_closed_only_series_never_loses_a_close(
    opend: Simulator, nats_server: NatsServer
) -> None:
    url = nats_server.url
    subject = bridge.subject("rt", HK)
    opts: dict[str, Any] = {"closed_only": True, "since": "new", "durable": "bars"}
    sec = opend.market.security(HK)
    now = dt.datetime.now(dt.timezone.utc).timestamp()
    async with running_bridge(opend, url, (HK,), ("rt",)):
        async with bus.rt_stream(url, HK, **opts) as s:
            await anyio.sleep(0.3)  # the consumer exists before the ticks
            opend.push_ticks(sec, sec.generate(3, now=now + 60))
            count = await stored(url, subject, 1)
            opend.push_ticks(sec, sec.generate(3, now=now + 120))  # closes the first minute
            count = await stored(url, subject, count + 1)
            (first,) = await take(s, 1)
            assert first.closed
        # the second minute is open: its messages are not done until it closes
        opend.push_ticks(sec, sec.generate(3, now=now + 180))
        await stored(url, subject, count + 1)
        async with bus.rt_stream(url, HK, **opts) as s:
            (second,) = await take(s, 1)
            assert second.closed and second.point.time > first.point.time
            await anyio.sleep(0.3)
            assert s.pending == 0


@pytest.mark.parametrize(
    ("since", "durable", "match"),
    [
        (dt.datetime(2026, 12, 3, 10, 0), None, "timezone-aware"),
        (dt.timedelta(seconds=-1), None, "negative"),
        (0, None, "stream sequence"),
        ("old", None, "'last', 'new', 'all'"),
        (True, None, "stream sequence"),
        ("last", "risk service", "durable"),
        ("last", 7, "durable"),
    ],
)
def test_bad_positions_fail_before_connecting(since: Any, durable: Any, match: str) -> None:
    with pytest.raises(aiofutu.ConfigurationError, match=match):
        bus.quote_stream("nats://127.0.0.1:1", HK, since=since, durable=durable)
    if durable is None and since != "old":  # the tick stream has the same rule
        with pytest.raises(aiofutu.ConfigurationError, match=match):
            bus.subscribe("nats://127.0.0.1:1", [HK], since=since)

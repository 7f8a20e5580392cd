"""K-lines (3006/3007) and time share (3008/3009) over real sockets against the simulator.

Requests and frames, streams with their closed flags, ``closed_only``, and the reconnect backfill
(no loss, no repeat; a gap beyond OpenD's 1000 bars). The simulator's bars are checked against
an independent fold of the ticks it holds.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

import aiofutu
from aiofutu import AuType, KLineUpdate, KLType, ReconnectPolicy, RTUpdate, SubType, sim
from aiofutu.frames import CUR_KLINE_COLUMNS, RT_COLUMNS
from aiofutu.sim.kinds import kline as sim_kline

pytestmark = pytest.mark.anyio
#: every test here runs over TCP and over the WebSocket gateway (tests/client/conftest.py)
BOTH_TRANSPORTS = True

HK = "HK.00700"
US = "US.AAPL"


def _ticks_at(server: sim.Simulator, code: str, minute: int, n: int = 3) -> list[Any]:
    """``n`` ticks of ``code`` ``minute`` minutes from now, pushed (and folded) as live ones."""
    sec = server.market.security(code)
    ticks = sec.generate(n, now=time.time() + 60 * minute)
    server.push_ticks(sec, ticks)
    return ticks


def _fold(
    server: sim.Simulator, code: str, kl_type: int, ticks: list[Any] | None = None
) -> dict[str, tuple[float, ...]]:
    """Bars by time folded independently from ``ticks`` (default: those the simulator holds)."""
    out: dict[str, list[float]] = {}
    for t in server.market.history(code) if ticks is None else ticks:
        key = sim_kline.bar_time(kl_type, t.time)
        bar = out.get(key)
        if bar is None:
            out[key] = [t.price, t.price, t.price, t.price, t.volume, t.turnover]
        else:
            bar[1] = max(bar[1], t.price)
            bar[2] = min(bar[2], t.price)
            bar[3] = t.price
            bar[4] += t.volume
            bar[5] += t.turnover
    return {k: tuple(v) for k, v in out.items()}


def _ohlcv(bar: aiofutu.KLine) -> tuple[float, ...]:
    assert bar.open is not None and bar.high is not None and bar.low is not None
    assert bar.close is not None and bar.volume is not None and bar.turnover is not None
    return (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.turnover)


def _same(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[:5] == b[:5] and abs(a[5] - b[5]) < 1e-3


# ------------------------------------------------------------------------------- requests


async def test_bad_input_is_refused_before_sending(
    client: aiofutu.Client, server: sim.Simulator
) -> None:
    await client.subscribe(HK, [SubType.K_1M, SubType.RT_DATA])
    before = dict(server.requests)
    for kwargs in (
        {"ktype": "K_2M"},
        {"ktype": KLType.NONE},
        {"autype": "sideways"},
        {"autype": None},
        {"num": 0},
        {"num": 1001},
        {"num": 5.0},
        {"num": True},
    ):
        with pytest.raises(aiofutu.ConfigurationError):
            await client.get_cur_kline(HK, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(aiofutu.InvalidCode):
        await client.get_cur_kline("XX.1")
    with pytest.raises(aiofutu.SubscriptionRequired):
        await client.get_cur_kline(HK, ktype=KLType.K_DAY)  # K_1M is subscribed, not K_DAY
    with pytest.raises(aiofutu.SubscriptionRequired):
        await client.get_rt_data(US)
    with pytest.raises(aiofutu.ConfigurationError):
        client.kline_stream(HK, ktype="K_7M")
    assert dict(server.requests) == before  # nothing went out


async def test_opend_refuses_an_unsubscribed_get(client: aiofutu.Client) -> None:
    from aiofutu.quotes.kline import get_kl_request

    with pytest.raises(aiofutu.OpenDError, match="not subscribed"):
        await client.request(aiofutu.ProtoId.QOT_GET_KL, get_kl_request(HK, 10, KLType.K_1M))


async def test_cur_kline_bars_are_the_fold_of_the_ticks(
    client: aiofutu.Client, server: sim.Simulator
) -> None:
    await client.subscribe(HK, [SubType.K_1M, SubType.K_DAY])
    seen = list(server.market.history(HK))  # the tape the bars start from
    for minute in range(1, 4):
        seen += _ticks_at(server, HK, minute, 5)
    bars = await client.get_cur_kline(HK, 1000, KLType.K_1M)
    assert len(bars) == 1000  # the tape's bars after seeded history, as OpenD keeps 1000
    times = [b.time for b in bars]
    assert times == sorted(set(times))
    folded = _fold(server, HK, 1, seen)
    tape = [b for b in bars if b.time in folded]
    first = min(folded)  # the oldest tape bar may have begun before the tape: skip it
    checked = [b for b in tape if b.time != first]
    assert len(checked) >= 4
    for bar in checked:
        assert _same(_ohlcv(bar), folded[bar.time]), bar.time
    assert bars[-1].time == max(folded)  # the last bar is the open one
    day = await client.get_cur_kline(HK, 5, "K_DAY", AuType.QFQ)
    today = _fold(server, HK, 2, seen)
    assert day[-1].time in today and day[-1].volume == today[day[-1].time][4]


async def test_cur_kline_frame_has_the_sdk_columns(
    client: aiofutu.Client, server: sim.Simulator
) -> None:
    pytest.importorskip("polars")
    await client.subscribe(US, SubType.K_5M)
    bars = await client.get_cur_kline(US, 50, KLType.K_5M)
    df = await client.get_cur_kline_frame(US, 50, KLType.K_5M)
    assert tuple(df.columns) == CUR_KLINE_COLUMNS
    assert df["time_key"].to_list() == [b.time for b in bars]
    assert df["close"].to_list() == [b.close or 0.0 for b in bars]
    assert set(df["code"].to_list()) == {US}


async def test_rt_data_is_the_minute_fold(client: aiofutu.Client, server: sim.Simulator) -> None:
    await client.subscribe(HK, SubType.RT_DATA)
    seen = list(server.market.history(HK)) + _ticks_at(server, HK, 1, 4)
    points = await client.get_rt_data(HK)
    folded = _fold(server, HK, 1, seen)
    assert [p.time for p in points] == sorted(folded)
    cum_v = cum_t = 0.0
    for p in points:
        *_, c, v, t = folded[p.time]
        cum_v += v
        cum_t += t
        assert p.price == c and p.volume == v
        assert p.avg_price == pytest.approx(cum_t / cum_v, rel=1e-6)
    pytest.importorskip("polars")
    df = await client.get_rt_data_frame(HK)
    assert tuple(df.columns) == RT_COLUMNS
    assert df["cur_price"].to_list() == [p.price for p in points]


# ------------------------------------------------------------------------------- streams


async def _take(stream: aiofutu.SeriesStream, n: int) -> list:  # type: ignore[type-arg]
    out = []
    with anyio.fail_after(5):
        async for item in stream:
            out.append(item)
            if len(out) == n:
                break
    return out


def _check_series(updates: list, time_of) -> None:  # type: ignore[type-arg]
    """Every closed item repeats the open item just before it and precedes a newer one."""
    for i, u in enumerate(updates):
        if u.closed:
            assert i > 0 and not updates[i - 1].closed
            assert time_of(updates[i - 1]) == time_of(u)
            assert updates[i - 1] == u.model_copy(update={"closed": False})
            assert i + 1 == len(updates) or time_of(updates[i + 1]) > time_of(u)
        elif i and not updates[i - 1].closed:
            assert time_of(updates[i - 1]) == time_of(u)  # an update of the same open item


async def test_kline_stream_flags_open_and_closed_bars(
    client: aiofutu.Client, server: sim.Simulator
) -> None:
    async with (
        client.kline_stream(HK, ktype=KLType.K_1M) as every,
        client.kline_stream(HK, ktype=KLType.K_1M, closed_only=True) as closed,
    ):
        (first,) = await _take(every, 1)  # the first push: the open bar
        assert isinstance(first, KLineUpdate) and not first.closed
        assert first.kl_type is KLType.K_1M and first.au_type is AuType.QFQ
        _ticks_at(server, HK, 0, 2)  # the open bar fills
        _ticks_at(server, HK, 1, 2)  # a new minute closes it
        _ticks_at(server, HK, 2, 2)
        got = [first]
        with anyio.fail_after(5):
            while sum(u.closed for u in got) < 2 or every.pending:
                got += await _take(every, 1)
        _check_series(got, lambda u: u.bar.time)
        assert not got[-1].closed and got[-1].bar.time > first.bar.time
        folded = _fold(server, HK, 1)
        for u in got[1:]:
            assert _same(_ohlcv(u.bar), folded[u.bar.time])  # the pushed bar is the fold
        once = await _take(closed, 2)
        assert [u.closed for u in once] == [True, True]
        assert once == [u for u in got if u.closed]
        await anyio.sleep(0.1)
        assert closed.pending == 0 and every.pending == 0
    assert server.requests[aiofutu.ProtoId.QOT_SUB] == 1  # one subscription for both


async def test_kline_streams_are_keyed_by_period(
    client: aiofutu.Client, server: sim.Simulator
) -> None:
    async with (
        client.kline_stream(HK, US, ktype="K_1M", is_first_push=False) as m1,
        client.kline_stream(HK, ktype=KLType.K_DAY, is_first_push=False) as day,
    ):
        _ticks_at(server, US, 0, 1)
        seen = list(server.market.history(HK)) + _ticks_at(server, HK, 0, 1)
        a = await _take(m1, 2)
        (d,) = await _take(day, 1)
        assert [u.code for u in a] == [US, HK]
        assert d.kl_type is KLType.K_DAY and d.bar.time.endswith("00:00:00")
        assert d.bar.volume == _fold(server, HK, 2, seen)[d.bar.time][4]
    subs = client.subscriptions()
    assert subs[HK] == {SubType.K_1M, SubType.K_DAY} and subs[US] == {SubType.K_1M}


async def test_rt_stream_upserts_by_minute(client: aiofutu.Client, server: sim.Simulator) -> None:
    async with client.rt_stream(HK) as points:
        (first,) = await _take(points, 1)
        assert isinstance(first, RTUpdate) and not first.closed
        _ticks_at(server, HK, 0, 1)
        _ticks_at(server, HK, 1, 1)
        got = [first]
        with anyio.fail_after(5):
            while sum(u.closed for u in got) < 1 or points.pending:
                got += await _take(points, 1)
        _check_series(got, lambda u: u.point.time)
        assert got[-1].point.price == server.market.history(HK)[-1].price
        folded = _fold(server, HK, 1)
        for u in got:
            assert u.point.price == folded[u.point.time][3]
        assert got[-1].point.volume == folded[got[-1].point.time][4]
        (row,) = client.stats()["streams"]
        assert row["kind"] == "rt" and row["received"] == points.received


async def test_drop_oldest_keeps_the_newest_bars(
    client: aiofutu.Client, server: sim.Simulator
) -> None:
    async with client.kline_stream(
        HK, closed_only=True, buffer=3, overflow="drop_oldest", is_first_push=False
    ) as bars:
        for minute in range(8):
            _ticks_at(server, HK, minute, 1)
        with anyio.fail_after(5):
            while bars.received < 7:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        kept = bars.drain()
        assert bars.dropped == 4 and len(kept) == 3
        (row,) = client.stats()["streams"]
        assert row["kind"] == "kline" and row["dropped"] == 4
        assert [u.bar.time for u in kept] == sorted(u.bar.time for u in kept)


# ------------------------------------------------------------------------------- reconnect


def _policy() -> ReconnectPolicy:
    return ReconnectPolicy(initial_delay=0.2, max_delay=0.2, jitter=0.0)


async def _reconnected(client: aiofutu.Client) -> None:
    with anyio.fail_after(10):
        while client.reconnects == 0:  # noqa: ASYNC110
            await anyio.sleep(0.01)
        await client.wait_ready(timeout=10)


@pytest.mark.parametrize("kind", ["kline", "rt"])
async def test_reconnect_backfills_what_closed_while_down(kind: str) -> None:
    async with sim.serve(port=0, tick_rate=0, codes=(HK,), unsub_min_age=0) as server:
        async with aiofutu.connect(
            "127.0.0.1", server.port, reconnect=_policy(), timeout=5
        ) as client:
            stream = (
                client.kline_stream(HK, closed_only=True)
                if kind == "kline"
                else client.rt_stream(HK, closed_only=True)
            )
            async with stream:
                _ticks_at(server, HK, 1, 2)
                _ticks_at(server, HK, 2, 2)
                got = await _take(stream, 2)  # the open bar at subscribing, then minute 1
                await server.drop_connections()
                for minute in range(3, 9):  # bars close while the link is down
                    _ticks_at(server, HK, minute, 2)
                await _reconnected(client)
                _ticks_at(server, HK, 9, 1)  # live again: closes minute 8
                got += await _take(stream, 7)  # minutes 2..8
                await anyio.sleep(0.2)
                assert stream.pending == 0  # nothing twice
                assert stream.gaps == []
    times = [u.bar.time if kind == "kline" else u.point.time for u in got]
    assert times == sorted(set(times)) and len(times) == 9
    folded = _fold(server, HK, 1)
    assert times[1:] == sorted(folded)[-9:-1]  # every minute once, in order, up to the open one
    if kind == "kline":
        for u in got[1:]:
            assert _same(_ohlcv(u.bar), folded[u.bar.time])


async def test_reconnect_beyond_1000_bars_reports_a_gap() -> None:
    async with sim.serve(port=0, tick_rate=0, codes=(HK,), unsub_min_age=0) as server:
        async with aiofutu.connect(
            "127.0.0.1", server.port, reconnect=_policy(), timeout=5
        ) as client:
            gaps: list[aiofutu.SeriesGap] = []
            async with client.kline_stream(
                HK, closed_only=True, buffer=5_000, on_gap=gaps.append
            ) as stream:
                _ticks_at(server, HK, 1, 1)
                (before,) = await _take(stream, 1)
                await server.drop_connections()
                sec = server.market.security(HK)
                base = time.time()
                for minute in range(2, 1200):  # 1198 minutes close while down
                    server.series.on_ticks(sec, sec.generate(1, now=base + 60 * minute))
                await _reconnected(client)
                with anyio.fail_after(5):
                    while stream.pending < 1000:  # noqa: ASYNC110
                        await anyio.sleep(0.01)
                after = stream.drain()
    assert len(gaps) == 1 and stream.gaps == gaps
    gap = gaps[0]
    assert gap.code == HK and gap.after < gap.before
    times = [u.bar.time for u in after]
    assert times[0] == gap.after > before.bar.time  # the open bar closes first (last values)
    assert times[1] == gap.before
    assert times == sorted(set(times)) and len(times) == 1000  # 999 closed of the 1000 returned


async def test_each_autype_gets_its_own_pushes(
    client: aiofutu.Client, server: sim.Simulator
) -> None:
    async with (
        client.kline_stream(HK, is_first_push=False) as qfq,
        client.kline_stream(HK, autype=AuType.HFQ, is_first_push=False) as hfq,
        client.kline_stream(HK, autype="None", is_first_push=False) as raw,
    ):
        record = client._book.get(HK, SubType.K_1M)
        assert record is not None and record.rehab_types == (0, 1, 2)
        (session,) = server.sessions()
        assert session.rehab[(HK, SubType.K_1M.wire)] == (0, 1, 2)
        _ticks_at(server, HK, 0, 1)
        (a,) = await _take(qfq, 1)
        (b,) = await _take(hfq, 1)
        (c,) = await _take(raw, 1)
    assert (a.au_type, b.au_type, c.au_type) == (AuType.QFQ, AuType.HFQ, AuType.NONE)
    assert a.bar == b.bar == c.bar  # the simulator adjusts nothing


async def test_rehab_types_survive_a_reconnect() -> None:
    async with sim.serve(port=0, tick_rate=0, codes=(HK,), unsub_min_age=0) as server:
        async with aiofutu.connect(
            "127.0.0.1", server.port, reconnect=_policy(), timeout=5
        ) as client:
            async with client.kline_stream(HK, autype=AuType.HFQ, closed_only=True) as hfq:
                _ticks_at(server, HK, 1, 1)
                (first,) = await _take(hfq, 1)
                await server.drop_connections()
                _ticks_at(server, HK, 2, 1)
                await _reconnected(client)
                _ticks_at(server, HK, 3, 1)
                got = await _take(hfq, 2)
                (session,) = server.sessions()
                assert session.rehab[(HK, SubType.K_1M.wire)] == (1, 2)
    assert all(u.au_type is AuType.HFQ for u in [first, *got])
    assert first.bar.time < got[0].bar.time < got[1].bar.time

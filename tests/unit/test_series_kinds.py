"""Series kinds in memory: request validation, decoders' null rules, the simulator's builders
(bars are the fold of their ticks, history respects weekends/sessions/max_count, paging covers
a range exactly once, determinism) and the pure rate/quota models."""

from __future__ import annotations

import datetime as _dt
import random
from dataclasses import dataclass

import pytest

from aiofutu._pb import qot_common_pb2, qot_get_kl_pb2, qot_update_kl_pb2
from aiofutu.enums import Market
from aiofutu.errors import ConfigurationError, ProtocolError
from aiofutu.quotes import history, kline, rt
from aiofutu.sim.kinds import history as sim_history
from aiofutu.sim.kinds import kline as sim_kline
from aiofutu.sim.kinds import rt as sim_rt
from aiofutu.sim.kinds.basic import DayFold


@dataclass
class Tick:
    time: str
    price: float
    volume: int
    turnover: float
    timestamp: float


def _ticks(seed: int, n: int = 400, day: str = "2024-01-02") -> list[Tick]:
    rng = random.Random(seed)
    t = _dt.datetime.fromisoformat(f"{day} 09:30:00")
    price = 300.0
    out = []
    for i in range(n):
        t += _dt.timedelta(seconds=rng.randint(1, 40))
        price = round(max(price + rng.choice([-0.2, 0, 0.2]), 1), 2)
        vol = rng.randint(1, 50) * 100
        out.append(Tick(t.strftime("%Y-%m-%d %H:%M:%S"), price, vol, price * vol, float(i)))
    return out


# ------------------------------------------------------------------ client: 3006 / 3007


def test_kl_request_validates() -> None:
    req = kline.get_kl_request("HK.00700", 100, "K_1M", "hfq")
    assert (req.c2s.klType, req.c2s.rehabType, req.c2s.reqNum) == (1, 2, 100)
    assert kline.get_kl_request("US.AAPL", 1000, kline.KLType.K_240M).c2s.klType == 15
    for num in (0, 1001, -1, 2.5, True):
        with pytest.raises(ConfigurationError):
            kline.get_kl_request("HK.00700", num)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        kline.get_kl_request("HK.00700", 10, "K_2M")
    with pytest.raises(ConfigurationError):
        kline.get_kl_request("HK.00700", 10, "N/A")
    with pytest.raises(ConfigurationError):
        kline.get_kl_request("HK.00700", 10, autype=None)
    with pytest.raises(ConfigurationError):
        kline.get_kl_request("HK.00700", 10, autype="forward")


def test_push_decoder_is_not_the_reply_decoder() -> None:
    push = qot_update_kl_pb2.S2C(rehabType=1, klType=6)
    push.security.market, push.security.code = 1, "00700"
    push.klList.add(time="2024-01-02 09:35:00", isBlank=False, closePrice=1.5)
    series = kline.kline_push_from_s2c(push)
    assert (series.code, series.kl_type, series.au_type) == (
        "HK.00700",
        kline.KLType.K_5M,
        kline.AuType.QFQ,
    )
    assert series.bars[0].close == 1.5 and series.bars[0].open is None
    push.klType = 99
    with pytest.raises(ProtocolError):
        kline.kline_push_from_s2c(push)


def test_cur_kline_frame_zero_fills_and_keeps_blank() -> None:
    pytest.importorskip("polars")
    s2c = qot_get_kl_pb2.S2C()
    s2c.security.market, s2c.security.code = 11, "AAPL"
    s2c.klList.add(time="2024-01-02 00:00:00", isBlank=True)
    s2c.klList.add(time="2024-01-03 00:00:00", isBlank=False, closePrice=2.0, volume=7)
    df = kline.klines_to_polars(kline.klines_from_s2c(s2c))
    assert tuple(df.columns) == kline.CUR_KLINE_COLUMNS
    assert df["close"].to_list() == [0.0, 2.0] and df["volume"].to_list() == [0.0, 7.0]
    assert df["name"].to_list() == ["N/A", "N/A"]


# ------------------------------------------------------------------ client: 3103 / 3104


def test_history_dates_follow_the_sdk() -> None:
    q = history.make_history_query("HK.00700", "2024-01-05", None)
    assert (q.begin, q.end) == ("2024-01-05 00:00:00", "2025-01-04 23:59:59")
    q = history.make_history_query("HK.00700", None, "2024-01-05 10:00:00")
    assert (q.begin, q.end) == ("2023-01-05 00:00:00", "2024-01-05 10:00:00")
    q = history.make_history_query("HK.00700", today=_dt.date(2024, 6, 30))
    assert (q.begin, q.end) == ("2023-07-01 00:00:00", "2024-06-30 23:59:59")
    assert q.flag == 1023 and q.fields == history.ALL_FIELDS


def test_history_typed_errors() -> None:
    bad = [
        {"start": "2024-02-01", "end": "2024-01-01"},
        {"start": "2024/01/01"},
        {"start": "2024-01-01 25:00:00"},
        {"ktype": "K_7M"},
        {"autype": "forward"},
        {"fields": ["bid"]},
        {"fields": []},
        {"ktype": "K_DAY", "extended_time": True},
        {"ktype": "K_1M", "session": "OVERNIGHT"},
    ]
    for kw in bad:
        with pytest.raises(history.InvalidHistoryRequest):
            history.make_history_query("US.AAPL", **kw)  # type: ignore[arg-type]
    q = history.make_history_query("US.AAPL", "2024-01-01", "2024-02-01")
    for count in (0, -5, 1.5, True):
        with pytest.raises(history.InvalidHistoryRequest):
            history.history_request(q, count)  # type: ignore[arg-type]
    with pytest.raises(history.InvalidHistoryRequest):
        history.history_request(q, 10, b"")
    with pytest.raises(history.InvalidHistoryRequest):
        history.history_request(q, 10, "abc")  # type: ignore[arg-type]


def test_page_key_from_another_query_is_refused() -> None:
    q1 = history.make_history_query("HK.00700", "2024-01-01", "2024-02-01", ktype="K_1M")
    q2 = history.make_history_query("HK.09988", "2024-01-01", "2024-02-01", ktype="K_1M")
    key = history.PageKey(b"\x00\xffk", q1)
    req = history.history_request(q1, 50, key)
    assert req.c2s.nextReqKey == b"\x00\xffk" and req.c2s.maxAckKLNum == 50
    with pytest.raises(history.PageKeyMismatch):
        history.history_request(q2, 50, key)
    assert history.history_request(q1, None).c2s.maxAckKLNum == 1000
    assert history.history_request(q1, 5000).c2s.maxAckKLNum == 1000


def test_history_missing_field_is_null_not_the_previous_bars() -> None:
    pytest.importorskip("polars")
    bars = [
        kline.kline_from_pb(
            qot_common_pb2.KLine(time="2024-01-02 00:00:00", isBlank=False, pe=9.0)
        ),
        kline.kline_from_pb(qot_common_pb2.KLine(time="2024-01-03 00:00:00", isBlank=True)),
        kline.kline_from_pb(qot_common_pb2.KLine(time="2024-01-04 00:00:00", isBlank=False)),
    ]
    df = history.history_to_polars("HK.00700", "X", bars, ["time_key", "pe_ratio", "pe_ratio"])
    assert tuple(df.columns) == ("code", "name", "time_key", "pe_ratio")
    assert df["pe_ratio"].to_list() == [9.0, None]  # blank skipped; no carry-over


# ------------------------------------------------------------------ sim: bars from ticks


@pytest.mark.parametrize("seed", range(5))
def test_one_minute_bars_are_the_fold_of_their_ticks(seed: int) -> None:
    ticks = _ticks(seed)
    bars = sim_kline.bars_of(1, ticks, prev_close=299.0)
    for bar in bars:
        mine = [t for t in ticks if sim_kline.bar_time(1, t.time) == bar.time]
        assert mine and bar.openPrice == mine[0].price and bar.closePrice == mine[-1].price
        assert bar.highPrice == max(t.price for t in mine)
        assert bar.lowPrice == min(t.price for t in mine)
        assert bar.volume == sum(t.volume for t in mine)
        assert bar.turnover == pytest.approx(sum(t.turnover for t in mine))
    assert sum(b.volume for b in bars) == sum(t.volume for t in ticks)
    assert [b.lastClosePrice for b in bars[1:]] == [b.closePrice for b in bars[:-1]]


def test_day_bar_is_the_fold_of_the_day() -> None:
    ticks = _ticks(7)
    (day,) = sim_kline.bars_of(2, ticks, prev_close=299.0)
    fold = DayFold.from_ticks(ticks)
    assert (day.openPrice, day.highPrice, day.lowPrice, day.closePrice) == (
        fold.open,
        fold.high,
        fold.low,
        fold.last,
    )
    assert day.volume == fold.volume and day.time == "2024-01-02 00:00:00"


@pytest.mark.parametrize("kl_type", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15])
def test_every_period_folds_and_refolds(kl_type: int) -> None:
    ticks = _ticks(3, 600)
    b = sim_kline.KLineBuilder(kl_type, 299.0)
    closed_times = []
    for t in ticks:
        done, cur = b.add(t)
        if done is not None:
            closed_times.append(done.time)
            assert done.time < cur.time  # a new time closes the previous bar
    bars = b.bars()
    assert [x.time for x in bars[:-1]] == closed_times
    assert sum(x.volume for x in bars) == sum(t.volume for t in ticks)


def test_open_bar_is_repushed_while_it_fills() -> None:
    b = sim_kline.KLineBuilder(1, 10.0)
    t0 = Tick("2024-01-02 09:30:01", 10.0, 100, 1000.0, 0)
    t1 = Tick("2024-01-02 09:30:30", 10.2, 100, 1020.0, 1)
    t2 = Tick("2024-01-02 09:31:00", 10.1, 100, 1010.0, 2)
    assert b.add(t0)[0] is None
    done, cur = b.add(t1)
    assert done is None and cur.time == "2024-01-02 09:31:00" and cur.volume == 200
    done, cur = b.add(t2)
    assert done is not None and done.closePrice == 10.2 and cur.time == "2024-01-02 09:32:00"


def test_bar_times() -> None:
    assert sim_kline.bar_time(1, "2024-01-02 09:30:59.500") == "2024-01-02 09:31:00"
    assert sim_kline.bar_time(9, "2024-01-02 09:30:00") == "2024-01-02 10:00:00"
    assert sim_kline.bar_time(3, "2024-01-04 10:00:00") == "2024-01-01 00:00:00"
    assert sim_kline.bar_time(11, "2024-05-04 10:00:00") == "2024-04-01 00:00:00"
    assert sim_kline.bar_time(5, "2024-05-04 10:00:00") == "2024-01-01 00:00:00"


def test_rt_points_are_minute_last_price_and_vwap() -> None:
    ticks = _ticks(11)
    pts = sim_rt.rt_points(ticks, prev_close=299.0)
    cum_v = cum_t = 0.0
    for p in pts:
        mine = [t for t in ticks if sim_kline.bar_time(1, t.time) == p.time]
        cum_v += sum(t.volume for t in mine)
        cum_t += sum(t.turnover for t in mine)
        assert p.price == mine[-1].price and p.volume == sum(t.volume for t in mine)
        assert p.avgPrice == pytest.approx(cum_t / cum_v)
        assert p.minute == int(p.time[11:13]) * 60 + int(p.time[14:16])
    s2c = sim_rt.s2c(Market.HK, "00700", pts, "TENCENT")
    assert len(rt.rt_from_s2c(s2c).points) == len(pts)


# ------------------------------------------------------------------ sim: history


def test_history_daily_years_skip_weekends_and_are_deterministic() -> None:
    bars = list(
        sim_history.history_bars(
            1, Market.HK, "00700", 2, "2019-01-01 00:00:00", "2023-12-31 23:59:59"
        )
    )
    days = [_dt.date.fromisoformat(b.time[:10]) for b in bars]
    assert all(d.weekday() < 5 for d in days) and len(days) == len(set(days)) > 1200
    again = list(
        sim_history.history_bars(
            1, Market.HK, "00700", 2, "2021-03-01 00:00:00", "2021-03-31 23:59:59"
        )
    )
    assert again == [b for b in bars if b.time.startswith("2021-03")]
    assert all(b.low <= min(b.open, b.close) and b.high >= max(b.open, b.close) for b in bars)


def test_history_minutes_respect_sessions() -> None:
    bars = list(
        sim_history.history_bars(
            2, Market.SH, "600519", 1, "2024-01-05 00:00:00", "2024-01-08 23:59:59"
        )
    )
    assert {b.time[:10] for b in bars} == {"2024-01-05", "2024-01-08"}  # weekend skipped
    assert len(bars) == 2 * 240
    times = {b.time[11:16] for b in bars}
    assert "09:31" in times and "11:30" in times and "13:01" in times and "15:00" in times
    assert "12:00" not in times and "09:30" not in times


@pytest.mark.parametrize(
    ("kl_type", "count", "begin"),
    [(1, 333, "2024-01-10"), (2, 17, "2023-06-01"), (9, 40, "2023-12-01"), (3, 7, "2023-06-01")],
)
def test_paging_covers_the_range_exactly_once(kl_type: int, count: int, begin: str) -> None:
    args = (5, Market.US, "AAPL", kl_type, 1, f"{begin} 10:00:00", "2024-01-31 23:59:59")
    full = list(sim_history.history_bars(*args[:4], *args[5:]))
    got: list[sim_history.Bar] = []
    key = None
    while True:
        page, key = sim_history.history_page(*args, count, key)
        assert len(page) <= count
        got.extend(page)
        if key is None:
            break
    assert got == full
    page, key = sim_history.history_page(*args, None)
    assert page == full and key is None


def test_page_key_of_another_query_is_refused_by_the_sim() -> None:
    _, key = sim_history.history_page(
        1, Market.HK, "00700", 2, 1, "2024-01-01 00:00:00", "2024-06-01 00:00:00", 5
    )
    assert key is not None
    with pytest.raises(sim_history.BadPageKey):
        sim_history.history_page(
            1, Market.HK, "09988", 2, 1, "2024-01-01 00:00:00", "2024-06-01 00:00:00", 5, key
        )


def test_sim_page_decodes_with_the_client() -> None:
    query = history.make_history_query("HK.00700", "2024-01-01", "2024-03-01", "K_DAY")
    bars, key = sim_history.history_page(1, Market.HK, "00700", 2, 1, query.begin, query.end, 10)
    body = sim_history.page_reply_body(Market.HK, "00700", bars, key, "TENCENT")
    from aiofutu._pb import qot_request_history_kl_pb2

    page = history.history_page_from_s2c(
        qot_request_history_kl_pb2.Response.FromString(body).s2c, query
    )
    assert len(page.bars) == 10 and page.next_key is not None and page.next_key.query == query
    assert history.history_request(query, 10, page.next_key).c2s.nextReqKey == key


def test_first_page_limiter_slides() -> None:
    lim = sim_history.FirstPageLimiter()
    assert all(lim.allow(float(i) / 10) for i in range(60))
    assert not lim.allow(10.0)
    assert lim.allow(10.0, first_page=False)
    assert lim.allow(30.01)  # the first request has left the window


def test_quota_book_charges_distinct_securities_per_window() -> None:
    book = sim_history.QuotaBook(total=2, window_days=30)
    assert book.charge(Market.HK, "00700", 0.0)
    assert book.charge(Market.HK, "00700", 10.0)  # again: free
    assert book.charge(Market.US, "AAPL", 20.0)
    assert not book.charge(Market.US, "TSLA", 30.0)
    assert book.used(30.0) == 2
    assert book.charge(Market.US, "TSLA", 30 * 86_400 + 1.0)  # HK.00700 expired


# ------------------------------------------------------------------ 3223 market state


def test_market_state_request_and_sim_reply() -> None:
    from aiofutu._pb import qot_get_market_state_pb2
    from aiofutu.quotes import market
    from aiofutu.sim.kinds import market_state

    req = market.get_market_state_request("HK.00700,US.AAPL,HK.00700")
    assert [s.code for s in req.c2s.securityList] == ["00700", "AAPL"]
    with pytest.raises(ConfigurationError):
        market.get_market_state_request([])
    with pytest.raises(ConfigurationError):
        market.get_market_state_request([f"HK.{i:05d}" for i in range(401)])
    states = {"marketHK": 3, "marketUS": 8}
    body = market_state.get_reply_body(
        [(Market.HK, "00700", "TENCENT"), (Market.US, "AAPL", "APPLE"), (Market.SG, "D05", "DBS")],
        states,
    )
    infos = market.market_states_from_s2c(qot_get_market_state_pb2.Response.FromString(body).s2c)
    assert [i.state for i in infos] == [
        market.MarketState.MORNING,
        market.MarketState.PRE_MARKET_BEGIN,
        market.MarketState.CLOSED,
    ]
    assert (
        market.market_states_from_s2c(
            qot_get_market_state_pb2.S2C(
                marketInfoList=[
                    {"security": {"market": 1, "code": "00700"}, "name": "", "marketState": 12}
                ]
            )
        )[0].state
        is market.MarketState.NA
    )

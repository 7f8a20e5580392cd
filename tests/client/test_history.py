"""History K-lines, their quota and market state over real sockets against the simulator."""

from __future__ import annotations

import datetime as _dt

import anyio
import pytest

import aiofutu
from aiofutu import sim
from aiofutu.quotes.history import InvalidHistoryRequest, PageKey, PageKeyMismatch
from aiofutu.quotes.kline import KLType
from aiofutu.quotes.market import MarketState
from aiofutu.sim.kinds.history import history_bars

pytestmark = pytest.mark.anyio
#: every test here runs over TCP and over the WebSocket gateway (tests/client/conftest.py)
BOTH_TRANSPORTS = True

CODE = "HK.00700"
SEED = 7  # tests/client/conftest.py


def _expected(code: str, kl_type: int, begin: str, end: str) -> list[str]:
    market, local = aiofutu.parse_code(code)
    return [b.time for b in history_bars(SEED, market, local, kl_type, begin, end)]


async def test_daily_range_in_one_call(client: aiofutu.Client) -> None:
    page = await client.request_history_kline(CODE, "2024-01-01", "2024-03-31", max_count=None)
    times = [b.time for b in page.bars]
    assert times == _expected(CODE, 2, "2024-01-01 00:00:00", "2024-03-31 23:59:59")
    assert len(times) == 65  # weekdays of Q1 2024
    assert page.next_key is None
    assert page.name == "Tencent"
    assert page.code == CODE
    for b in page.bars:
        assert _dt.date.fromisoformat(b.time[:10]).weekday() < 5
        assert b.low is not None and b.high is not None and b.open is not None
        assert b.low <= b.open <= b.high
        assert b.pe is None and b.turnover_rate is None  # the simulator leaves them out


async def test_paging_with_max_count_and_the_key(client: aiofutu.Client) -> None:
    args = (CODE, "2024-01-02", "2024-01-05")
    whole = await client.request_history_kline(*args, ktype="K_1M", max_count=None)
    assert len(whole.bars) == 4 * 330  # HK: 150 + 180 one-minute bars a day
    first = await client.request_history_kline(*args, ktype="K_1M", max_count=500)
    assert len(first.bars) == 500
    assert isinstance(first.next_key, PageKey)
    rest = await client.request_history_kline(
        *args, ktype="K_1M", max_count=None, page_req_key=first.next_key
    )
    assert rest.next_key is None
    assert [b.time for b in first.bars + rest.bars] == [b.time for b in whole.bars]
    assert first.bars[0].time == "2024-01-02 09:31:00"
    # a key of another query is refused before anything is sent
    sent = client.stats()["bytes_out"]
    with pytest.raises(PageKeyMismatch):
        await client.request_history_kline(
            "US.AAPL", "2024-01-02", "2024-01-05", ktype="K_1M", page_req_key=first.next_key
        )
    assert client.stats()["bytes_out"] == sent


async def test_history_kline_iterates_pages(client: aiofutu.Client) -> None:
    pages = client.history_kline(CODE, "2024-01-02", "2024-01-03", ktype=KLType.K_5M, page_size=50)
    got = [p async for p in pages]
    sizes = [len(p.bars) for p in got]
    assert sum(sizes) == 2 * 66  # 330 minutes / 5
    assert sizes[:-1] == [50] * (len(sizes) - 1)
    assert all(p.next_key is not None for p in got[:-1]) and got[-1].next_key is None
    assert pages.pages == len(got) and pages.bars == 132


async def test_frame_of_a_range(client: aiofutu.Client) -> None:
    pl = pytest.importorskip("polars")
    df = await client.request_history_kline_frame(
        CODE, "2024-01-02", "2024-01-12", ktype="K_1M", fields=["close", "time_key", "volume"]
    )
    assert df.columns == ["code", "name", "close", "time_key", "volume"]
    assert df.height == 9 * 330
    assert df["time_key"].to_list() == _expected(
        CODE, 1, "2024-01-02 00:00:00", "2024-01-12 23:59:59"
    )
    assert df.schema["close"] == pl.Float64
    page = await client.request_history_kline(
        CODE, "2024-01-02", "2024-01-12", ktype="K_1M", max_count=None
    )
    assert df["close"].to_list() == [b.close for b in page.bars]
    assert df["volume"].to_list() == [b.volume for b in page.bars]
    full = await client.request_history_kline_frame(CODE, "2024-01-02", "2024-01-31")
    assert full.columns[:3] == ["code", "name", "time_key"]
    assert full["pe_ratio"].null_count() == full.height  # left out: null, never carried over
    head = await client.request_history_kline_frame(CODE, "2024-01-02", "2024-12-31", max_count=7)
    assert head.height == 7


async def test_only_the_asked_fields_travel(client: aiofutu.Client) -> None:
    page = await client.request_history_kline(
        CODE, "2024-01-02", "2024-01-10", fields=["time_key", "close"]
    )
    assert page.bars and all(b.close is not None for b in page.bars)
    assert all(b.open is None and b.volume is None for b in page.bars)


async def test_bad_input_is_refused_before_sending(client: aiofutu.Client) -> None:
    sent = client.stats()["bytes_out"]
    bad = [
        {"ktype": "K_2M"},
        {"autype": "sideways"},
        {"max_count": 0},
        {"start": "2024-02-01", "end": "2024-01-01"},
        {"start": "2024-13-01"},
        {"start": "yesterday"},
        {"fields": ["open", "colour"]},
    ]
    for kwargs in bad:
        with pytest.raises(InvalidHistoryRequest):
            await client.request_history_kline(CODE, **kwargs)  # type: ignore[arg-type]
        with pytest.raises(InvalidHistoryRequest):
            await client.request_history_kline_frame(CODE, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidHistoryRequest):
        client.history_kline(CODE, page_size=1001)
    with pytest.raises(aiofutu.InvalidCode):
        await client.request_history_kline("00700")
    assert client.stats()["bytes_out"] == sent


async def test_unknown_security_is_opend_s_refusal(client: aiofutu.Client) -> None:
    with pytest.raises(aiofutu.OpenDError, match=r"unknown stock HK\.99999"):
        await client.request_history_kline("HK.99999", "2024-01-01", "2024-01-31")


async def test_raw_key_from_elsewhere_is_refused_by_the_server(client: aiofutu.Client) -> None:
    with pytest.raises(aiofutu.OpenDError, match="nextReqKey"):
        await client.request_history_kline(CODE, "2024-01-01", "2024-01-31", page_req_key=b"x" * 27)


async def test_quota(client: aiofutu.Client, server: sim.Simulator) -> None:
    q = await client.get_history_kl_quota()
    assert (q.used, q.remain, q.detail) == (0, 100, ())
    await client.request_history_kline(CODE, "2024-01-01", "2024-01-31")
    await client.request_history_kline(CODE, "2024-01-01", "2024-01-31", ktype="K_WEEK")
    await client.request_history_kline("US.AAPL", "2024-01-01", "2024-01-31")
    q = await client.get_history_kl_quota(detail=True)
    assert (q.used, q.remain) == (2, 98)  # per security, not per period
    assert [d.code for d in q.detail] == [CODE, "US.AAPL"]
    assert q.detail[0].name == "Tencent"
    assert q.detail[0].request_timestamp is not None
    _dt.datetime.strptime(q.detail[0].request_time, "%Y-%m-%d %H:%M:%S")


@pytest.mark.opend(history_quota=1)
async def test_exhausted_quota_is_a_typed_error(client: aiofutu.Client) -> None:
    await client.request_history_kline(CODE, "2024-01-01", "2024-01-31")
    with pytest.raises(aiofutu.HistoryQuotaExhausted) as info:
        await client.request_history_kline("US.AAPL", "2024-01-01", "2024-01-31")
    err = info.value
    assert (err.code, err.used, err.remain) == ("US.AAPL", 1, 0)
    assert err.frees_at is not None
    assert err.frees_at > _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(days=29)
    assert "quota exhausted" in str(err) and "frees up" in str(err)
    assert isinstance(err, aiofutu.OpenDError)
    # the security already charged is still free to request
    await client.request_history_kline(CODE, "2023-01-01", "2023-01-31", ktype="K_WEEK")


async def test_market_state(client: aiofutu.Client) -> None:
    infos = await client.get_market_state(["HK.00700", "US.AAPL", "HK.00700"])
    assert [i.code for i in infos] == ["HK.00700", "US.AAPL"]
    assert infos[0].name == "Tencent"
    # the simulator's default market hours are "open": every market trades
    assert all(i.state is not MarketState.NA for i in infos)
    state = await client.get_global_state()
    assert infos[0].state_number == state["marketHK"]
    assert infos[1].state_number == state["marketUS"]
    same = await client.get_market_state("HK.00700,US.AAPL")
    assert same == infos
    pytest.importorskip("polars")
    df = await client.get_market_state_frame(["US.AAPL"])
    assert df.columns == ["code", "stock_name", "market_state"]
    assert df.row(0) == ("US.AAPL", infos[1].name, str(infos[1].state))


@pytest.mark.opend(market_hours="closed")
async def test_market_state_closed(client: aiofutu.Client) -> None:
    (info,) = await client.get_market_state("SH.600519")
    assert info.state is MarketState.CLOSED


async def test_market_state_bad_input(client: aiofutu.Client) -> None:
    with pytest.raises(aiofutu.ConfigurationError):
        await client.get_market_state([])
    with pytest.raises(aiofutu.InvalidCode):
        await client.get_market_state(["AAPL"])
    with pytest.raises(aiofutu.OpenDError, match="unknown stock"):
        await client.get_market_state(["HK.99999"])


# ------------------------------------------------------------------ rate limits


@pytest.mark.opend(rate_window=1.0)
async def test_client_limiter_waits_where_the_simulator_would_refuse(server: sim.Simulator) -> None:
    async with aiofutu.connect(server.host, server.port, rate_limits={3223: (10, 1.0)}) as c:
        t0 = anyio.current_time()
        async with anyio.create_task_group() as tg:
            for _ in range(12):
                tg.start_soon(c.get_market_state, "HK.00700")
        took = anyio.current_time() - t0
        assert took >= 1.0  # the 11th waited for the window
        stats = c.stats()["rate_limit"]
        assert stats["waits"] == 2 and stats["wait_seconds"] >= 1.0
        assert stats["last_wait_seconds"] > 0.5
    assert server.limits.refused[3223] == 0
    assert server.requests[3223] == 12
    # without the limiter the simulator refuses the 11th, as OpenD does
    async with aiofutu.connect(server.host, server.port, rate_limits=False) as c:
        await anyio.sleep(1.3)
        for _ in range(10):
            await c.get_market_state("HK.00700")
        with pytest.raises(aiofutu.OpenDError, match="request too frequent"):
            await c.get_market_state("HK.00700")
        assert c.stats()["rate_limit"]["waits"] == 0
    assert server.limits.refused[3223] == 1


@pytest.mark.opend(rate_window=1.0)
async def test_later_history_pages_are_not_limited(server: sim.Simulator) -> None:
    async with aiofutu.connect(server.host, server.port, rate_limits={3103: (2, 1.0)}) as c:
        page = await c.request_history_kline(
            CODE, "2024-01-02", "2024-01-12", ktype="K_1M", max_count=None
        )
        assert len(page.bars) == 9 * 330  # three pages, one first page
        await c.request_history_kline(CODE, "2024-01-02", "2024-01-12")
        assert c.stats()["rate_limit"]["waits"] == 0
        with pytest.raises(aiofutu.RateLimited):
            await c.request_history_kline(CODE, "2024-02-01", "2024-02-12", timeout=0.2)
        await c.request_history_kline(CODE, "2024-02-01", "2024-02-12")  # waits, then goes
        assert c.stats()["rate_limit"]["waits"] == 1


@pytest.mark.opend(rate_window=60.0)
async def test_the_simulator_enforces_by_default(server: sim.Simulator) -> None:
    assert server.config.rate_limits
    async with aiofutu.connect(server.host, server.port) as c:
        for _ in range(10):
            await c.get_market_state("US.AAPL")
        with pytest.raises(aiofutu.RateLimited, match="10 requests of proto_id=3223 per 30s"):
            await c.get_market_state("US.AAPL", timeout=1)
    assert server.limits.refused[3223] == 0


async def test_a_long_intraday_range_is_fetched_in_parts(
    client: aiofutu.Client, server: sim.Simulator
) -> None:
    pytest.importorskip("polars")
    args = (CODE, "2024-01-01", "2024-03-31")
    before = server.requests[3103]
    one = await client.request_history_kline_frame(*args, ktype="K_15M", concurrency=1)
    sequential = server.requests[3103] - before
    four = await client.request_history_kline_frame(*args, ktype="K_15M", concurrency=4)
    assert four.equals(one)
    assert one["time_key"].to_list() == _expected(
        CODE, 7, "2024-01-01 00:00:00", "2024-03-31 23:59:59"
    )
    assert one["time_key"].is_unique().all()
    # four parts: four first pages (and a few more pages than one sequence needs)
    assert server.requests[3103] - before - sequential >= 4
    # a daily range is never split (its bars could straddle the cuts)
    daily = await client.request_history_kline_frame(CODE, "2020-01-01", "2024-01-01")
    assert daily["time_key"].is_unique().all() and daily.height > 1000


async def test_a_failing_part_raises_its_own_error(client: aiofutu.Client) -> None:
    pytest.importorskip("polars")
    with pytest.raises(aiofutu.OpenDError, match="unknown stock"):
        await client.request_history_kline_frame(
            "HK.99999", "2024-01-01", "2024-06-30", ktype="K_1M"
        )
    with pytest.raises(InvalidHistoryRequest):
        await client.request_history_kline_frame(CODE, concurrency=0)

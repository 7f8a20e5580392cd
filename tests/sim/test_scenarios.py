"""Each simulator scenario, seen through the aiofutu client: what a bot experiences under it."""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import anyio
import pytest

import aiofutu
from aiofutu import Ticker, sim
from aiofutu._pb import qot_common_pb2, qot_get_ticker_pb2
from aiofutu.enums import Market
from aiofutu.sim._scenarios import SCENARIO_HELP

pytestmark = pytest.mark.anyio

HK = "HK.00700"
US = "US.AAPL"


async def _take(stream: aiofutu.TickerStream, n: int, timeout: float = 5.0) -> list[Ticker]:
    out: list[Ticker] = []
    with anyio.fail_after(timeout):
        async for tick in stream:
            out.append(tick)
            if len(out) == n:
                break
    return out


def _seqs(ticks: list[Ticker] | list[qot_common_pb2.Ticker]) -> list[int]:
    return [t.sequence for t in ticks]


# ---- presets -------------------------------------------------------------------------------


def test_scenario_presets_fill_defaults_only() -> None:
    assert set(SCENARIO_HELP) == set(sim.SCENARIOS)
    assert sim.SimConfig(scenario="gaps").gap_every == 20
    assert sim.SimConfig(scenario="gaps", gap_every=3).gap_every == 3
    assert sim.SimConfig(scenario="quota").sub_quota == 0
    assert sim.SimConfig(scenario="closed").market_hours == "closed"
    assert sim.SimConfig(scenario="lenient").unsub_min_age == 0
    assert sim.SimConfig(scenario="drop").changed() == {
        "scenario": "drop",
        "drop_after_frames": 200,
    }
    with pytest.raises(ValueError, match="unknown scenario 'nope'; choose one of: steady"):
        sim.SimConfig(scenario="nope")
    with pytest.raises(ValueError, match="market_hours"):
        sim.SimConfig(market_hours="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="drop_after_frames must be >= 0"):
        sim.SimConfig(drop_after_frames=-1)


@pytest.mark.opend(scenario="closed", tick_rate=100)
async def test_opend_marker_configures_the_fixture(
    opend: sim.Simulator, client: aiofutu.Client
) -> None:
    assert opend.market_hours == "closed"
    assert opend.config.tick_rate == 100
    assert client.connected


# ---- steady flow and bursts ----------------------------------------------------------------


async def test_steady_flow_is_an_unbroken_tape() -> None:
    async with (
        sim.serve(tick_rate=100, codes=(HK,)) as server,
        aiofutu.connect(server.host, server.port) as client,
        client.ticker_stream(HK, is_first_push=False) as ticks,
    ):
        got = await _take(ticks, 10)
    counters = [t.sequence & 0xFFFFFFFF for t in got]
    assert counters == list(range(counters[0], counters[0] + 10))
    assert ticks.gaps == []


async def test_burst_after_push_registration() -> None:
    async with (
        sim.serve(tick_rate=0, scenario="burst", burst=300, burst_per_push=10) as server,
        aiofutu.connect(server.host, server.port) as client,
    ):
        async with client.ticker_stream(HK, is_first_push=False) as ticks:
            got = await _take(ticks, 300)
        assert _seqs(got) == _seqs(server.market.history(HK)[-300:])
        # Already registered on this connection: a second stream does not set off another burst.
        async with client.ticker_stream(HK, is_first_push=False) as again:
            await anyio.sleep(0.1)
            assert again.pending == 0
        # A new connection's registration does.
        async with (
            aiofutu.connect(server.host, server.port) as other,
            other.ticker_stream(HK, is_first_push=False) as more,
        ):
            assert len(await _take(more, 300)) == 300


# ---- market hours --------------------------------------------------------------------------


async def test_closed_market_has_no_ticks_until_it_opens() -> None:
    async with (
        sim.serve(tick_rate=200, scenario="closed", codes=(HK,)) as server,
        aiofutu.connect(server.host, server.port) as client,
        client.ticker_stream(HK, is_first_push=False) as ticks,
    ):
        state = await client.get_global_state()
        assert state["marketHK"] == state["marketUS"] == 6  # QotMarketState_Closed
        await anyio.sleep(0.2)
        assert ticks.received == 0
        server.market_hours = "open"
        assert len(await _take(ticks, 5)) == 5
        state = await client.get_global_state()
        assert state["marketHK"] == 5  # Afternoon: trading


async def test_real_hours_tick_only_markets_in_session() -> None:
    # HK and US sessions never overlap, so whatever the time, one of the two is silent.
    async with (
        sim.serve(tick_rate=200, scenario="hours", codes=(HK, US, "SG.D05")) as server,
        aiofutu.connect(server.host, server.port) as client,
        client.ticker_stream(HK, US, "SG.D05", is_first_push=False) as ticks,
    ):
        await anyio.sleep(0.3)
        got = ticks.drain()
        trading = sim.trading_markets(time.time(), "real")
        state = await client.get_global_state()
    assert trading is not None
    assert {t.code for t in got} <= {
        code for code in (HK, US, "SG.D05") if aiofutu.parse_code(code)[0] in trading
    }
    assert "SG.D05" in {t.code for t in got}  # no calendar: always in session
    assert not {HK, US} <= {t.code for t in got}
    assert state["marketHK"] == sim.market_states(time.time())["marketHK"]


def test_real_market_hours_follow_each_calendar() -> None:
    hk_morning = dt.datetime(2024, 1, 3, 10, 0, tzinfo=ZoneInfo("Asia/Hong_Kong")).timestamp()
    trading = sim.trading_markets(hk_morning, "real")
    assert trading is not None
    assert {Market.HK, Market.SH, Market.SZ} <= trading
    assert Market.US not in trading  # 21:00 in New York
    assert Market.SG in trading  # no calendar: always trading
    ny_open = dt.datetime(2024, 1, 3, 10, 0, tzinfo=ZoneInfo("America/New_York")).timestamp()
    trading = sim.trading_markets(ny_open, "real")
    assert trading is not None
    assert Market.US in trading
    assert Market.HK not in trading
    saturday = dt.datetime(2024, 1, 6, 11, 0, tzinfo=ZoneInfo("Asia/Hong_Kong")).timestamp()
    assert Market.HK not in (sim.trading_markets(saturday, "real") or ())
    assert sim.trading_markets(saturday, "open") is None
    assert sim.trading_markets(hk_morning, "closed") == frozenset()


# ---- gaps ----------------------------------------------------------------------------------


async def test_gaps_are_reported_by_the_stream() -> None:
    async with (
        sim.serve(tick_rate=0, scenario="gaps", gap_every=10, gap_size=2) as server,
        aiofutu.connect(server.host, server.port) as client,
        client.ticker_stream(HK, is_first_push=False) as ticks,
    ):
        await server.burst(HK, 50)
        got = await _take(ticks, 50)
    assert _seqs(got) == _seqs(server.market.history(HK)[-50:])
    assert len(ticks.gaps) == 5
    assert {gap.missing for gap in ticks.gaps} == {2}


# ---- slow server ---------------------------------------------------------------------------


async def test_slow_server_times_out_short_calls_only() -> None:
    async with (
        sim.serve(tick_rate=0) as server,
        aiofutu.connect(server.host, server.port) as client,
    ):
        await client.subscribe([HK], ["TICKER"], subscribe_push=False)
        server.reply_delay = 0.3
        with pytest.raises(aiofutu.RequestTimeout):
            await client.get_rt_ticker(HK, 10, timeout=0.1)
        started = time.monotonic()
        assert len(await client.get_rt_ticker(HK, 10)) == 10
        assert time.monotonic() - started >= 0.25


# ---- dropped connections -------------------------------------------------------------------


async def test_drop_after_frames_loses_the_connection() -> None:
    async with (
        sim.serve(tick_rate=0, drop_after_frames=3) as server,
        aiofutu.connect(server.host, server.port) as client,  # frame 1: InitConnect reply
    ):
        await client.subscribe([HK], ["TICKER"], subscribe_push=False)  # frame 2
        assert len(await client.get_rt_ticker(HK, 5)) == 5  # frame 3, then the server hangs up
        with pytest.raises(aiofutu.ConnectionLost):
            await client.get_rt_ticker(HK, 5)


async def test_drop_after_frames_with_reconnect_keeps_the_tape() -> None:
    policy = aiofutu.ReconnectPolicy(initial_delay=0.01, jitter=0, max_attempts=20)
    async with (
        sim.serve(tick_rate=0, drop_after_frames=40) as server,
        aiofutu.connect(server.host, server.port, reconnect=policy) as client,
        client.ticker_stream(HK, is_first_push=False) as ticks,
    ):
        await server.burst(HK, 100)  # the link drops after ~38 of these
        got = await _take(ticks, 100)
        assert client.reconnects >= 1
    assert _seqs(got) == _seqs(server.market.history(HK)[-100:])  # backfilled, no gap
    assert ticks.gaps == []


# ---- corrupt frames ------------------------------------------------------------------------


async def test_corrupt_reply_fails_one_request_only() -> None:
    async with (
        sim.serve(tick_rate=0) as server,
        aiofutu.connect(server.host, server.port) as client,
    ):
        await client.subscribe([HK], ["TICKER"], subscribe_push=False)
        server.faults.corrupt_replies = 1
        with pytest.raises(aiofutu.RemoteProtocolError, match="SHA1") as info:
            await client.get_rt_ticker(HK, 5)
        assert info.value.recoverable
        assert len(await client.get_rt_ticker(HK, 5)) == 5


async def test_corrupt_pushes_are_skipped_and_show_as_gaps() -> None:
    async with (
        sim.serve(tick_rate=0, scenario="corrupt", corrupt_every=10) as server,
        aiofutu.connect(server.host, server.port) as client,
        client.ticker_stream(HK, is_first_push=False) as ticks,
    ):
        await server.burst(HK, 31)  # pushes 10, 20 and 30 are corrupt; 31 reveals the last gap
        got = await _take(ticks, 28)
        await anyio.sleep(0.05)
        assert ticks.pending == 0
        assert client.stats()["bad_frames"] == 3
    assert len(ticks.gaps) == 3
    assert {gap.missing for gap in ticks.gaps} == {1}
    expected = server.market.history(HK)[-31:]
    assert _seqs(got) == [t.sequence for i, t in enumerate(expected, 1) if i % 10]


# ---- quota, the unsubscribe rule, the 1000-tick window --------------------------------------


async def test_exhausted_quota_refuses_subscriptions() -> None:
    async with (
        sim.serve(tick_rate=0, sub_quota=1) as server,
        aiofutu.connect(server.host, server.port) as client,
    ):
        await client.subscribe([HK], ["TICKER"])
        with pytest.raises(aiofutu.OpenDError, match="quota exhausted") as info:
            await client.subscribe([US], ["TICKER"])
        assert info.value.err_code == sim.ErrCode.QUOTA_EXHAUSTED
        assert info.value.ret_type == -1
        info_ = await client.query_subscription()
        assert (info_.total_used, info_.remain) == (1, 0)
        with pytest.raises(aiofutu.OpenDError, match="quota"):
            async with client.ticker_stream(US):
                pass
    async with (
        sim.serve(tick_rate=0, scenario="quota") as server,
        aiofutu.connect(server.host, server.port) as client,
    ):
        with pytest.raises(aiofutu.OpenDError, match="0 of 0 used"):
            await client.subscribe([HK], ["TICKER"])


async def test_unsubscribe_rule() -> None:
    async with (
        sim.serve(tick_rate=0, unsub_min_age=0.3) as server,
        aiofutu.connect(server.host, server.port) as client,
    ):
        await client.subscribe([HK], ["TICKER"])
        with pytest.raises(aiofutu.OpenDError, match="one minute after it was made"):
            await client.unsubscribe([HK], ["TICKER"])
        await anyio.sleep(0.3)
        await client.unsubscribe([HK], ["TICKER"])
        assert (await client.query_subscription()).total_used == 0


async def test_get_rt_ticker_window_is_1000() -> None:
    async with (
        sim.serve(tick_rate=0) as server,
        aiofutu.connect(server.host, server.port) as client,
    ):
        await client.subscribe([HK], ["TICKER"], subscribe_push=False)
        await server.burst(HK, 2500)
        got = await client.get_rt_ticker(HK, 1000)
        assert _seqs(got) == _seqs(server.market.history(HK))
        assert len(got) == 1000
        sent = server.requests[3010]
        with pytest.raises(aiofutu.ConfigurationError, match=r"1\.\.1000"):
            await client.get_rt_ticker(HK, 1001)
        assert server.requests[3010] == sent  # refused before sending
        req = qot_get_ticker_pb2.Request()
        req.c2s.security.market, req.c2s.security.code = 1, "00700"
        req.c2s.maxRetNum = 5000  # what the official SDK would send as is
        resp = await client.request(aiofutu.ProtoId.QOT_GET_TICKER, req)
        assert len(resp.s2c.tickerList) == 1000

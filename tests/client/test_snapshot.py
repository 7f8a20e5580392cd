"""Snapshots (3203) and static info (3202) over real sockets against the simulator."""

from __future__ import annotations

import time

import pytest

import aiofutu
from aiofutu import sim
from aiofutu.enums import ProtoId
from aiofutu.quotes._enums import ExchType, SecurityStatus, SecurityType
from aiofutu.quotes._snapshot_frame import SNAPSHOT_COLUMNS
from aiofutu.quotes.static import STATIC_INFO_COLUMNS
from aiofutu.sim.kinds.basic import DayFold
from aiofutu.sim.kinds.snapshot import snapshot_of
from aiofutu.sim.kinds.static import facts_of

pytestmark = pytest.mark.anyio
#: every test here runs over TCP and over the WebSocket gateway (tests/client/conftest.py)
BOTH_TRANSPORTS = True

SNAPSHOT = int(ProtoId.QOT_GET_SECURITY_SNAPSHOT)
STATIC = int(ProtoId.QOT_GET_STATIC_INFO)


def _day(server: sim.Simulator, code: str) -> DayFold:
    ticks = server.market.history(code)
    date = ticks[-1].time[:10]
    return DayFold.from_ticks(t for t in ticks if t.time[:10] == date)


async def test_snapshot_values_come_from_the_tape(
    client: aiofutu.Client, server: sim.Simulator
) -> None:
    codes = ["HK.00700", "US.AAPL", "HK.800000", "US.SPY"]
    snaps = await client.get_market_snapshot(codes)
    assert [s.code for s in snaps] == codes
    for s in snaps:
        sec = server.market.security(s.code)
        fold = _day(server, s.code)
        assert s.last_price == fold.last == sec.latest().price
        assert (s.open_price, s.high_price, s.low_price) == (fold.open, fold.high, fold.low)
        assert s.volume == fold.volume > 0
        assert s.turnover == round(fold.turnover, 4)
        assert s.update_time == fold.last_time
        assert s.prev_close_price == sec.prev_close
        assert (s.name, s.lot_size) == (sec.name, sec.lot)
        facts = facts_of(s.code, sec.name, sec.lot, server.config.seed)
        assert s.listing_date == facts.list_time
        assert s.security_type.wire == facts.sec_type
        assert s.sec_status is SecurityStatus.NORMAL
        assert s.bid_price == s.last_price and s.ask_price is not None
        assert s.ask_price > s.bid_price
    tencent, aapl, hsi, spy = snaps
    assert tencent.name == "Tencent" and tencent.lot_size == 100
    assert tencent.security_type is SecurityType.STOCK and tencent.equity is not None
    assert tencent.equity.total_market_val == pytest.approx(
        tencent.equity.issued_shares * tencent.last_price, rel=1e-9
    )
    assert aapl.security_type is SecurityType.STOCK
    assert hsi.security_type is SecurityType.IDX and hsi.index is not None and hsi.equity is None
    assert spy.security_type is SecurityType.ETF and spy.trust is not None


async def test_snapshot_follows_new_ticks(client: aiofutu.Client, server: sim.Simulator) -> None:
    before = (await client.get_market_snapshot("HK.00700"))[0]
    ticks = server.market.generate("HK.00700", 5)
    after = (await client.get_market_snapshot("HK.00700"))[0]
    assert after.last_price == ticks[-1].price != before.update_time
    assert after.update_time == ticks[-1].time
    assert after.volume == _day(server, "HK.00700").volume


async def test_order_and_duplicates(client: aiofutu.Client, server: sim.Simulator) -> None:
    codes = ["US.AAPL", "HK.00700", "US.AAPL", "HK.09988", "HK.00700"]
    snaps = await client.get_market_snapshot(codes)
    assert [s.code for s in snaps] == ["US.AAPL", "HK.00700", "HK.09988"]
    assert server.requests[SNAPSHOT] == 1


async def test_frame_has_the_sdk_columns_and_the_model_values(client: aiofutu.Client) -> None:
    pl = pytest.importorskip("polars")
    codes = ["HK.00700", "US.SPY", "HK.800000"]
    snaps = await client.get_market_snapshot(codes)
    df = await client.get_market_snapshot_frame(codes)
    assert len(df.columns) == 142 and tuple(df.columns) == SNAPSHOT_COLUMNS
    assert df["code"].to_list() == codes
    assert df["last_price"].to_list() == [s.last_price for s in snaps]
    assert df["volume"].to_list() == [s.volume for s in snaps]
    assert df["lot_size"].to_list() == [s.lot_size for s in snaps]
    assert df["equity_valid"].to_list() == [True, False, False]
    assert df["trust_valid"].to_list() == [False, True, False]
    assert df["index_valid"].to_list() == [False, False, True]
    assert df["wrt_valid"].to_list() == [False, False, False]
    assert df["wrt_type"].to_list() == ["N/A"] * 3
    assert df["sec_status"].to_list() == ["NORMAL"] * 3
    assert df.schema["sec_status"] == pl.Enum(list(dict.fromkeys(m.value for m in SecurityStatus)))
    assert df["issued_shares"][0] == snaps[0].equity.issued_shares  # type: ignore[union-attr]
    assert df["issued_shares"][1] is None


@pytest.mark.opend(allow_any_code=True, max_ticks=10)
async def test_more_than_400_codes_are_split_and_sent_concurrently(
    client: aiofutu.Client, server: sim.Simulator
) -> None:
    codes = [f"HK.{n:05d}" for n in range(10_000, 10_950)]
    for code in codes:
        snapshot_of(server.market.security(code), server.config.seed)  # made up once, not timed
    server.reply_delay = 1.0
    started = time.monotonic()
    snaps = await client.get_market_snapshot(codes)
    elapsed = time.monotonic() - started
    assert [s.code for s in snaps] == codes
    assert server.requests[SNAPSHOT] == 3  # 400 + 400 + 150
    # one after the other the three would take at least 3 x 1 s; concurrently about one
    assert elapsed < 2.5, elapsed
    server.reply_delay = 0.0
    df = await client.get_market_snapshot_frame(codes)
    assert df.height == 950 and df["code"].to_list() == codes


async def test_bad_input_fails_before_sending(
    client: aiofutu.Client, server: sim.Simulator
) -> None:
    with pytest.raises(aiofutu.ConfigurationError):
        await client.get_market_snapshot([])
    with pytest.raises(aiofutu.InvalidCode):
        await client.get_market_snapshot(["HK.00700", "00700"])
    with pytest.raises(aiofutu.ConfigurationError):
        await client.get_market_snapshot(42)  # type: ignore[arg-type]
    with pytest.raises(aiofutu.ConfigurationError):
        await client.get_market_snapshot("HK.00700", timeout=0)
    assert server.requests[SNAPSHOT] == 0


async def test_unknown_code_is_opend_s_error(client: aiofutu.Client) -> None:
    with pytest.raises(aiofutu.OpenDError) as info:
        await client.get_market_snapshot(["HK.00700", "HK.99999"])
    assert info.value.proto_id == SNAPSHOT
    assert "HK.99999" in str(info.value)
    # the client goes on
    assert len(await client.get_market_snapshot("HK.00700")) == 1


@pytest.mark.opend(allow_any_code=True)
async def test_the_simulator_refuses_more_than_400_codes(client: aiofutu.Client) -> None:
    from aiofutu._pb import qot_get_security_snapshot_pb2

    req = qot_get_security_snapshot_pb2.Request()
    for n in range(401):
        req.c2s.securityList.add(market=1, code=f"{n:05d}")
    with pytest.raises(aiofutu.OpenDError) as info:
        await client.request(SNAPSHOT, req)
    assert "at most 400" in str(info.value)
    empty = qot_get_security_snapshot_pb2.Request()
    empty.c2s.SetInParent()
    with pytest.raises(aiofutu.OpenDError):
        await client.request(SNAPSHOT, empty)


# ------------------------------------------------------------------ 3202


async def test_basicinfo_by_market_lists_the_universe(
    client: aiofutu.Client, server: sim.Simulator
) -> None:
    infos = await client.get_stock_basicinfo("HK", "STOCK")
    hk = [c for c in server.market.universe if c.startswith("HK.")]
    expected = {
        c
        for c in hk
        if facts_of(c, server.market.security(c).name, 1, server.config.seed).sec_type == 3
    }
    assert {i.code for i in infos} == expected and len(infos) == len(expected)
    assert "HK.00700" in expected and "HK.800000" not in expected and "HK.02800" not in expected
    for info in infos:
        sec = server.market.security(info.code)
        assert (info.name, info.lot_size) == (sec.name, sec.lot)
        assert info.security_type is SecurityType.STOCK
        assert info.exchange_type is ExchType.HK_MAINBOARD
        assert info.delisting is False
    idx = await client.get_stock_basicinfo(aiofutu.Market.US, SecurityType.IDX)
    assert {i.code for i in idx} == {"US..DJI", "US..IXIC", "US..SPX"}
    etf = await client.get_stock_basicinfo("HK", "ETF")
    assert {i.code for i in etf} == {"HK.02800", "HK.03033"}


async def test_basicinfo_by_code_and_placeholder_rows(
    client: aiofutu.Client, server: sim.Simulator
) -> None:
    snaps = await client.get_market_snapshot(["HK.00700", "US.AAPL"])
    infos = await client.get_stock_basicinfo(None, codes=["HK.00700", "US.AAPL", "HK.99999"])
    assert [i.code for i in infos] == ["HK.00700", "US.AAPL", "HK.99999"]
    for info, snap in zip(infos, snaps, strict=False):
        assert (info.name, info.lot_size, info.listing_date) == (
            snap.name,
            snap.lot_size,
            snap.listing_date,
        )
        assert info.security_type is snap.security_type
    unknown = infos[2]
    assert unknown.name == "unknown stock" and unknown.delisting is True
    assert unknown.security_type is SecurityType.NA


async def test_basicinfo_frame(client: aiofutu.Client) -> None:
    pytest.importorskip("polars")
    df = await client.get_stock_basicinfo_frame("US", "STOCK", codes=["US.AAPL", "HK.00700"])
    assert tuple(df.columns) == STATIC_INFO_COLUMNS and len(df.columns) == 17
    assert df["code"].to_list() == ["US.AAPL", "HK.00700"]
    assert df["stock_type"].to_list() == ["STOCK", "STOCK"]
    assert df["stock_child_type"].to_list() == ["N/A", "N/A"]
    assert df["option_type"].to_list() == ["N/A", "N/A"]
    assert df["strike_price"].to_list() == [None, None]
    assert df["stock_owner"].to_list() == ["", ""]
    assert df["main_contract"].to_list() == [False, False]


async def test_basicinfo_bad_input_fails_before_sending(
    client: aiofutu.Client, server: sim.Simulator
) -> None:
    with pytest.raises(aiofutu.ConfigurationError, match="market"):
        await client.get_stock_basicinfo("XX", "STOCK")
    with pytest.raises(aiofutu.ConfigurationError, match="market"):
        await client.get_stock_basicinfo(None, "STOCK")
    with pytest.raises(aiofutu.ConfigurationError, match="security type"):
        await client.get_stock_basicinfo("HK", "SHARES")
    with pytest.raises(aiofutu.ConfigurationError, match="DRVT"):
        await client.get_stock_basicinfo("US", "DRVT")
    with pytest.raises(aiofutu.ConfigurationError):
        await client.get_stock_basicinfo("HK", codes=[])
    with pytest.raises(aiofutu.InvalidCode):
        await client.get_stock_basicinfo("HK", codes=["nope"])
    assert server.requests[STATIC] == 0


async def test_a_failing_chunk_fails_the_call_with_opend_s_error(
    client: aiofutu.Client, server: sim.Simulator
) -> None:
    known = [c for c in server.market.universe if c.startswith(("HK.", "US."))][:150]
    codes = known + [f"US.X{n}" for n in range(300)] + ["HK.99999"]
    with pytest.raises(aiofutu.OpenDError) as info:  # one error, typed, not a group
        await client.get_market_snapshot(codes)
    assert info.value.proto_id == SNAPSHOT
    assert len(await client.get_market_snapshot(known)) == len(known)  # the client goes on

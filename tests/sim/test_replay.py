"""Record pushed ticks, replay them from a second simulator, record again: nothing changes."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import polars as pl
import pytest

import aiofutu
from aiofutu import PushDataType, Ticker, TickerDirection, TickerType, sim
from aiofutu.record import (
    RECORD_COLUMNS,
    Recorder,
    read_recording,
    ticks_to_frame,
    write_recording,
)

pytestmark = pytest.mark.anyio

HK = "HK.00700"
US = "US.AAPL"


async def _record(port: int, codes: list[str], limit: int) -> list[Ticker]:
    recorder = Recorder(codes, limit=limit)
    async with aiofutu.connect("127.0.0.1", port) as client:
        with anyio.fail_after(10):
            return await recorder.run(client)


async def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    path = tmp_path / "ticks.parquet"
    async with sim.serve(tick_rate=0, burst=150, burst_per_push=3, hp_volume=True) as source:
        first = await _record(source.port, [HK, US], 300)
        for code in (HK, US):
            held = [t.sequence for t in source.market.history(code)[-150:]]
            assert [t.sequence for t in first if t.code == code] == held
    assert write_recording(first, path) == 300
    assert pl.read_parquet(path).columns == list(RECORD_COLUMNS)

    async with sim.serve(replay=path, speed=0) as replayer:
        again = await _record(replayer.port, [HK, US], 300)
        assert replayer.replay is not None
        with anyio.fail_after(5):
            await replayer.replay.done.wait()
        async with aiofutu.connect("127.0.0.1", replayer.port) as client:
            await client.subscribe([HK], ["TICKER"], subscribe_push=False)
            served = await client.get_rt_ticker(HK, 1000)
    assert again == first  # every field of every tick, in the same order
    assert ticks_to_frame(again).equals(pl.read_parquet(path))
    assert served == [t for t in first if t.code == HK]  # get_rt_ticker returns the replay
    assert all(t.hp_volume is not None for t in again)


def _tick(seq: int, ts: float, **fields: object) -> Ticker:
    values: dict[str, object] = {
        "code": HK,
        "name": "Tencent Holdings",
        "sequence": (int(ts) << 32) | seq,
        "time": "2024-01-03 10:00:00.000",
        "price": 300.2,
        "volume": 100,
        "turnover": 30020.0,
        "ticker_direction": TickerDirection.BUY,
        "type": TickerType.AUTO_MATCH,
        "push_data_type": PushDataType.REALTIME,
        "timestamp": ts,
        "recv_time": 1704247200.5,
        "type_sign": 32,
        "hp_volume": None,
    }
    values.update(fields)
    return Ticker.model_validate(values)


async def test_absent_fields_stay_absent_and_pacing_is_scaled(tmp_path: Path) -> None:
    t0 = 1_704_247_200.0
    ticks = [
        _tick(1, t0, type=TickerType.NA, push_data_type=PushDataType.NA),
        _tick(2, t0 + 0.5, ticker_direction=TickerDirection.NA, hp_volume=100.5),
        _tick(3, t0 + 1.0, type=TickerType.ODD_LOT, type_sign=68, volume=7),
        _tick(4, t0 + 1.5, push_data_type=PushDataType.CACHE),
    ]
    path = tmp_path / "hand.parquet"
    write_recording(ticks, path)
    assert read_recording(path) == ticks
    async with sim.serve(replay=path, speed=5) as server:
        assert server.market.history(HK) == []  # no made-up history in a replay
        await anyio.sleep(0.1)
        assert server.replay is not None
        assert server.replay.pushed == 0  # waits for a subscriber
        started = time.monotonic()
        got = await _record(server.port, [HK], 4)
        elapsed = time.monotonic() - started
    assert got == ticks
    assert got[0].name == "Tencent Holdings"  # the recorded name, not the simulator's
    assert 0.25 <= elapsed < 2.0  # 1.5 s of recording at speed 5


def test_bad_recordings_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(aiofutu.ConfigurationError, match="does not exist"):
        sim.Simulator(replay=tmp_path / "missing.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(aiofutu.ConfigurationError, match="cannot read recording"):
        read_recording(tmp_path / "junk.parquet")
    with pytest.raises(aiofutu.ConfigurationError, match="missing column"):
        read_recording(pl.DataFrame({"code": [HK]}))
    with pytest.raises(aiofutu.ConfigurationError, match="limit"):
        Recorder([HK], limit=0)

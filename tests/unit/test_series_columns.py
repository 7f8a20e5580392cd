"""The columnar view of the 3006 reply gives exactly the bars of the exact schema, and the
simulator's byte-assembled 3006 reply is the serialised Response."""

from __future__ import annotations

import random

import pytest

from aiofutu._pb import qot_common_pb2, qot_get_kl_pb2
from aiofutu.quotes import kline
from aiofutu.quotes._series_columns import kline_columns, klines_frame, klines_of

_OPTIONAL = ("openPrice", "closePrice", "highPrice", "lowPrice", "lastClosePrice", "turnover",
             "turnoverRate", "pe", "changeRate", "timestamp")  # fmt: skip


def _reply(bars: list[qot_common_pb2.KLine], name: str | None = "Tencent") -> bytes:
    s2c = qot_get_kl_pb2.S2C()
    s2c.security.market = 1
    s2c.security.code = "00700"
    s2c.klList.extend(bars)
    if name is not None:
        s2c.name = name
    return bytes(qot_get_kl_pb2.Response(retType=0, s2c=s2c).SerializeToString())


def _bars(seed: int, n: int, fields: tuple[str, ...], volume: str) -> list[qot_common_pb2.KLine]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        k = qot_common_pb2.KLine(time=f"2024-01-02 09:{i % 60:02d}:00", isBlank=False)
        for f in fields:
            setattr(k, f, round(rng.uniform(1, 500), 3))
        if volume == "hp":
            k.hpVolume = rng.uniform(0, 1e6)
            k.volume = rng.randrange(10**6)
        elif volume == "int":
            k.volume = rng.randrange(10**6)
        out.append(k)
    return out


def _exact(body: bytes) -> kline.KLineSeries:
    return kline.klines_from_s2c(qot_get_kl_pb2.Response.FromString(body).s2c)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("volume", ["hp", "int", "none"])
@pytest.mark.parametrize("fields", [_OPTIONAL, _OPTIONAL[:4], ()])
def test_view_equals_exact(seed: int, volume: str, fields: tuple[str, ...]) -> None:
    body = _reply(_bars(seed, 50, fields, volume), name="Tencent" if seed % 2 else None)
    cols = kline_columns(body)
    assert cols is not None
    exact = _exact(body)
    assert klines_of(cols) == list(exact.bars)
    assert (cols.code, cols.name) == (exact.code, exact.name)
    pytest.importorskip("polars")
    assert klines_frame(cols).equals(kline.klines_to_polars(exact))


def test_view_declines_what_it_cannot_represent() -> None:
    bars = _bars(1, 10, _OPTIONAL, "int")
    bars[3] = qot_common_pb2.KLine(time=bars[3].time, isBlank=True)  # a blank bar: no prices
    assert kline_columns(_reply(bars)) is None
    failed = qot_get_kl_pb2.Response(retType=-1, retMsg="no").SerializeToString()
    assert kline_columns(failed) is None
    assert kline_columns(b"\xff\xff") is None
    assert kline_columns(_reply([])) is not None


def test_sim_reply_is_the_serialised_response() -> None:
    from aiofutu.sim import Simulator

    server = Simulator(seed=3, tick_rate=0)
    code = "HK.00700"
    sec = server.market.security(code)
    for kl_type in (1, 2, 6):
        server.series.ensure(code, {1: 11, 2: 6, 6: 7}[kl_type])
        for num in (1, 2, 10, 999, 1000):
            expected = qot_get_kl_pb2.Response(retType=0)
            expected.s2c.security.CopyFrom(sec.security)
            expected.s2c.klList.extend(server.series.bars(code, kl_type, num))
            expected.s2c.name = sec.name
            reply = server.series.reply(code, kl_type, num)
            assert reply.SerializeToString() == expected.SerializeToString(), (kl_type, num)
        server.series.on_ticks(sec, sec.generate(3, now=sec.last_ts + 600))  # closes a bar
        reply = server.series.reply(code, kl_type, 5)
        assert [k.time for k in reply.message().s2c.klList] == [
            k.time for k in server.series.bars(code, kl_type, 5)
        ]

"""polars frames of ticks: the SDK's columns, typed, and the two construction paths agree."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from aiofutu import (
    TICKER_COLUMNS,
    PushDataType,
    Ticker,
    TickerDirection,
    TickerType,
    to_polars,
)
from aiofutu._pb import qot_common_pb2, qot_update_ticker_pb2
from aiofutu.frames import ColumnBuffer
from aiofutu.models import tickers_from_pb

SDK_COLUMNS = [
    "code",
    "name",
    "time",
    "price",
    "volume",
    "turnover",
    "ticker_direction",
    "sequence",
    "type",
]


def pb_tick(
    sequence: int,
    *,
    dir_: int = 1,
    type_: int | None = 1,
    hp: float | None = None,
    push: int = 1,
    volume: int = 100,
) -> qot_common_pb2.Ticker:
    t = qot_common_pb2.Ticker(
        time=f"2021-06-09 11:02:{sequence % 60:02d}",
        sequence=sequence,
        dir=dir_,
        price=598.5 + sequence,
        volume=volume,
        turnover=59850.0,
        pushDataType=push,
        timestamp=1623207729.0 + sequence,
    )
    if type_ is not None:
        t.type = type_
    if hp is not None:
        t.hpVolume = hp
    return t


def varied_ticks() -> list[qot_common_pb2.Ticker]:
    return [
        pb_tick(6971624110669434300, dir_=1, type_=1, push=1),
        pb_tick(2, dir_=2, type_=None, push=2),  # absent type -> N/A
        pb_tick(3, dir_=3, type_=28, hp=123.6, push=3, volume=0),  # hpVolume wins, rounded
        pb_tick(4, dir_=0, type_=0, push=0),
        pb_tick(5, dir_=9, type_=77, push=9),  # unknown values -> N/A
        pb_tick(6, dir_=2, type_=31, hp=499.5, volume=500),  # round half to even: 500
    ]


def test_ticker_columns_constant() -> None:
    assert list(TICKER_COLUMNS) == SDK_COLUMNS
    assert isinstance(TICKER_COLUMNS, tuple)


def test_columns_and_dtypes() -> None:
    df = to_polars(tickers_from_pb(1, "00700", "TENCENT", varied_ticks()))
    assert df.columns == SDK_COLUMNS
    assert df.dtypes[:6] == [pl.String, pl.String, pl.String, pl.Float64, pl.Int64, pl.Float64]
    assert df.dtypes[7] == pl.Int64
    assert df.schema["ticker_direction"] == pl.Enum(["N/A", "BUY", "SELL", "NEUTRAL"])
    type_dtype = df.schema["type"]
    assert isinstance(type_dtype, pl.Enum)
    assert type_dtype.categories.to_list() == [m.value for m in TickerType]
    assert "REOPENINGP_RICED" in type_dtype.categories.to_list()
    assert df.height == 6


def test_values() -> None:
    df = to_polars(tickers_from_pb(1, "00700", "TENCENT", varied_ticks()))
    assert df["code"].to_list() == ["HK.00700"] * 6
    assert df["name"].to_list() == ["TENCENT"] * 6
    assert df["sequence"].to_list() == [6971624110669434300, 2, 3, 4, 5, 6]
    assert df["ticker_direction"].to_list() == ["BUY", "SELL", "NEUTRAL", "N/A", "N/A", "SELL"]
    assert df["type"].to_list() == [
        "AUTO_MATCH",
        "N/A",
        "REOPENINGP_RICED",
        "UNKNOWN",
        "N/A",
        "OVERSEAS",
    ]
    assert df["volume"].to_list() == [100, 100, 124, 100, 100, 500]
    assert df["price"].to_list() == [598.5 + s for s in df["sequence"].to_list()]
    assert df["time"][0] == "2021-06-09 11:02:" + f"{6971624110669434300 % 60:02d}"


def test_push_data_type_column() -> None:
    df = to_polars(tickers_from_pb(1, "00700", "", varied_ticks()), push_data_type=True)
    assert df.columns == [*SDK_COLUMNS, "push_data_type"]
    assert df.schema["push_data_type"] == pl.Enum(["N/A", "REALTIME", "BYDISCONN", "CACHE"])
    assert df["push_data_type"].to_list() == [
        "REALTIME",
        "BYDISCONN",
        "CACHE",
        "N/A",
        "N/A",
        "REALTIME",
    ]


def test_user_built_tickers() -> None:
    t = Ticker(
        code="US.AAPL",
        name="Apple",
        sequence=7490506385373790208,
        time="2025-04-07 05:50:23",
        price=188.38,
        volume=7,
        turnover=1318.66,
        ticker_direction=TickerDirection.NEUTRAL,
        type=TickerType.T,
        push_data_type=PushDataType.CACHE,
    )
    df = to_polars([t], push_data_type=True)
    assert df.row(0) == (
        "US.AAPL",
        "Apple",
        "2025-04-07 05:50:23",
        188.38,
        7,
        1318.66,
        "NEUTRAL",
        7490506385373790208,
        "T",
        "CACHE",
    )


def test_accepts_any_iterable() -> None:
    ticks = tickers_from_pb(1, "00700", "", varied_ticks())
    assert_frame_equal(to_polars(iter(ticks)), to_polars(ticks))
    assert_frame_equal(to_polars(t for t in ticks), to_polars(tuple(ticks)))


@pytest.mark.parametrize("push", [False, True])
def test_empty_input_keeps_schema(push: bool) -> None:
    df = to_polars([], push_data_type=push)
    full = to_polars(tickers_from_pb(1, "00700", "", varied_ticks()), push_data_type=push)
    assert df.height == 0
    assert df.schema == full.schema
    empty_buffer = ColumnBuffer(push_data_type=push).to_frame()
    assert empty_buffer.height == 0
    assert empty_buffer.schema == full.schema


# --------------------------------------------------------------------------- ColumnBuffer


@pytest.mark.parametrize("push", [False, True])
def test_column_buffer_equals_to_polars(push: bool) -> None:
    buf = ColumnBuffer(push_data_type=push)
    buf.add_pb(1, "00700", "TENCENT", varied_ticks())
    models = tickers_from_pb(1, "00700", "TENCENT", varied_ticks())
    expected = to_polars(models, push_data_type=push)
    assert buf.rows == 6
    assert_frame_equal(buf.to_frame(), expected)


def test_column_buffer_accumulates_securities() -> None:
    buf = ColumnBuffer(push_data_type=True)
    a = varied_ticks()[:3]
    b = varied_ticks()[3:]
    buf.add_pb(1, "00700", "TENCENT", a)
    buf.add_pb(11, "AAPL", "Apple", b)
    buf.add_pb(999, "ZZZ", "odd", [])  # empty: no rows, no codes
    models = tickers_from_pb(1, "00700", "TENCENT", a) + tickers_from_pb(11, "AAPL", "Apple", b)
    assert buf.rows == 6
    assert_frame_equal(buf.to_frame(), to_polars(models, push_data_type=True))
    assert buf.to_frame()["code"].to_list() == ["HK.00700"] * 3 + ["US.AAPL"] * 3
    # to_frame leaves the buffer as is; clear() empties it
    assert buf.to_frame().height == 6
    buf.clear()
    assert buf.rows == 0
    assert buf.to_frame().height == 0
    buf.add_pb(81, "USDHKD", "", a[:1])
    assert buf.to_frame()["code"].to_list() == ["FX.USDHKD"]


def test_column_buffer_accepts_repeated_field() -> None:
    rsp = qot_update_ticker_pb2.Response(retType=0)
    rsp.s2c.security.market = 1
    rsp.s2c.security.code = "00700"
    rsp.s2c.tickerList.extend(varied_ticks())
    parsed = qot_update_ticker_pb2.Response.FromString(rsp.SerializeToString())
    buf = ColumnBuffer()
    buf.add_pb(1, "00700", "", parsed.s2c.tickerList)
    assert_frame_equal(
        buf.to_frame(), to_polars(tickers_from_pb(1, "00700", "", parsed.s2c.tickerList))
    )


def test_present_zero_hp_volume_is_used_by_both_paths() -> None:
    # protocol.md 7.2: the SDK's volume is hpVolume whenever the field is *present*, even 0.0
    # (a zero-volume correction tick), else volume. Both construction paths must agree on it.
    tick = pb_tick(7, hp=0.0, volume=500)
    assert tick.HasField("hpVolume")
    models = tickers_from_pb(1, "00700", "", [tick])
    assert models[0].hp_volume == 0.0
    buf = ColumnBuffer()
    buf.add_pb(1, "00700", "", [tick])
    assert buf.to_frame()["volume"].to_list() == [0]
    assert to_polars(models)["volume"].to_list() == [0]


# --------------------------------------------------------------------------- optional dependency


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_import_aiofutu_does_not_import_polars() -> None:
    proc = _run(
        """
        import sys
        import aiofutu, aiofutu.frames, aiofutu.models
        assert 'polars' not in sys.modules, 'polars imported'
        print('ok')
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_missing_polars_raises_missing_dependency() -> None:
    proc = _run(
        """
        import json, sys
        sys.modules['polars'] = None  # makes `import polars` raise ImportError
        import aiofutu
        from aiofutu.frames import ColumnBuffer
        out = {}
        for name, call in [
            ('to_polars', lambda: aiofutu.to_polars([])),
            ('column_buffer', lambda: ColumnBuffer().to_frame()),
        ]:
            try:
                call()
            except Exception as exc:
                out[name] = {
                    'type': type(exc).__name__,
                    'is_import_error': isinstance(exc, ImportError),
                    'is_missing_dependency': isinstance(exc, aiofutu.MissingDependency),
                    'is_futu_error': isinstance(exc, aiofutu.FutuError),
                    'message': str(exc),
                }
            else:
                out[name] = None
        print(json.dumps(out))
        """
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    for name in ("to_polars", "column_buffer"):
        info = result[name]
        assert info is not None, f"{name} did not raise"
        assert info["type"] == "MissingDependency"
        assert info["is_import_error"]
        assert info["is_missing_dependency"]
        assert info["is_futu_error"]
        assert "pip install 'aiofutu[polars]'" in info["message"]

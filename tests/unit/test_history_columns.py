"""The history client's bulk readers agree with the per-bar decoder on every presence case."""

from __future__ import annotations

import random

import pytest

from aiofutu._pb import qot_common_pb2, qot_request_history_kl_pb2
from aiofutu.quotes.history import ALL_FIELDS, history_to_polars
from aiofutu.quotes.history_api import _Columns, bars_from_pb
from aiofutu.quotes.kline import kline_from_pb

_DOUBLES = (
    "highPrice",
    "openPrice",
    "lowPrice",
    "closePrice",
    "lastClosePrice",
    "turnover",
    "turnoverRate",
    "pe",
    "changeRate",
    "timestamp",
    "hpVolume",
)


def _page(seed: int, n: int = 300) -> qot_request_history_kl_pb2.S2C:
    rng = random.Random(seed)
    s2c = qot_request_history_kl_pb2.S2C()
    s2c.security.market = 1
    s2c.security.code = "00700"
    for i in range(n):
        k = qot_common_pb2.KLine(time=f"2024-01-02 10:{i % 60:02d}:00", isBlank=rng.random() < 0.1)
        for name in _DOUBLES:
            roll = rng.random()
            if roll < 0.3:
                continue  # absent
            setattr(k, name, 0.0 if roll < 0.45 else round(rng.uniform(-5, 500), 3))
        if rng.random() < 0.7:
            k.volume = 0 if rng.random() < 0.2 else rng.randint(1, 10**6)
        s2c.klList.append(k)
    return s2c


@pytest.mark.parametrize("seed", range(5))
def test_models_in_bulk_equal_per_bar(seed: int) -> None:
    s2c = _page(seed)
    assert bars_from_pb(s2c.klList) == tuple(kline_from_pb(k) for k in s2c.klList)


@pytest.mark.parametrize("seed", range(5))
def test_frame_columns_equal_the_models_frame(seed: int) -> None:
    pytest.importorskip("polars")
    s2c = _page(seed)
    cols = _Columns(ALL_FIELDS)
    cols.code, cols.name = "HK.00700", "Tencent"
    assert cols.add(s2c) == len(s2c.klList)
    models = [kline_from_pb(k) for k in s2c.klList]
    expected = history_to_polars("HK.00700", "Tencent", models, ALL_FIELDS)
    got = cols.frame()
    assert got.equals(expected)
    # a real 0.0 stays 0.0, an absent field is null
    assert got["open"].null_count() > 0 and (got["open"] == 0.0).sum() > 0

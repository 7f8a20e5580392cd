"""The official SDK's history K-lines, quota and market state against the simulator, over sockets.

``sdk_history_peer.py`` runs the SDK in a subprocess; its frames are compared with the
simulator's own bars and with what aiofutu's client gets for the same queries from the same
simulator (so both peers read the same bytes the same way).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

import aiofutu
from aiofutu.sim.kinds.history import history_bars
from aiofutu.testing import BackgroundSimulator, background_simulator

pytest.importorskip("futu", reason="futu-api (the official SDK) is a dev dependency")
pl = pytest.importorskip("polars")

CODE = "HK.00700"
OTHER = "US.AAPL"
SEED = 11
PEER = Path(__file__).with_name("sdk_history_peer.py")
SDK_ALL = [
    "code",
    "name",
    "time_key",
    "open",
    "close",
    "high",
    "low",
    "pe_ratio",
    "turnover_rate",
    "volume",
    "turnover",
    "change_rate",
    "last_close",
]


@pytest.fixture(scope="module")
def sim() -> Any:
    with background_simulator(tick_rate=0, seed=SEED) as sim:
        yield sim


@pytest.fixture(scope="module")
def steps(sim: BackgroundSimulator, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("sdk-history-home")
    config = {"port": sim.port, "code": CODE, "other": OTHER}
    env = {**os.environ, "HOME": str(home), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, str(PEER), json.dumps(config)],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = {s["step"]: s for s in map(json.loads, proc.stdout.splitlines())}
    assert "done" in out, proc.stderr[-3000:]
    out["_requests"] = dict(sim.call(lambda: dict(sim.server.requests)))
    out["_refused"] = dict(sim.call(lambda: dict(sim.server.limits.refused)))
    return out


def _times(code: str, kl_type: int, begin: str, end: str) -> list[str]:
    market, local = aiofutu.parse_code(code)
    return [b.time for b in history_bars(SEED, market, local, kl_type, begin, end)]


def _same(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(
        (x is None and y is None) or (x is not None and y is not None and math.isclose(x, y))
        for x, y in zip(a, b, strict=True)
    )


async def _ours(port: int, **kwargs: Any) -> Any:
    async with aiofutu.connect("127.0.0.1", port) as client:
        return await client.request_history_kline_frame(**kwargs)


def test_all_pages(steps: dict[str, Any]) -> None:
    step = steps["all_pages"]
    assert step["ret"] == 0 and step["key"] is None
    rows = step["frame"]["rows"]
    assert step["frame"]["columns"] == SDK_ALL
    assert rows["time_key"] == _times(CODE, 1, "2024-01-02 00:00:00", "2024-01-05 23:59:59")
    assert len(rows["time_key"]) == 4 * 330
    assert set(rows["name"]) == {"Tencent"}


def test_max_count_and_the_page_key(steps: dict[str, Any]) -> None:
    first, rest = steps["first_500"], steps["rest"]
    assert first["ret"] == rest["ret"] == 0
    assert first["more"] is True and rest["key"] is None
    whole = steps["all_pages"]["frame"]["rows"]["time_key"]
    got = first["frame"]["rows"]["time_key"] + rest["frame"]["rows"]["time_key"]
    assert len(first["frame"]["rows"]["time_key"]) == 500
    assert got == whole
    # 2500 > the range: every page, no key
    assert steps["max_2500"]["ret"] == 0
    assert steps["max_2500"]["rows"] == len(whole)
    assert steps["max_2500"]["key"] is None


def test_sdk_and_aiofutu_read_the_same_bars(
    steps: dict[str, Any], sim: BackgroundSimulator
) -> None:
    sdk = steps["all_pages"]["frame"]["rows"]
    ours = anyio.run(
        lambda: _ours(sim.port, code=CODE, start="2024-01-02", end="2024-01-05", ktype="K_1M")
    )
    assert ours.columns == SDK_ALL
    for col in SDK_ALL:
        if col in ("code", "name", "time_key"):
            assert ours[col].to_list() == sdk[col], col
        else:
            assert _same(ours[col].to_list(), sdk[col]), col
    assert ours["pe_ratio"].null_count() == ours.height  # absent: null here, NaN in the SDK


def test_daily_and_field_subset(steps: dict[str, Any], sim: BackgroundSimulator) -> None:
    daily = steps["daily"]
    assert daily["ret"] == 0 and daily["key"] is None
    assert daily["frame"]["rows"]["time_key"] == _times(
        CODE, 2, "2024-01-01 00:00:00", "2024-03-31 23:59:59"
    )
    fields = steps["fields"]
    assert fields["ret"] == 0
    assert fields["frame"]["columns"] == ["code", "name", "close", "time_key", "volume"]
    ours = anyio.run(
        lambda: _ours(
            sim.port,
            code=OTHER,
            start="2024-01-01",
            end="2024-03-31",
            fields=["close", "time_key", "volume"],
        )
    )
    assert ours.columns == fields["frame"]["columns"]
    assert ours["time_key"].to_list() == fields["frame"]["rows"]["time_key"]
    assert _same(ours["close"].to_list(), fields["frame"]["rows"]["close"])
    assert _same(ours["volume"].to_list(), fields["frame"]["rows"]["volume"])


def test_reversed_range_is_opend_s_refusal(steps: dict[str, Any]) -> None:
    # the SDK sends start after end as is; the simulator refuses it (aiofutu: before sending)
    step = steps["reversed"]
    assert step["ret"] == -1
    assert "after endTime" in step["msg"]


def test_quota(steps: dict[str, Any]) -> None:
    step = steps["quota"]
    assert step["ret"] == 0
    used, remain, detail = step["data"]
    assert (used, remain) == (2, 98)  # HK.00700 and US.AAPL, whatever the periods
    assert sorted(d["code"] for d in detail) == [CODE, OTHER]
    assert all(d["request_time"] for d in detail)


def test_market_state(steps: dict[str, Any], sim: BackgroundSimulator) -> None:
    step = steps["market_state"]
    assert step["ret"] == 0
    frame = step["frame"]
    assert frame["columns"] == ["code", "stock_name", "market_state"]
    assert frame["rows"]["code"] == [CODE, OTHER]  # de-duplicated, in order

    async def ours() -> Any:
        async with aiofutu.connect("127.0.0.1", sim.port) as client:
            return await client.get_market_state_frame([CODE, OTHER, CODE])

    df = anyio.run(ours)
    assert df.columns == frame["columns"]
    for col in frame["columns"]:
        assert df[col].to_list() == frame["rows"][col], col


def test_every_page_reached_the_simulator(steps: dict[str, Any]) -> None:
    # 2 pages (all), 1 + 1 (500, then the rest with its key), 2 (2500), daily, fields, reversed
    assert steps["_requests"][3103] == 9
    assert steps["_requests"][3104] == 1
    assert steps["_requests"][3223] == 1
    assert steps["_refused"] == {}  # far below the rate limits

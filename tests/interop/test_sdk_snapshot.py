"""The official SDK's ``get_market_snapshot`` and ``get_stock_basicinfo`` against the simulator,
over real sockets, beside aiofutu's own calls on the same simulator: both see the same values,
and the SDK's frames equal ours column for column (the SDK runs in a subprocess, see
``sdk_snapshot_peer.py``; the simulator makes no live ticks, so nothing moves in between)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

import aiofutu
from aiofutu.testing import BackgroundSimulator, background_simulator

pytest.importorskip("futu", reason="futu-api (the official SDK) is a dev dependency")
pl = pytest.importorskip("polars")

PEER = Path(__file__).with_name("sdk_snapshot_peer.py")
CODES = ["HK.00700", "US.AAPL", "HK.800000", "US.SPY", "HK.02800", "US..DJI", "HK_FUTURE.999010"]
MANY = [f"HK.{n:05d}" for n in range(20_000, 20_401)]  # 401 codes: the SDK does not split


def _run_peer(sim: BackgroundSimulator, home: Path) -> dict[str, dict[str, Any]]:
    config = {"port": sim.port, "codes": CODES, "many": MANY}
    env = {**os.environ, "HOME": str(home), "PYTHONUNBUFFERED": "1"}
    steps: dict[str, dict[str, Any]] = {}
    with subprocess.Popen(
        [sys.executable, str(PEER), json.dumps(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=home,
    ) as proc:
        watchdog = threading.Timer(60, proc.kill)  # the SDK retries forever on a dead link
        watchdog.start()
        try:
            out, err = proc.communicate()
        finally:
            watchdog.cancel()
            proc.kill()
    for line in out.splitlines():
        step = json.loads(line)
        steps[step["step"]] = step
    assert "done" in steps, err[-3000:]
    return steps


async def _ours(port: int) -> dict[str, Any]:
    async with aiofutu.connect("127.0.0.1", port, client_id="ours", timeout=20) as client:
        return {
            "snapshot": await client.get_market_snapshot_frame(CODES),
            "snapshot_models": await client.get_market_snapshot(CODES),
            "basicinfo_hk": await client.get_stock_basicinfo_frame("HK", "STOCK"),
            "basicinfo_us_idx": await client.get_stock_basicinfo_frame("US", "IDX"),
            "basicinfo_codes": await client.get_stock_basicinfo_frame("HK", "STOCK", CODES),
        }


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    options = {"tick_rate": 0, "max_ticks": 50, "seed": 11}
    with background_simulator(**options) as sim:
        theirs = _run_peer(sim, tmp_path_factory.mktemp("home-snapshot"))
        ours = anyio.run(_ours, sim.port)
    return theirs, ours


def _same(column: str, a: Any, b: Any, string: bool) -> bool:
    if b == "N/A" and not string:
        return a is None
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-9)
    return bool(a == b)


def _same_table(theirs: dict[str, Any], df: Any) -> None:
    assert theirs["ret"] == 0, theirs["data"]
    data = theirs["data"]
    assert tuple(df.columns) == tuple(data["columns"])
    rows = [list(r) for r in df.rows()]
    assert len(rows) == len(data["rows"]) > 0
    for i, (mine, sdk_row) in enumerate(zip(rows, data["rows"], strict=True)):
        for column, a, b in zip(df.columns, mine, sdk_row, strict=True):
            string = df.schema[column] == pl.String or isinstance(df.schema[column], pl.Enum)
            assert _same(column, a, b, string), (i, column, a, b)


def test_sdk_snapshot_equals_ours(both: tuple[dict[str, Any], dict[str, Any]]) -> None:
    theirs, ours = both
    _same_table(theirs["snapshot"], ours["snapshot"])
    data = theirs["snapshot"]["data"]
    assert len(data["columns"]) == 142
    codes = data["rows"]
    assert [r[0] for r in codes] == CODES
    last = data["columns"].index("last_price")
    assert [r[last] for r in data["rows"]] == [s.last_price for s in ours["snapshot_models"]]


def test_sdk_sees_opend_s_refusals(both: tuple[dict[str, Any], dict[str, Any]]) -> None:
    theirs, _ = both
    assert theirs["snapshot_many"]["ret"] != 0
    assert "at most 400" in theirs["snapshot_many"]["data"]
    assert theirs["snapshot_unknown"]["ret"] != 0
    assert "HK.99999" in theirs["snapshot_unknown"]["data"]


@pytest.mark.parametrize("step", ["basicinfo_hk", "basicinfo_us_idx", "basicinfo_codes"])
def test_sdk_basicinfo_equals_ours(both: tuple[dict[str, Any], dict[str, Any]], step: str) -> None:
    theirs, ours = both
    _same_table(theirs[step], ours[step])
    assert len(theirs[step]["data"]["columns"]) == 17

"""The official SDK's K-line and time-share calls and handlers against the simulator, over TCP.

``get_cur_kline``, ``get_rt_data``, ``CurKlineHandlerBase`` and ``RTDataHandlerBase`` of the SDK
(in a subprocess, see ``sdk_series_peer.py``) must see the simulator's own bars and minutes,
with the SDK's columns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from aiofutu.frames import CUR_KLINE_COLUMNS, RT_COLUMNS
from aiofutu.quotes.kline import KLINE_PUSH_COLUMNS
from aiofutu.quotes.rt import RT_PUSH_COLUMNS
from aiofutu.sim import Simulator
from aiofutu.testing import background_simulator

pytest.importorskip("futu", reason="futu-api (the official SDK) is a dev dependency")

CODE = "HK.00700"
PEER = Path(__file__).with_name("sdk_series_peer.py")


def _bars(server: Simulator) -> dict[str, list[Any]]:
    bars = server.series.bars(CODE, 1, 1000)
    return {
        "time_key": [b.time for b in bars],
        "open": [b.openPrice for b in bars],
        "close": [b.closePrice for b in bars],
        "high": [b.highPrice for b in bars],
        "low": [b.lowPrice for b in bars],
        "volume": [b.volume for b in bars],
        "turnover": [b.turnover for b in bars],
        "last_close": [b.lastClosePrice for b in bars],
    }


def _points(server: Simulator) -> dict[str, list[Any]]:
    pts = server.series.time_share(CODE).points
    return {
        "time": [p.time for p in pts],
        "opened_mins": [p.minute for p in pts],
        "cur_price": [p.price for p in pts],
        "avg_price": [p.avgPrice for p in pts],
        "volume": [p.volume for p in pts],
        "turnover": [p.turnover for p in pts],
        "last_close": [p.lastClosePrice for p in pts],
    }


def _advance(server: Simulator, minute: int) -> None:
    sec = server.market.security(CODE)
    server.push_ticks(sec, sec.generate(3, now=time.time() + 60 * minute))


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("home-series")
    steps: dict[str, Any] = {}
    with background_simulator(tick_rate=0, codes=(CODE,), keepalive_interval=1) as sim:
        env = {**os.environ, "HOME": str(home), "PYTHONUNBUFFERED": "1"}
        cfg = json.dumps({"port": sim.port, "code": CODE})
        with subprocess.Popen(
            [sys.executable, str(PEER), cfg],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=home,
        ) as proc:
            watchdog = threading.Timer(50, proc.kill)
            watchdog.start()
            try:
                assert proc.stdout is not None and proc.stderr is not None
                for line in proc.stdout:
                    step = json.loads(line)
                    steps[step["step"]] = step
                    if step["step"] == "ready":
                        steps["before"] = (
                            sim.call(_bars, sim.server),
                            sim.call(_points, sim.server),
                        )
                        sim.call(_advance, sim.server, 1)
                        sim.call(_advance, sim.server, 2)
                steps["stderr"] = proc.stderr.read()
                steps["returncode"] = proc.wait()
            finally:
                watchdog.cancel()
                proc.kill()
        steps["after"] = (sim.call(_bars, sim.server), sim.call(_points, sim.server))
    assert steps["returncode"] == 0, steps["stderr"][-3000:]
    return steps


def test_get_cur_kline_and_get_rt_data_see_the_simulator(peer: dict[str, Any]) -> None:
    assert peer["unsubscribed"]["ret"] == -1
    assert "not subscribed to K_1M" in peer["unsubscribed"]["msg"]
    assert peer["subscribe"]["ret"] == 0
    bars, points = peer["before"]
    got = peer["cur_kline"]
    assert got["ret"] == 0, got
    assert got["frame"]["columns"] == list(CUR_KLINE_COLUMNS)
    rows = got["frame"]["rows"]
    assert len(rows["time_key"]) == 1000
    for column, values in bars.items():
        assert rows[column] == pytest.approx(values) if column != "time_key" else values, column
    assert set(rows["code"]) == {CODE} and set(rows["pe_ratio"]) == {0.0}
    rt = peer["rt_data"]
    assert rt["ret"] == 0, rt
    assert rt["frame"]["columns"] == list(RT_COLUMNS)
    for column, values in points.items():
        assert rt["frame"]["rows"][column] == values, column
    assert set(rt["frame"]["rows"]["is_blank"]) == {False}


def test_push_handlers_see_the_simulator(peer: dict[str, Any]) -> None:
    step = peer["pushes"]
    assert step["ok"] and step["errors"] == [], step
    bars, points = peer["after"]
    kline = step["kline"]
    assert kline["columns"] == list(KLINE_PUSH_COLUMNS)
    rows = kline["rows"]
    assert set(rows["k_type"]) == {"K_1M"}
    final = {t: i for i, t in enumerate(bars["time_key"])}
    last = {t: i for i, t in enumerate(rows["time_key"])}  # the last push of each bar
    assert len(last) == 3 and list(last) == bars["time_key"][-3:]
    for t, i in last.items():
        for column in ("open", "close", "high", "low", "volume", "turnover"):
            assert rows[column][i] == pytest.approx(bars[column][final[t]]), (t, column)
    rt = step["rt"]
    assert rt["columns"] == list(RT_PUSH_COLUMNS)
    rows = rt["rows"]
    final = {t: i for i, t in enumerate(points["time"])}
    last = {t: i for i, t in enumerate(rows["time"])}
    assert len(last) == 3 and list(last) == points["time"][-3:]
    for t, i in last.items():
        for column in ("cur_price", "avg_price", "volume", "turnover", "opened_mins"):
            assert rows[column][i] == points[column][final[t]], (t, column)

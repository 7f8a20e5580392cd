"""``aiofutu kline``, ``aiofutu tail --kind kline|rt`` and ``aiofutu record --kind kline`` end to
end, as subprocesses against a simulator in a thread of this process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from aiofutu.frames import CUR_KLINE_COLUMNS
from aiofutu.testing import BackgroundSimulator, background_simulator

HK = "HK.00700"
ENV = {k: v for k, v in os.environ.items() if not k.startswith("AIOFUTU_")}


def run(*args: str, timeout: float = 30) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "aiofutu", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
    )


def _one_line_error(result: Any, prefix: str) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(prefix), line
    return str(line)


@pytest.fixture(scope="module")
def opend() -> Iterator[BackgroundSimulator]:
    with background_simulator(tick_rate=20, seed=5, codes=(HK,)) as sim:
        yield sim


def _bars(sim: BackgroundSimulator, kl_type: int, n: int) -> list[tuple[str, float, float]]:
    def read() -> list[tuple[str, float, float]]:
        return [(b.time, b.openPrice, b.volume) for b in sim.server.series.bars(HK, kl_type, n)]

    out: list[tuple[str, float, float]] = sim.call(read)
    return out


def test_kline_num_prints_the_latest_bars(opend: BackgroundSimulator) -> None:
    port = str(opend.port)
    result = run("kline", HK, "--num", "20", "--ktype", "K_DAY", "--format", "json", "--port", port)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 20 and list(rows[0]) == list(CUR_KLINE_COLUMNS)
    expected = _bars(opend, 2, 20)
    assert [r["time_key"] for r in rows[:-1]] == [b[0] for b in expected[:-1]]  # the last fills
    assert [r["open"] for r in rows[:-1]] == [b[1] for b in expected[:-1]]
    table = run("kline", HK, "--num", "3", "--port", port)
    assert table.returncode == 0 and len(table.stdout.splitlines()) == 4  # a header, three bars


def test_kline_to_parquet(opend: BackgroundSimulator, tmp_path: Path) -> None:
    out = tmp_path / "bars.parquet"
    result = run("kline", HK, "--num", "1000", "--format", "parquet", "--out", str(out),
                 "--port", str(opend.port))  # fmt: skip
    assert result.returncode == 0, result.stderr
    df = pl.read_parquet(out)
    assert tuple(df.columns) == CUR_KLINE_COLUMNS and df.height == 1000
    assert df["time_key"].is_sorted()


@pytest.mark.parametrize(
    ("args", "prefix"),
    [
        (["kline", HK, "--num", "1001"], "aiofutu kline: error: --num must be in 1..1000"),
        (["kline", HK, "--ktype", "K_2M"], "aiofutu kline: error: 'K_2M' is not a KLType"),
        (["kline", HK, "--format", "parquet"], "aiofutu kline: error: --format parquet needs"),
        (["kline", "HK"], "aiofutu kline: error:"),
        (["tail", "--kind", "kline", "--autype", "up", HK], "aiofutu tail: error: 'up' is not"),
        (["record", "--kind", "rt", HK, "--out", "x.txt"], "aiofutu record: error: cannot tell"),
    ],
)
def test_bad_input_is_one_line(args: list[str], prefix: str, opend: BackgroundSimulator) -> None:
    _one_line_error(run(*args, "--port", str(opend.port)), prefix)


def test_tail_kline_and_rt(opend: BackgroundSimulator) -> None:
    port = str(opend.port)
    result = run("tail", "--kind", "kline", HK, "--limit", "5", "--format", "json", "--port", port)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 5
    assert {r["kl_type"] for r in rows} == {"K_1M"} and {r["au_type"] for r in rows} == {"qfq"}
    assert all(isinstance(r["closed"], bool) and r["code"] == HK for r in rows)
    result = run("tail", "--kind", "rt", HK, "--limit", "3", "--port", port)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["time", "code", "state"] and len(lines) == 4


def test_record_kline_closed_only(opend: BackgroundSimulator, tmp_path: Path) -> None:
    out = tmp_path / "bars.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiofutu", "record", "--kind", "kline", HK, "--closed-only",
         "--limit", "2", "--out", str(out), "--port", str(opend.port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    try:

        def subscribed() -> bool:
            return any((HK, 11) in s.pushes for s in opend.server.sessions())

        deadline = time.monotonic() + 30
        while not opend.call(subscribed):
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
            time.sleep(0.05)

        def close_minutes() -> None:
            sec = opend.server.market.security(HK)
            for minute in (1, 2):
                opend.server.push_ticks(sec, sec.generate(1, now=time.time() + 60 * minute))

        opend.call(close_minutes)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "wrote 2 kline rows" in err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["closed"] for r in rows] == [True, True]
    assert rows[0]["time"] < rows[1]["time"]

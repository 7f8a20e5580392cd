"""``aiofutu kline CODE --start D --end D`` end to end, as subprocesses against a simulator."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import aiofutu
from aiofutu.sim.kinds.history import history_bars
from aiofutu.testing import BackgroundSimulator, background_simulator

ENV = {k: v for k, v in os.environ.items() if not k.startswith("AIOFUTU_")}
SEED = 5
RANGE = ["--start", "2024-01-02", "--end", "2024-01-05"]


def run(*args: str, **kwargs: Any) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "aiofutu", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
        **kwargs,
    )


@pytest.fixture(scope="module")
def opend() -> Iterator[BackgroundSimulator]:
    with background_simulator(tick_rate=0, seed=SEED) as sim:
        yield sim


def _times(code: str, kl_type: int, begin: str, end: str) -> list[str]:
    market, local = aiofutu.parse_code(code)
    return [b.time for b in history_bars(SEED, market, local, kl_type, begin, end)]


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "parquet"])
def test_kline_formats(opend: BackgroundSimulator, fmt: str, tmp_path: Path) -> None:
    out = tmp_path / "bars.parquet"
    extra = ["--out", str(out)] if fmt == "parquet" else []
    port = ["--port", str(opend.port)]
    result = run("kline", "HK.00700", "--ktype", "K_1M", *RANGE, "--format", fmt, *port, *extra)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress line off a terminal
    times = _times("HK.00700", 1, "2024-01-02 00:00:00", "2024-01-05 23:59:59")
    assert len(times) == 4 * 330  # two pages
    if fmt == "table":
        lines = result.stdout.splitlines()
        assert lines[0].startswith("HK.00700 K_1M 2024-01-02 00:00:00 .. 2024-01-05 23:59:59")
        assert lines[1].split()[:5] == ["time", "open", "high", "low", "close"]
        assert [" ".join(line.split()[:2]) for line in lines[2:]] == times
    elif fmt == "json":
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        assert [r["time"] for r in rows] == times
        assert all(r["pe"] is None for r in rows)
    else:
        if fmt == "csv":
            df = pl.read_csv(result.stdout.encode())
        else:
            df = pl.read_parquet(out)
        assert df.columns[:3] == ["code", "name", "time_key"]
        assert df["time_key"].to_list() == times
        assert set(df["name"].to_list()) == {"Tencent"}


def test_kline_fields_and_max_count(opend: BackgroundSimulator) -> None:
    result = run(
        "kline", "US.AAPL", "--ktype", "K_DAY", "--start", "2024-01-01", "--end", "2024-06-30",
        "--fields", "close,time_key", "--max-count", "7", "--format", "csv",
        "--port", str(opend.port),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    df = pl.read_csv(result.stdout.encode())
    assert df.columns == ["code", "name", "close", "time_key"]
    assert (
        df["time_key"].to_list()
        == _times("US.AAPL", 2, "2024-01-01 00:00:00", "2024-06-30 23:59:59")[:7]
    )


def test_kline_progress_on_a_terminal(opend: BackgroundSimulator) -> None:
    leader, follower = pty.openpty()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "aiofutu", "kline", "HK.00700", "--ktype", "K_1M", *RANGE,
             "--format", "json", "--port", str(opend.port)],
            stdout=subprocess.PIPE, stderr=follower, text=True, timeout=60, env=ENV,
        )  # fmt: skip
        os.close(follower)
        follower = -1
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert result.returncode == 0
    text = seen.decode()
    assert "1,000 bars, 1 pages" in text
    assert "1,320 bars, 2 pages, to 2024-01-05 16:00:00 (" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ktype", "K_2M", "--start", "2024-01-01"], "K_2M"),
        (["--autype", "sideways", "--start", "2024-01-01"], "sideways"),
        (["--num", "5", "--start", "2024-01-01"], "exclude each other"),
        (["--start", "2024-02-01", "--end", "2024-01-01"], "is after end"),
        (["--start", "2024-13-01"], "is not 'YYYY-MM-DD'"),
        (["--fields", "open,colour"], "unknown field 'colour'"),
        (["--max-count", "0"], "must be an integer >= 1"),
        (["--format", "parquet", "--start", "2024-01-01"], "--format parquet needs --out"),
    ],
)
def test_kline_bad_input_is_one_line_before_connecting(args: list[str], message: str) -> None:
    result = run("kline", "HK.00700", *args, "--port", "1")  # nothing listens on port 1
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_kline_without_a_range_is_the_latest_bars(opend: BackgroundSimulator) -> None:
    result = run("kline", "HK.00700", "--num", "5", "--format", "csv", "--port", str(opend.port))
    assert result.returncode == 0, result.stderr
    assert pl.read_csv(result.stdout.encode()).height == 5  # get_cur_kline, not a range


def test_kline_unknown_code_is_opend_s_refusal(opend: BackgroundSimulator) -> None:
    result = run("kline", "HK.99999", *RANGE, "--port", str(opend.port))
    assert result.returncode == 1
    assert "unknown stock HK.99999" in result.stderr

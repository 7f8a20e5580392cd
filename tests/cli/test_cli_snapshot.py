"""``aiofutu snapshot CODE...`` end to end, as subprocesses against a running simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from aiofutu.quotes._snapshot_frame import SNAPSHOT_COLUMNS
from aiofutu.testing import BackgroundSimulator, background_simulator

CODES = ["HK.00700", "US.AAPL", "HK.800000"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("AIOFUTU_")}


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "aiofutu", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env or ENV,
    )


@pytest.fixture(scope="module")
def opend() -> Iterator[BackgroundSimulator]:
    with background_simulator(tick_rate=0, seed=5) as sim:
        yield sim


def _last_prices(sim: BackgroundSimulator) -> list[float]:
    return [sim.call(sim.server.market.security, c).latest().price for c in CODES]


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "parquet"])
def test_snapshot_formats(opend: BackgroundSimulator, fmt: str, tmp_path: Path) -> None:
    out = tmp_path / "snap.parquet"
    extra = ["--out", str(out)] if fmt == "parquet" else []
    result = run("snapshot", *CODES, "--format", fmt, "--port", str(opend.port), *extra)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    prices = _last_prices(opend)
    if fmt == "table":
        lines = result.stdout.splitlines()
        assert lines[0].split()[:3] == ["code", "name", "last"]
        assert [line.split()[0] for line in lines[1:]] == CODES
        assert "Tencent" in lines[1]
    elif fmt == "json":
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        assert [r["code"] for r in rows] == CODES
        assert [r["last_price"] for r in rows] == prices
        assert rows[0]["equity"]["issued_shares"] > 0
    else:
        frame = pl.read_parquet(out) if fmt == "parquet" else pl.read_csv(result.stdout.encode())
        assert tuple(frame.columns) == SNAPSHOT_COLUMNS
        assert frame["code"].to_list() == CODES
        assert frame["last_price"].to_list() == prices


def test_snapshot_errors_are_one_line(opend: BackgroundSimulator, tmp_path: Path) -> None:
    bad = run("snapshot", "00700", "--port", str(opend.port))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert len(bad.stderr.splitlines()) == 1 and "00700" in bad.stderr
    unknown = run("snapshot", "HK.99999", "--port", str(opend.port))
    assert unknown.returncode == 1 and "Traceback" not in unknown.stderr
    assert len(unknown.stderr.splitlines()) == 1 and "HK.99999" in unknown.stderr
    parquet = run("snapshot", "HK.00700", "--format", "parquet", "--port", str(opend.port))
    assert parquet.returncode == 2 and "--out" in parquet.stderr
    nowhere = run("snapshot", "HK.00700", "--out", str(tmp_path / "no" / "x.csv"))
    assert nowhere.returncode == 2 and "directory" in nowhere.stderr


def test_snapshot_reads_the_environment(opend: BackgroundSimulator) -> None:
    env = {**ENV, "AIOFUTU_PORT": str(opend.port)}
    result = run("snapshot", "HK.00700", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["code"] == "HK.00700"

"""``aiofutu record --kind quote|order_book|kline ...`` writes as it records, like the tape does.

Against a live simulator over a real socket: a recording killed with SIGKILL keeps the rows
flushed before the kill (read back from the file, or from ``FILE.parts/`` for Parquet), in
order and equal to the simulator's tape; one stopped with SIGINT is complete and says how many
rows it wrote; a long recording's Parquet parts merge into one file with widened columns.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest

from aiofutu.record import RowSink

from .test_record import ENV, HK, history

if TYPE_CHECKING:
    from collections.abc import Iterator

    from aiofutu.testing import BackgroundSimulator

from aiofutu.testing import background_simulator


@pytest.fixture
def live() -> Iterator[BackgroundSimulator]:
    """Live ticks at 20 per second: a quote, a book and a bar update with each (a simulator
    per test: the recorder's subscription is the only one)."""
    with background_simulator(tick_rate=20, seed=11) as sim:
        yield sim


def _record(sim: BackgroundSimulator, out: Path, sig: int, *kind: str) -> str:
    argv = [sys.executable, "-m", "aiofutu", "record", *kind, HK, "--out", str(out)]
    with subprocess.Popen(
        [*argv, "--port", str(sim.port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    ) as proc:
        deadline = time.monotonic() + 10
        while not sim.call(sim.server.used_quota):
            assert time.monotonic() < deadline, "the recorder never subscribed"
            time.sleep(0.05)
        time.sleep(2.5)  # ~50 updates, flushed every second
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=15)
    return err


def _rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    if path.suffix == ".csv":
        return pl.read_csv(path).to_dicts()
    if path.is_dir():  # the parts of a killed Parquet recording
        parts = sorted(path.iterdir())
        return pl.concat([pl.read_parquet(p) for p in parts], how="diagonal_relaxed").to_dicts()
    return pl.read_parquet(path).to_dicts()


def _prices(sim: BackgroundSimulator) -> set[float]:
    return {t.price for t in sim.call(sim.server.market.history, HK)}


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_sigkill_keeps_the_quotes_flushed(
    live: BackgroundSimulator, tmp_path: Path, suffix: str
) -> None:
    out = tmp_path / f"quotes{suffix}"
    _record(live, out, signal.SIGKILL, "--kind", "quote")
    rows = _rows(tmp_path / "quotes.parquet.parts" if suffix == ".parquet" else out)
    assert len(rows) >= 15  # at least the first second's worth
    assert {r["code"] for r in rows} == {HK}
    volumes = [int(r["volume"]) for r in rows]
    assert volumes == sorted(volumes)  # the day's volume only grows: in order
    assert {float(r["last_price"]) for r in rows} <= _prices(live)  # folded from the tape


def test_sigkill_keeps_the_bars_flushed(live: BackgroundSimulator, tmp_path: Path) -> None:
    out = tmp_path / "bars.parquet"
    _record(live, out, signal.SIGKILL, "--kind", "kline", "--ktype", "K_1M")
    rows = _rows(tmp_path / "bars.parquet.parts")
    assert len(rows) >= 15
    assert {float(r["close"]) for r in rows} <= _prices(live)
    assert [r["time"] for r in rows] == sorted(r["time"] for r in rows)


def test_sigint_completes_the_book_file(live: BackgroundSimulator, tmp_path: Path) -> None:
    out = tmp_path / "books.parquet"
    err = _record(live, out, signal.SIGINT, "--kind", "order_book")
    rows = _rows(out)
    assert err == f"aiofutu record: wrote {len(rows)} order_book rows to {out}\n"
    assert len(rows) >= 30
    assert not (tmp_path / "books.parquet.parts").exists()
    assert all(json.loads(r["bids"]) and json.loads(r["asks"]) for r in rows)
    assert len(history(live)) > 0


def test_row_parts_merge_and_widen(tmp_path: Path) -> None:
    """Many flushes leave few parts; a column empty in one part and typed in another merges."""
    sink = RowSink(tmp_path / "long.parquet")
    sink.check()
    sink.open()
    rows = [{"n": i, "x": None if i < 50 else f"v{i}"} for i in range(300)]
    for i in range(0, 300, 3):
        sink.append(rows[i : i + 3])  # 100 flushes
    assert len(os.listdir(tmp_path / "long.parquet.parts")) < 32
    assert sink.close([]) == 300
    assert pl.read_parquet(tmp_path / "long.parquet").to_dicts() == rows
    assert not (tmp_path / "long.parquet.parts").exists()
    csv = RowSink(tmp_path / "r.csv")
    csv.open()
    csv.append(rows[:2])
    csv.append(rows[2:4])
    assert csv.close(rows[4:6]) == 6
    assert (tmp_path / "r.csv").read_text().splitlines()[0] == "n,x"  # one header
    assert pl.read_csv(tmp_path / "r.csv")["n"].to_list() == list(range(6))

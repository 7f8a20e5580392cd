"""``aiofutu quote``, ``aiofutu book`` and ``tail``/``record --kind quote|order_book|broker``
end to end, as subprocesses against a simulator in a thread of this process."""

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

from aiofutu.quotes.basic import QUOTE_COLUMNS
from aiofutu.testing import BackgroundSimulator, background_simulator

HK, US = "HK.00700", "US.AAPL"
ENV = {k: v for k, v in os.environ.items() if not k.startswith("AIOFUTU_")}
BIDS = [(480.0, 1200, 4), (479.8, 300, 1), (479.6, 900, 2)]
ASKS = [(480.2, 500, 2), (480.4, 700, 3), (480.6, 100, 1)]


def run(*args: str, timeout: float = 30) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "aiofutu", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
    )


def one_line_error(result: Any, status: int, prefix: str) -> str:
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(prefix), line
    return str(line)


@pytest.fixture(scope="module")
def still() -> Iterator[BackgroundSimulator]:
    """No ticks: the states stand as the test sets them."""
    with background_simulator(tick_rate=0, seed=3, codes=(HK, US)) as sim:
        sim.call(sim.server.set_quote, HK, last_price=481.4, volume=123_456)
        sim.call(sim.server.set_order_book, HK, BIDS, ASKS)
        yield sim


@pytest.fixture(scope="module")
def live() -> Iterator[BackgroundSimulator]:
    with background_simulator(tick_rate=30, seed=4, codes=(HK, US)) as sim:
        yield sim


def test_quote_json_has_the_simulators_values(still: BackgroundSimulator) -> None:
    result = run("quote", HK, US, "--format", "json", "--port", str(still.port))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["code"] for r in rows] == [HK, US]
    assert rows[0]["last_price"] == 481.4 and rows[0]["volume"] == 123_456


def test_quote_table_csv_and_parquet(still: BackgroundSimulator, tmp_path: Path) -> None:
    port = str(still.port)
    table = run("quote", HK, US, "--port", port)
    assert table.returncode == 0, table.stderr
    head, *lines = table.stdout.splitlines()
    assert head.split()[:3] == ["update_time", "code", "last"] and len(lines) == 2
    assert lines[0].split()[2:4] == [HK, "481.4"]
    csv = run("quote", HK, "--format", "csv", "--port", port)
    assert csv.stdout.splitlines()[0].split(",") == list(QUOTE_COLUMNS)
    out = tmp_path / "q.parquet"
    pq = run("quote", HK, US, "--format", "parquet", "--out", str(out), "--port", port)
    assert pq.returncode == 0, pq.stderr
    df = pl.read_parquet(out)
    assert tuple(df.columns) == QUOTE_COLUMNS and df["code"].to_list() == [HK, US]
    assert df["last_price"][0] == 481.4


def test_quote_errors_are_one_line(still: BackgroundSimulator) -> None:
    one_line_error(run("quote", "HK."), 2, "aiofutu quote: error: invalid security code")
    one_line_error(
        run("quote", HK, "--format", "parquet"), 2, "aiofutu quote: error: --format parquet needs"
    )


def _ladder_rows(text: str) -> list[tuple[str, float, int, int]]:
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] in ("ask", "bid"):
            rows.append((parts[0], float(parts[1]), int(parts[2]), int(parts[3])))
    return rows


@pytest.mark.parametrize("once", [["--once"], []])  # not a terminal: one ladder either way
def test_book_prints_one_ladder(still: BackgroundSimulator, once: list[str]) -> None:
    result = run("book", HK, "--num", "2", *once, "--port", str(still.port), timeout=20)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith(HK)
    assert _ladder_rows(result.stdout) == [
        ("ask", 480.4, 700, 3),
        ("ask", 480.2, 500, 2),
        ("bid", 480.0, 1200, 4),
        ("bid", 479.8, 300, 1),
    ]
    assert "\033[" not in result.stdout  # no cursor movement into a file or a pipe


def test_book_num_beyond_the_markets_depth_is_one_line() -> None:
    line = one_line_error(run("book", "SH.600519", "--num", "8"), 2, "aiofutu book: error: ")
    assert "between 1 and 5" in line


def test_tail_order_book_shows_the_set_book(still: BackgroundSimulator) -> None:
    result = run(
        "tail", "--kind", "order_book", HK, "--limit", "1", "--format", "json",
        "--port", str(still.port),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (book,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(b["price"], b["volume"], b["order_count"]) for b in book["bids"]] == BIDS
    assert [(a["price"], a["volume"], a["order_count"]) for a in book["asks"]] == ASKS


@pytest.mark.parametrize("kind", ["quote", "order_book", "broker"])
def test_tail_each_state_kind(live: BackgroundSimulator, kind: str) -> None:
    result = run("tail", "--kind", kind, HK, "--limit", "3", "--port", str(live.port))
    assert result.returncode == 0, result.stderr
    head, *lines = result.stdout.splitlines()
    assert len(lines) == 3 and all(HK in line for line in lines), result.stdout
    assert "code" in head.split()


def test_tail_broker_of_a_us_code_is_one_line() -> None:
    one_line_error(
        run("tail", "--kind", "broker", US), 2, "aiofutu tail: error: the broker queue is"
    )


@pytest.mark.parametrize(("kind", "suffix"), [("order_book", "parquet"), ("quote", "csv"),
                                              ("broker", "jsonl")])  # fmt: skip
def test_record_every_state(
    live: BackgroundSimulator, tmp_path: Path, kind: str, suffix: str
) -> None:
    out = tmp_path / f"states.{suffix}"
    result = run("record", "--kind", kind, HK, "--out", str(out), "--limit", "6",
                 "--port", str(live.port))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"wrote 6 {kind} rows" in result.stderr
    if suffix == "jsonl":
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == 6 and all(r["code"] == HK for r in rows)
        assert all(isinstance(r["bids"], list) for r in rows)
        return
    df = pl.read_parquet(out) if suffix == "parquet" else pl.read_csv(out)
    assert df.height == 6 and df["code"].to_list() == [HK] * 6
    if kind == "order_book":
        first = json.loads(df["bids"][0])
        assert first and {"price", "volume", "order_count"} <= set(first[0])


# ---- on a terminal: redrawn in place ---------------------------------------------------------

HOME, SHOW_CURSOR = b"\033[H", b"\033[?25h"


def _on_a_terminal(args: list[str], frames: int, interrupt: bool) -> tuple[int, bytes]:
    """Run ``aiofutu ARGS`` with stdout on a pseudo-terminal until ``frames`` redraws (then
    Ctrl-C when ``interrupt``) or its exit; returns its status and all it wrote."""
    import pty
    import select
    import signal
    import time

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiofutu", *args],
        stdout=slave,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env=ENV,
    )
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline and out.count(HOME) < frames:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    out += os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
            elif proc.poll() is not None:
                break
        if interrupt:
            proc.send_signal(signal.SIGINT)
        status = proc.wait(10)
        while select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return status, out


def test_book_is_redrawn_in_place_until_ctrl_c(live: BackgroundSimulator) -> None:
    status, out = _on_a_terminal(["book", HK, "--num", "3", "--port", str(live.port)], 4, True)
    assert status == 130
    assert out.count(HOME) >= 4 and out.endswith(SHOW_CURSOR)
    last = out.rsplit(HOME, 1)[1].decode().replace("\033[K", "")
    sides = [row[0] for row in _ladder_rows(last)]
    assert sides == ["ask"] * 3 + ["bid"] * 3
    prices = [row[1] for row in _ladder_rows(last)]
    assert prices == sorted(prices, reverse=True)  # asks above bids, best in the middle


def test_demo_board_on_a_terminal() -> None:
    status, out = _on_a_terminal(["demo", "--limit", "40", "--rate", "20"], 10**6, False)
    assert status == 0
    last = out.rsplit(HOME, 1)[1].decode().replace("\033[K", "")
    assert "ticks 40" in last.splitlines()[0]
    for code in ("HK.00700", "US.AAPL", "HK.09988", "SH.600519"):
        assert any(line.split()[2:3] == [code] for line in last.splitlines()), last  # a quote
    assert len(_ladder_rows(last)) == 10 and "tape" in last
    assert out.endswith(SHOW_CURSOR)

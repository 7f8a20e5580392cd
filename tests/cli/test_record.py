"""``aiofutu record``: its output checked up front, written as it grows (a kill keeps it), its
format taken from the suffix, and ``--reconnect`` across a cut link (issue #16 items 4, 11, 19).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import polars as pl
import pytest

import aiofutu
from aiofutu import Ticker
from aiofutu.record import CSV_COLUMNS, RECORD_COLUMNS, _Sink, read_recording
from aiofutu.testing import BackgroundSimulator, background_simulator

HK = "HK.00700"
US = "US.AAPL"
LOW32 = 0xFFFFFFFF
ENV = {k: v for k, v in os.environ.items() if not k.startswith("AIOFUTU_")}


def run(*args: str, timeout: float = 20) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "aiofutu", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
    )


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "aiofutu", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )


def one_line_error(result: Any, status: int, prefix: str) -> str:
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(prefix), lines[0]
    return str(lines[0])


def wait_watched(sim: BackgroundSimulator, n: int = 1, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while len(sim.call(sim.server.watched_codes)) < n:
        assert time.monotonic() < deadline, "the recorder never subscribed"
        time.sleep(0.05)


def history(sim: BackgroundSimulator, code: str = HK) -> list[int]:
    return [t.sequence for t in sim.call(sim.server.market.history, code)]


@pytest.fixture(scope="module")
def live() -> Iterator[BackgroundSimulator]:
    """Live ticks at 20 per second per code."""
    with background_simulator(tick_rate=20, seed=5) as sim:
        yield sim


@pytest.fixture
def quiet() -> Iterator[BackgroundSimulator]:
    """No live ticks: the test makes every one (a fresh simulator: it cuts links)."""
    with background_simulator(tick_rate=0, seed=7) as sim:
        yield sim


# ---- the output is checked before anything else ------------------------------------------


@pytest.mark.parametrize("out", ["/proc/x.parquet", "/sys/x.csv"])
def test_unwritable_output_fails_at_once(live: BackgroundSimulator, out: str) -> None:
    started = time.monotonic()
    result = run("record", HK, "--out", out, "--duration", "30", "--port", str(live.port))
    line = one_line_error(result, 2, f"aiofutu record: error: cannot write {out!r}")
    assert "Errno" not in line
    assert time.monotonic() - started < 10  # not after the 30 s session
    assert HK not in live.call(live.server.watched_codes)


def test_unknown_suffix_is_refused(live: BackgroundSimulator, tmp_path: Path) -> None:
    out = tmp_path / "r.txt"
    result = run("record", HK, "--out", str(out), "--limit", "1", "--port", str(live.port))
    one_line_error(result, 2, "aiofutu record: error: cannot tell the format of")
    assert not out.exists()


def test_leftover_parts_are_not_overwritten(live: BackgroundSimulator, tmp_path: Path) -> None:
    out = tmp_path / "r.parquet"
    (tmp_path / "r.parquet.parts").mkdir()
    result = run("record", HK, "--out", str(out), "--limit", "1", "--port", str(live.port))
    one_line_error(result, 2, "aiofutu record: error:")
    assert "unfinished recording" in result.stderr


# ---- formats by suffix ---------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl", ".json"])
def test_format_follows_the_suffix(live: BackgroundSimulator, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"r{suffix}"
    result = run("record", HK, "--out", str(out), "--limit", "30", "--port", str(live.port))
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"aiofutu record: wrote 30 ticks to {out}\n"
    if suffix == ".parquet":
        assert pl.read_parquet(out).columns == list(RECORD_COLUMNS)
        assert not (tmp_path / "r.parquet.parts").exists()  # joined and removed
    elif suffix == ".csv":
        assert pl.read_csv(out).columns == list(CSV_COLUMNS)
    else:
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == 30 and set(rows[0]) == set(RECORD_COLUMNS)
    ticks = read_recording(out)
    assert len(ticks) == 30
    held = history(live)
    assert [t.sequence for t in ticks] == held[held.index(ticks[0].sequence) :][:30]


# ---- a recording cut short keeps what it recorded ------------------------------------------


def _kill_after_ticks(sim: BackgroundSimulator, out: Path, sig: int) -> str:
    with start("record", HK, "--out", str(out), "--port", str(sim.port)) as proc:
        wait_watched(sim)
        time.sleep(2.5)  # ~50 ticks, flushed every second
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=15)
    return err


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_sigkill_keeps_the_ticks_flushed(
    live: BackgroundSimulator, tmp_path: Path, suffix: str
) -> None:
    out = tmp_path / f"killed{suffix}"
    _kill_after_ticks(live, out, signal.SIGKILL)
    source = tmp_path / "killed.parquet.parts" if suffix == ".parquet" else out
    ticks = read_recording(source)
    assert len(ticks) >= 15  # at least the first second's worth
    sequences = [t.sequence for t in ticks]
    held = history(live)
    start_at = held.index(sequences[0])
    assert sequences == held[start_at : start_at + len(sequences)]  # in order, none lost


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_sigint_completes_the_file(live: BackgroundSimulator, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"stopped{suffix}"
    err = _kill_after_ticks(live, out, signal.SIGINT)
    ticks = read_recording(out)
    assert err == f"aiofutu record: wrote {len(ticks)} ticks to {out}\n"
    assert len(ticks) >= 30
    assert not (tmp_path / "stopped.parquet.parts").exists()


def test_parts_are_merged_and_a_cut_merge_reads_once(tmp_path: Path) -> None:
    """A long session leaves few part files; a kill in the middle of a merge (the merged part
    written, the small ones not yet removed) still reads every tick exactly once."""

    async def latest(port: int) -> list[Ticker]:
        async with aiofutu.connect("127.0.0.1", port) as client:
            await client.subscribe([HK], ["TICKER"], subscribe_push=False)
            return await client.get_rt_ticker(HK, 1000)

    with background_simulator(tick_rate=0) as sim:
        ticks = anyio.run(latest, sim.port)
    assert len(ticks) == 1000
    sink = _Sink(tmp_path / "long.parquet")
    sink.check()
    sink.open()
    for i in range(0, 1000, 5):
        sink.append(ticks[i : i + 5])  # 200 flushes
    parts = sorted((tmp_path / "long.parquet.parts").iterdir())
    assert len(parts) < 32
    assert read_recording(tmp_path / "long.parquet.parts") == ticks[:1000]
    # a merge cut short: a merged part plus the small parts it covers
    merged = pl.read_parquet(parts[-3:])
    first = int(parts[-3].name.split("-")[1])
    last = int(parts[-1].name.split("-")[2].split(".")[0])
    merged.write_parquet(tmp_path / "long.parquet.parts" / f"part-{first:012d}-{last:012d}.parquet")
    assert read_recording(tmp_path / "long.parquet.parts") == ticks[:1000]
    assert sink.close(ticks[:1000]) == 1000
    assert read_recording(tmp_path / "long.parquet") == ticks[:1000]
    assert not (tmp_path / "long.parquet.parts").exists()


# ---- --reconnect -----------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["record", "tail"])
def test_reconnect_survives_a_cut_with_the_backfill(
    quiet: BackgroundSimulator, tmp_path: Path, command: str
) -> None:
    out = tmp_path / "cut.jsonl"
    args = ["--out", str(out)] if command == "record" else ["--format", "json"]
    limit = "150" if command == "record" else "151"  # tail: and the latest tick on subscribe
    with start(command, HK, *args, "--limit", limit, "--reconnect", "--port", str(quiet.port)) as p:
        wait_watched(quiet)
        if command == "tail":
            assert p.stdout is not None
            p.stdout.readline()
        quiet.call(quiet.server.burst, HK, 100)
        time.sleep(0.5)
        quiet.call(quiet.server.drop_connections)  # OpenD goes away...
        quiet.call(quiet.server.burst, HK, 50)  # ...while the market moves on
        stdout, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    lines = err.splitlines()
    assert lines[0].startswith(f"aiofutu {command}: link to OpenD lost (")
    assert lines[0].endswith("; reconnecting")
    assert lines[1] == f"aiofutu {command}: reconnected (attempt 1)"
    if command == "record":
        assert lines[2:] == [f"aiofutu record: wrote 150 ticks to {out}"]
        ticks = read_recording(out)
    else:
        assert lines[2:] == []
        ticks = [Ticker.model_validate_json(line) for line in stdout.splitlines()]
    assert len(ticks) == 150
    counters = [t.sequence & LOW32 for t in ticks]
    assert counters == list(range(counters[0], counters[0] + 150))  # no loss, no repeat
    assert all(a.sequence < b.sequence for a, b in itertools.pairwise(ticks))


@pytest.mark.parametrize("command", ["record", "tail"])
def test_a_dropped_link_is_one_line_without_reconnect(command: str, tmp_path: Path) -> None:
    args = ["--out", str(tmp_path / "d.parquet")] if command == "record" else []
    with background_simulator(tick_rate=0, scenario="drop", drop_after_frames=6) as sim:
        with start(command, HK, *args, "--port", str(sim.port)) as proc:
            wait_watched(sim)
            sim.call(sim.server.burst, HK, 20)
            _, err = proc.communicate(timeout=20)
    lines = err.splitlines()
    if command == "record":  # what was recorded is written, then the error
        assert lines[0].startswith("aiofutu record: wrote "), err
        lines = lines[1:]
    assert proc.returncode == 1, err
    assert lines == [f"aiofutu {command}: error: OpenD closed the connection"], err

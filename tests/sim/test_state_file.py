"""``SimConfig(state_file=...)``: a restarted simulator continues its tape (counters, prices,
recent ticks) instead of starting over; without a state file nothing changes."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

import aiofutu
from aiofutu import sim

HK, US = "HK.00700", "US.AAPL"
LOW = 0xFFFFFFFF


async def _ticks(server: sim.Simulator, code: str, n: int) -> list[aiofutu.Ticker]:
    async with aiofutu.connect(server.host, server.port) as client:
        await client.subscribe([code], [aiofutu.SubType.TICKER])
        return await client.get_rt_ticker(code, n)


def _saved(path: Path) -> Any:
    return json.loads(path.read_bytes())


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def _counters(ticks: list[aiofutu.Ticker]) -> list[int]:
    return [t.sequence & LOW for t in ticks]


async def test_a_restart_continues_counters_and_prices(tmp_path: Path) -> None:
    state = tmp_path / "sim.json"
    async with sim.serve(tick_rate=0, state_file=state, codes=(HK,)) as server:
        assert state.exists()  # written at start: an unwritable path fails at once
        await server.burst(HK, 300)
        first = await _ticks(server, HK, 1000)
        aapl = await _ticks(server, US, 5)
    async with sim.serve(tick_rate=0, state_file=state, codes=(HK,)) as server:
        kept = await _ticks(server, HK, 1000)
        await server.burst(HK, 20)
        after = await _ticks(server, HK, 1000)
        aapl_kept = await _ticks(server, US, 5)
    assert kept == first  # the same tape, tick for tick
    last = _counters(first)[-1]
    assert _counters(after[-20:]) == list(range(last + 1, last + 21))
    assert after[:-20] == first[20:]  # one contiguous tape across the restart
    assert after[-20].timestamp >= first[-1].timestamp
    assert abs(after[-20].price - first[-1].price) <= 1.0  # the walk goes on from its price
    assert aapl_kept == aapl  # also the securities that only had history


async def test_without_a_state_file_every_start_is_a_new_market(tmp_path: Path) -> None:
    runs = []
    for _ in range(2):
        async with sim.serve(tick_rate=0, codes=(HK,)) as server:
            await server.burst(HK, 300)
            runs.append(await _ticks(server, HK, 1000))
    assert _counters(runs[0]) == _counters(runs[1])  # same seed: the same counters again
    assert _files(tmp_path) == []


async def test_live_ticks_continue_after_restart_and_the_client_sees_no_hole(
    tmp_path: Path,
) -> None:
    state = tmp_path / "sim.json"
    async with (
        sim.serve(tick_rate=0, state_file=state) as server,
        aiofutu.connect(server.host, server.port) as client,
        client.ticker_stream(HK, is_first_push=False) as stream,
    ):
        await server.burst(HK, 50)
        before = [await anext(stream) for _ in range(50)]
    async with (
        sim.serve(tick_rate=0, state_file=state) as server,
        aiofutu.connect(server.host, server.port) as client,
        client.ticker_stream(HK, is_first_push=False) as stream,
    ):
        await server.burst(HK, 50)
        after = [await anext(stream) for _ in range(50)]
    start = _counters(before)[0]
    assert _counters(before + after) == list(range(start, start + 100))


async def test_state_is_saved_periodically_and_atomically(tmp_path: Path) -> None:
    state = tmp_path / "sim.json"
    async with sim.serve(tick_rate=0, state_file=state, state_interval=0.05) as server:
        await server.burst(HK, 10)
        counter = server.market.security(HK).counter
        with anyio.fail_after(5):
            while _saved(state)["securities"][HK]["counter"] != counter:  # noqa: ASYNC110
                await anyio.sleep(0.02)  # polling the file the simulator writes
        assert _files(tmp_path) == ["sim.json"]  # no temp file left
        document = _saved(state)
        assert document["format"] == "aiofutu-sim-state" and document["version"] == 1


async def test_state_is_saved_when_the_simulator_is_cancelled(tmp_path: Path) -> None:
    state = tmp_path / "sim.json"
    with anyio.CancelScope() as scope:  # as Ctrl-C ends `aiofutu sim`
        async with sim.serve(tick_rate=0, state_file=state, state_interval=0) as server:
            await server.burst(HK, 10)
            counter = server.market.security(HK).counter
            scope.cancel()
            await anyio.sleep_forever()
    assert _saved(state)["securities"][HK]["counter"] == counter


async def test_a_file_that_is_not_a_state_file_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "notes.json"
    state.write_text('{"hello": 1}')
    with pytest.raises(aiofutu.ConfigurationError, match="not a simulator state file"):
        async with sim.serve(tick_rate=0, state_file=state):
            pass
    assert state.read_text() == '{"hello": 1}'  # left as it was


async def test_an_unwritable_state_file_fails_at_start(tmp_path: Path) -> None:
    missing = tmp_path / "no such dir" / "sim.json"
    with pytest.raises(aiofutu.ConfigurationError, match="cannot write the simulator state"):
        async with sim.serve(tick_rate=0, state_file=missing):
            pass


def test_state_file_options_are_checked() -> None:
    with pytest.raises(ValueError, match="state_interval"):
        sim.SimConfig(state_file="s.json", state_interval=-1)
    with pytest.raises(ValueError, match="state_interval"):
        sim.SimConfig(state_file="s.json", state_interval=float("nan"))
    with pytest.raises(ValueError, match="replay"):
        sim.SimConfig(state_file="s.json", replay="r.parquet")
    with pytest.raises(ValueError, match="file path"):
        sim.SimConfig(state_file=3)  # type: ignore[arg-type]


def test_cli_sim_state_flag(tmp_path: Path) -> None:
    """``aiofutu sim --state FILE``, stopped with Ctrl-C and started again: the HK trade counter
    goes on from where it was (the issue's 59247 -> 59147 no longer happens)."""
    state = tmp_path / "sim.json"

    def run() -> list[aiofutu.Ticker]:
        argv = [sys.executable, "-m", "aiofutu", "sim", "--port", "0", "--rate", "50"]
        command = [*argv, "--codes", HK, "--state", str(state)]
        with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as proc:
            try:
                assert proc.stderr is not None
                line = proc.stderr.readline()  # "aiofutu sim: listening on 127.0.0.1:PORT (...)"
                found = re.search(r"listening on [\d.]+:(\d+)", line)
                assert found, line
                ticks = anyio.run(_fetch, int(found[1]))
            finally:
                proc.send_signal(signal.SIGINT)
                _, rest = proc.communicate(timeout=20)
        assert proc.returncode in (0, 130), rest
        return ticks

    first = run()
    saved = _saved(state)["securities"][HK]["counter"]  # written as it stopped
    assert saved >= _counters(first)[-1]
    second = run()
    counters = _counters(second)
    assert counters == list(range(counters[0], counters[0] + len(counters)))
    assert counters[-1] > saved  # above the last counter of the previous run
    # the previous run's ticks are still on the tape, unchanged (time and sequence alike)
    kept = {t.sequence for t in second}
    assert [t.sequence for t in first if t.sequence & LOW >= counters[0]] == sorted(
        s for s in kept if s & LOW <= _counters(first)[-1]
    )
    assert any(t.sequence in kept for t in first)


async def _fetch(port: int) -> list[aiofutu.Ticker]:
    async with aiofutu.connect("127.0.0.1", port) as client:
        await client.subscribe([HK], [aiofutu.SubType.TICKER])
        await anyio.sleep(0.3)  # some live ticks
        return await client.get_rt_ticker(HK, 100)

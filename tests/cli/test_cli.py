"""``python -m aiofutu ...`` end to end, as subprocesses against running simulators.

The simulators run in threads of this process (``background_simulator``), except where the
``sim`` command itself is under test. Every user error must end with exactly one line on stderr
and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from aiofutu import Ticker
from aiofutu.cli import main
from aiofutu.record import RECORD_COLUMNS, read_recording
from aiofutu.testing import BackgroundSimulator, background_simulator

HK = "HK.00700"
US = "US.AAPL"
BURST = 40  # every push registration is answered with this many ticks
ANSI = "\033["
ENV = {k: v for k, v in os.environ.items() if not k.startswith("AIOFUTU_")}


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 20) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "aiofutu", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or ENV,
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


def json_ticks(stdout: str) -> list[Ticker]:
    return [Ticker.model_validate_json(line) for line in stdout.splitlines()]


def _sdk_ticker_columns() -> list[str]:
    """The column list of the official SDK's get_rt_ticker, read from its installed source."""
    import inspect

    from futu.quote.open_quote_context import OpenQuoteContext

    source = inspect.getsource(OpenQuoteContext.get_rt_ticker)
    match = re.search(r"col_list\s*=\s*\[(.*?)\]", source, re.DOTALL)
    assert match, "the SDK's get_rt_ticker no longer lists col_list"
    return re.findall(r"[\'\"](\w+)[\'\"]", match.group(1))


SDK_TICKER_COLUMNS = _sdk_ticker_columns()


@pytest.fixture(scope="module")
def opend() -> Iterator[BackgroundSimulator]:
    with background_simulator(tick_rate=0, burst=BURST, seed=3) as sim:
        yield sim


@pytest.fixture(scope="module")
def no_quota() -> Iterator[BackgroundSimulator]:
    with background_simulator(tick_rate=0, scenario="quota") as sim:
        yield sim


@pytest.fixture(scope="module")
def dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def history(sim: BackgroundSimulator, code: str = HK) -> list[int]:
    return [t.sequence for t in sim.call(sim.server.market.history, code)]


# ---- help ----------------------------------------------------------------------------------


def test_module_help() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("tail", "ticker", "record", "sim", "demo"):
        assert command in result.stdout


@pytest.mark.parametrize("command", ["tail", "ticker", "record", "sim", "demo"])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: aiofutu {command}" in out
    assert "--host" in out and "--port" in out


# ---- tail ----------------------------------------------------------------------------------


def test_tail_json_lines(opend: BackgroundSimulator) -> None:
    result = run("tail", HK, "--limit", "10", "--format", "json", "--port", str(opend.port))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    ticks = json_ticks(result.stdout)
    assert len(ticks) == 10
    assert {t.code for t in ticks} == {HK}
    assert all(a.sequence < b.sequence for a, b in itertools.pairwise(ticks))
    held = history(opend)
    assert [t.sequence for t in ticks] == held[held.index(ticks[0].sequence) :][:10]
    line = json.loads(result.stdout.splitlines()[0])
    assert set(line) == set(RECORD_COLUMNS)  # every field


def test_tail_table_and_colours(opend: BackgroundSimulator) -> None:
    result = run("tail", HK, US, "--limit", "6", "--port", str(opend.port))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["time", "code", "price", "volume", "direction", "type"]
    assert len(lines) == 7
    assert ANSI not in result.stdout  # not a terminal
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}  (HK|US)\.", x) for x in lines[1:])
    coloured = run("tail", HK, "--limit", "3", "--colour", "always", "--port", str(opend.port))
    assert coloured.returncode == 0
    assert coloured.stdout.count(ANSI) == 6  # a colour and a reset per row


def test_tail_stops_cleanly_on_ctrl_c(opend: BackgroundSimulator) -> None:
    with start("tail", HK, "--format", "json", "--port", str(opend.port)) as proc:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert Ticker.model_validate_json(first).code == HK
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 130
    assert err == ""
    assert len(out.splitlines()) <= BURST  # the first push and the burst, nothing after


# ---- ticker --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "parquet"])
def test_ticker_formats(opend: BackgroundSimulator, fmt: str, tmp_path: Path) -> None:
    out = tmp_path / f"ticks.{fmt}"
    args = ["ticker", HK, "--num", "5", "--format", fmt, "--port", str(opend.port)]
    result = run(*args, *(["--out", str(out)] if fmt == "parquet" else []))
    assert result.returncode == 0, result.stderr
    expected = history(opend)[-5:]  # ticker subscribes without push: no burst
    if fmt == "table":
        lines = result.stdout.splitlines()
        assert lines[0].split()[:3] == ["code", "time", "price"]
        assert [int(line.split()[-2]) for line in lines[1:]] == expected
    elif fmt == "json":
        assert [t.sequence for t in json_ticks(result.stdout)] == expected
    else:
        frame = pl.read_parquet(out) if fmt == "parquet" else pl.read_csv(result.stdout.encode())
        if fmt == "csv":  # the SDK's get_rt_ticker columns in its order, then the other fields
            assert frame.columns[: len(SDK_TICKER_COLUMNS)] == SDK_TICKER_COLUMNS
            assert sorted(frame.columns) == sorted(RECORD_COLUMNS)
        else:
            assert frame.columns == list(RECORD_COLUMNS)
        assert frame["sequence"].to_list() == expected
        if fmt == "parquet":
            assert [t.sequence for t in read_recording(out)] == expected


def test_ticker_out_file_and_environment(opend: BackgroundSimulator, tmp_path: Path) -> None:
    env = {**ENV, "AIOFUTU_HOST": "127.0.0.1", "AIOFUTU_PORT": str(opend.port)}
    out = tmp_path / "ticks.json"
    result = run("ticker", HK, "--num", "3", "--format", "json", "--out", str(out), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert [t.sequence for t in json_ticks(out.read_text())] == history(opend)[-3:]
    bad = run("ticker", HK, env={**ENV, "AIOFUTU_PORT": "eleven"})
    one_line_error(bad, 2, "aiofutu ticker: error: AIOFUTU_PORT must be a port number")


# ---- user errors ---------------------------------------------------------------------------

COMMANDS = {
    "tail": ["tail", HK],
    "ticker": ["ticker", HK],
    "record": ["record", HK, "--out", "{tmp}/x.parquet"],
}


def _args(command: str, tmp_path: Path) -> list[str]:
    return [a.replace("{tmp}", str(tmp_path)) for a in COMMANDS[command]]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_unreachable_opend(command: str, dead_port: int, tmp_path: Path) -> None:
    result = run(*_args(command, tmp_path), "--port", str(dead_port))
    line = one_line_error(result, 1, f"aiofutu {command}: error: cannot connect to OpenD")
    assert f"127.0.0.1:{dead_port}" in line
    assert not (tmp_path / "x.parquet").exists()


@pytest.mark.parametrize("command", list(COMMANDS))
def test_invalid_code(command: str, opend: BackgroundSimulator, tmp_path: Path) -> None:
    args = [("AAPL" if a == HK else a) for a in _args(command, tmp_path)]
    result = run(*args, "--port", str(opend.port))
    line = one_line_error(result, 2, f"aiofutu {command}: error: invalid security code 'AAPL'")
    assert "expected MARKET.CODE" in line


@pytest.mark.parametrize("command", list(COMMANDS))
def test_refused_subscription(command: str, no_quota: BackgroundSimulator, tmp_path: Path) -> None:
    result = run(*_args(command, tmp_path), "--port", str(no_quota.port))
    line = one_line_error(result, 1, f"aiofutu {command}: error: OpenD refused the subscription")
    assert "quota exhausted" in line
    assert not (tmp_path / "x.parquet").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ticker", HK, "--num", "0"], "aiofutu ticker: error: --num must be in 1..1000"),
        (["ticker", HK, "--num", "1001"], "aiofutu ticker: error: --num must be in 1..1000"),
        (["ticker", HK, "--format", "parquet"], "aiofutu ticker: error: --format parquet needs"),
        (["ticker", HK, "--num", "x"], "aiofutu ticker: error: argument --num: invalid int"),
        (["tail", HK, "--limit", "0"], "aiofutu tail: error: --limit must be >= 1"),
        (["record", HK], "aiofutu record: error: the following arguments are required: --out"),
        (["record", HK, "--out", "/nonexistent/dir/x.parquet"], "aiofutu record: error: cannot"),
        (["sim", "--scenario", "nope"], "aiofutu sim: error: argument --scenario: invalid"),
        (["sim", "--gap-every", "-1"], "aiofutu sim: error: gap_every must be >= 0"),
        (["sim", "--codes", "AAPL"], "aiofutu sim: error: invalid security code 'AAPL'"),
        (["sim", "--replay", "/nonexistent.parquet"], "aiofutu sim: error: recording"),
        ([], "aiofutu: error: the following arguments are required: command"),
    ],
)
def test_bad_command_lines(args: list[str], message: str) -> None:
    one_line_error(run(*args), 2, message)


# ---- record and replay ---------------------------------------------------------------------


def test_record_limit_and_duration(opend: BackgroundSimulator, tmp_path: Path) -> None:
    out = tmp_path / "limit.parquet"
    result = run("record", HK, "--out", str(out), "--limit", "25", "--port", str(opend.port))
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"aiofutu record: wrote 25 ticks to {out}\n"
    frame = pl.read_parquet(out)
    assert frame.columns == list(RECORD_COLUMNS)
    assert frame.height == 25
    out = tmp_path / "duration.parquet"
    started = time.monotonic()
    result = run("record", HK, "--out", str(out), "--duration", "0.5", "--port", str(opend.port))
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 5
    assert pl.read_parquet(out)["sequence"].to_list() == history(opend)[-BURST:]


def test_record_writes_its_file_on_ctrl_c(opend: BackgroundSimulator, tmp_path: Path) -> None:
    out = tmp_path / "ctrl-c.parquet"
    with start("record", HK, US, "--out", str(out), "--port", str(opend.port)) as proc:
        deadline = time.monotonic() + 10
        while len(opend.call(opend.server.watched_codes)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # the two bursts arrive
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert err == f"aiofutu record: wrote {2 * BURST} ticks to {out}\n"
    frame = pl.read_parquet(out)
    assert frame.filter(pl.col("code") == US)["sequence"].to_list() == history(opend, US)[-BURST:]


def _serve(*args: str) -> tuple[subprocess.Popen[str], int]:
    proc = start("sim", "--port", "0", *args)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    match = re.match(r"aiofutu sim: listening on 127\.0\.0\.1:(\d+)", line)
    assert match, line
    return proc, int(match.group(1))


def test_record_replay_record_is_identical(opend: BackgroundSimulator, tmp_path: Path) -> None:
    first, second = tmp_path / "first.parquet", tmp_path / "second.parquet"
    result = run("record", HK, US, "--out", str(first), "--limit", "60", "--port", str(opend.port))
    assert result.returncode == 0, result.stderr
    proc, port = _serve("--replay", str(first), "--speed", "0")
    with proc:
        result = run("record", HK, US, "--out", str(second), "--limit", "60", "--port", str(port))
        assert result.returncode == 0, result.stderr
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert "replay finished (60 ticks)" in err
    assert pl.read_parquet(first).height == 60
    assert pl.read_parquet(second).equals(pl.read_parquet(first))


def test_sim_command_scenario_and_burst_signal() -> None:
    proc, port = _serve("--rate", "0", "--scenario", "burst", "--burst", "10", "--hp-volume")
    with proc, start("tail", HK, "--format", "json", "--limit", "21", "--port", str(port)) as tail:
        assert tail.stdout is not None
        lines = [tail.stdout.readline() for _ in range(11)]  # the first push and the burst
        proc.send_signal(signal.SIGUSR1)  # another burst for every watched code
        rest, err = tail.communicate(timeout=10)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    assert tail.returncode == 0, err
    ticks = json_ticks("".join(lines) + rest)
    assert len(ticks) == 21
    assert all(t.hp_volume == t.volume for t in ticks)
    counters = [t.sequence & 0xFFFFFFFF for t in ticks[1:]]
    assert counters == list(range(counters[0], counters[0] + 20))
    assert proc.returncode == 130


# ---- demo ----------------------------------------------------------------------------------


def test_demo_limit() -> None:
    result = run("demo", "--limit", "5", "--format", "json", "--rate", "20")
    assert result.returncode == 0, result.stderr
    ticks = json_ticks(result.stdout)
    assert len(ticks) == 5
    assert {t.code for t in ticks} <= {"HK.00700", "US.AAPL", "HK.09988", "SH.600519"}
    assert result.stderr.startswith("aiofutu demo: simulator on 127.0.0.1:")

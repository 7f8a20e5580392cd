"""Every option of every command: numbers checked at parse time, help with defaults, ``-v``
anywhere, errors that name the address or the path, and docs/cli.md's examples as they run
(issue #16 items 5, 13, 16, 18)."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aiofutu.cli import _main, build_parser
from aiofutu.testing import BackgroundSimulator, background_simulator

HK = "HK.00700"
ENV = {k: v for k, v in os.environ.items() if not k.startswith("AIOFUTU_")}
CLI_DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
#: What each command needs besides the option under test.
REQUIRED = {
    "tail": [HK],
    "ticker": [HK],
    "record": [HK, "--out", "x.parquet"],
    "sim": [],
    "demo": [],
    "keygen": ["k.pem"],
    "kline": [HK],
    "snapshot": [HK],
    "quote": [HK],
    "book": [HK],
    "bridge": ["--nats", "nats://127.0.0.1:4222", "--codes", HK],
}
#: (command, option, value) a command may take: any seed is a seed.
ACCEPTED = {("sim", "--seed", "-1"), ("demo", "--seed", "-1")}


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "aiofutu", *args],
        capture_output=True,
        text=True,
        timeout=20,
        env=env or ENV,
    )


def one_line_error(result: Any, status: int, prefix: str) -> str:
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(prefix), lines[0]
    return str(lines[0])


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _valued_options() -> list[tuple[str, argparse.Action]]:
    return [
        (name, action)
        for name, p in _subparsers().items()
        for action in p._actions
        if action.option_strings and action.nargs != 0 and action.type not in (None, str)
    ]


NUMERIC = [
    pytest.param(name, action.option_strings[-1], value, id=f"{name}{action.option_strings[-1]}")
    for name, action in _valued_options()
    if action.type is not None and getattr(action.type, "__name__", "") in ("int", "float")
    for value in ("nan", "inf", "-1")
]


@pytest.mark.parametrize(("command", "option", "value"), NUMERIC)
def test_every_numeric_option_refuses_nan_inf_and_negatives(
    command: str, option: str, value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checked with the command line (parse + checks), never by a traceback at run time."""
    monkeypatch.chdir(tmp_path)
    argv = [command, *REQUIRED[command], option, value]
    if (command, option, value) in ACCEPTED:
        _main._check(build_parser().parse_args(argv))
        return
    with pytest.raises((SystemExit, _main.UsageError)) as raised:
        _main._check(build_parser().parse_args(argv))
    if isinstance(raised.value, SystemExit):
        assert raised.value.code == 2


def test_numeric_options_were_found() -> None:
    found = {(c, o) for c, o, _ in (p.values for p in NUMERIC)}
    assert {
        ("demo", "--rate"),
        ("sim", "--rate"),
        ("sim", "--speed"),
        ("record", "--duration"),
    } <= (found)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "--rate", "-1"], "aiofutu demo: error: argument --rate: must be a finite number"),
        (
            ["demo", "--rate", "nan"],
            "aiofutu demo: error: argument --rate: must be a finite number",
        ),
        (["sim", "--rate", "nan"], "aiofutu sim: error: argument --rate: must be a finite number"),
        (["sim", "--rate", "inf"], "aiofutu sim: error: argument --rate: must be a finite number"),
        (["sim", "--reply-delay", "nan"], "aiofutu sim: error: argument --reply-delay: must be"),
        (["demo", "--codes", "HK."], "aiofutu demo: error: invalid security code 'HK.'"),
        (["demo", "--seed", "x"], "aiofutu demo: error: argument --seed: invalid int value"),
    ],
)
def test_bad_numbers_are_one_line(args: list[str], message: str) -> None:
    one_line_error(run(*args), 2, message)


# ---- help ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", list(REQUIRED))
def test_every_option_has_help_with_its_default(command: str) -> None:
    parser = _subparsers()[command]
    missing = []
    for action in parser._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        text = action.help or ""
        takes_value = action.nargs != 0
        if not text or (takes_value and not action.required and "default" not in text):
            missing.append(action.option_strings[-1])
    assert not missing, f"aiofutu {command}: options without help or default: {missing}"


def test_demo_help_shows_codes_seed_and_rate_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "HK.00700,US.AAPL,HK.09988,SH.600519" in text
    assert "prices and volumes (default 1)" in text
    assert "ticks per second per code (default 4)" in text


@pytest.mark.parametrize(
    "argv",
    [
        ["tail", HK, "-v"],
        ["-v", "tail", HK],
        ["tail", "-v", HK],
        ["record", HK, "--out", "x.parquet", "--verbose"],
        ["sim", "-v"],
    ],
)
def test_verbose_before_or_after_the_command(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).verbose is True


def test_not_verbose_by_default() -> None:
    assert build_parser().parse_args(["tail", HK]).verbose is False


def test_verbose_after_the_command_logs_debug() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run("tail", HK, "--port", str(port), "-v")
    assert result.returncode == 1
    assert " DEBUG " in result.stderr or " INFO " in result.stderr


# ---- errors name the address or the path ------------------------------------------------------


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("command", ["sim", "demo"])
def test_busy_port_names_the_address(command: str, busy_port: int) -> None:
    result = run(command, "--port", str(busy_port))
    line = one_line_error(result, 1, f"aiofutu {command}: error: cannot listen on 127.0.0.1:")
    assert f"127.0.0.1:{busy_port}" in line
    assert "Errno" not in line


@pytest.fixture(scope="module")
def opend() -> Iterator[BackgroundSimulator]:
    with background_simulator(tick_rate=0, seed=3) as sim:
        yield sim


@pytest.mark.parametrize("out", ["/proc/t.csv", "/sys/t.csv"])
def test_unwritable_out_names_the_path(opend: BackgroundSimulator, out: str) -> None:
    result = run("ticker", HK, "--format", "csv", "--out", out, "--port", str(opend.port))
    line = one_line_error(result, 2, f"aiofutu ticker: error: cannot write {out!r}")
    assert "Errno" not in line


# ---- docs/cli.md's console examples, as they run ------------------------------------------------


def _console_examples() -> list[tuple[str, list[str], int | None]]:
    """``$ command`` blocks of docs/cli.md: (command, expected output lines, status or None).

    ``$ echo $?`` after a command gives its status; an expected line ending in ``...`` is a
    prefix."""
    text = CLI_DOC.read_text(encoding="utf-8")
    examples: list[list[Any]] = []
    status_next = False
    for block in re.findall(r"```console\n(.*?)```", text, re.DOTALL):
        for line in block.splitlines():
            if line == "$ echo $?":
                status_next = True
            elif line.startswith("$ "):
                examples.append([line[2:], [], None])
            elif status_next:
                examples[-1][2] = int(line)
                status_next = False
            else:
                examples[-1][1].append(line)
    return [(command, lines, status) for command, lines, status in examples]


def test_cli_doc_has_console_examples() -> None:
    examples = _console_examples()
    assert len(examples) >= 3
    assert all(status is not None for _, _, status in examples)


@pytest.mark.parametrize(("command", "expected", "status"), _console_examples())
def test_cli_doc_console_examples(
    opend: BackgroundSimulator,
    tmp_path: Path,
    command: str,
    expected: list[str],
    status: int,
) -> None:
    argv = shlex.split(command)
    assert argv[0] == "aiofutu"
    env = {**ENV, "AIOFUTU_HOST": "127.0.0.1", "AIOFUTU_PORT": str(opend.port)}
    result = subprocess.run(
        [sys.executable, "-m", "aiofutu", *argv[1:]],
        capture_output=True,
        text=True,
        timeout=20,
        env=env,
        cwd=tmp_path,
    )
    got = (result.stdout + result.stderr).splitlines()
    assert result.returncode == status, (command, got)
    assert len(got) == len(expected), (command, got)
    for line, want in zip(got, expected, strict=True):
        if want.endswith("..."):
            assert line.startswith(want[:-3]), (command, line)
        else:
            assert line == want, (command, line)


def test_sim_quote_right_sets_the_book_depth() -> None:
    from aiofutu.cli._config import _sim_config
    from aiofutu.cli._main import build_parser

    parser = build_parser()
    assert _sim_config(parser.parse_args(["sim", "--quote-right", "SF"])).quote_right == "SF"
    assert _sim_config(parser.parse_args(["sim"])).quote_right == "LV2"
    with pytest.raises(SystemExit):
        parser.parse_args(["sim", "--quote-right", "LV9"])

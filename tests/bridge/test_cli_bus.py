"""``aiofutu bridge``, ``aiofutu tail --nats`` and ``aiofutu record --nats`` (subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

import aiofutu
from aiofutu import bridge

if TYPE_CHECKING:
    from aiofutu.sim import Simulator

    from .conftest import NatsServer

pytest.importorskip("nats")
CODE = "HK.00700"


async def _run_while_bursting(
    opend: Simulator, argv: list[str]
) -> subprocess.CompletedProcess[str]:
    """Run the command; burst ticks until it exits (it subscribes "new": timing is unknown)."""
    done: list[subprocess.CompletedProcess[str]] = []

    def run() -> None:
        done.append(subprocess.run(argv, capture_output=True, text=True, timeout=40))

    async with anyio.create_task_group() as tg:
        tg.start_soon(anyio.to_thread.run_sync, run)
        with anyio.fail_after(45):
            while not done:
                await opend.burst(CODE, 5)
                await anyio.sleep(0.2)
    return done[0]


async def test_tail_and_record_read_the_bus(
    opend: Simulator, nats_server: NatsServer, tmp_path: Path
) -> None:
    async with (
        aiofutu.connect(opend.host, opend.port, reconnect=True) as client,
        anyio.create_task_group() as tg,
    ):
        await tg.start(lambda task_status: bridge.run(
            client, nats_server.url, codes=[CODE], task_status=task_status
        ))  # fmt: skip
        tail = await _run_while_bursting(opend, [
            sys.executable, "-m", "aiofutu", "tail", "--nats", nats_server.url, CODE,
            "--limit", "5", "--format", "json",
        ])  # fmt: skip
        assert tail.returncode == 0, tail.stderr
        rows = [json.loads(line) for line in tail.stdout.splitlines() if line.strip()]
        assert len(rows) == 5 and {r["code"] for r in rows} == {CODE}
        out = tmp_path / "bus.jsonl"
        record = await _run_while_bursting(opend, [
            sys.executable, "-m", "aiofutu", "record", "--nats", nats_server.url, CODE,
            "--limit", "7", "--out", str(out),
        ])  # fmt: skip
        assert record.returncode == 0, record.stderr
        assert "wrote 7 ticks" in record.stderr and "from the bus" in record.stderr
        assert len(out.read_text().splitlines()) == 7
        tg.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--codes", "HK00700"], "invalid security code"),
        (["--codes", CODE, "--kinds", "quote,kline_7m"], "not a bus kind"),
        (["--codes", CODE, "--dupe-window", "soon"], "not a duration"),
        (["--codes", CODE, "--overflow", "spill"], "invalid choice"),
    ],
)
def test_bridge_command_line_errors(argv: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "aiofutu", "bridge", "--nats", "nats://127.0.0.1:1", *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr

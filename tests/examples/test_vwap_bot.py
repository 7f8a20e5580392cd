"""examples/vwap_bot.py: its VWAP window and strategy, and the bot run for real as a subprocess
against the simulator (a reconnect in the middle, a clean stop on SIGTERM, ``--max-ticks``)."""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from _e2e import EXAMPLES, HK, load_example

import aiofutu
from aiofutu import sim

if TYPE_CHECKING:
    from collections.abc import Sequence

    from anyio.abc import ByteReceiveStream

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

bot = load_example("vwap_bot")


def _naive_vwap(trades: Sequence[tuple[float, float, float]]) -> float:
    return sum(p * v for p, v, _ in trades) / sum(v for _, v, _ in trades)


def test_rolling_vwap_by_ticks() -> None:
    vwap = bot.RollingVWAP(max_ticks=3)
    trades = [(10.0, 100, 1.0), (11.0, 300, 2.0), (12.0, 200, 3.0), (9.0, 400, 4.0), (10.5, 0, 5.0)]
    for i, (p, v, ts) in enumerate(trades):
        got = vwap.add(p, v, ts)
        assert got == pytest.approx(_naive_vwap(trades[max(0, i - 2) : i + 1]))
    assert len(vwap) == 3


def test_rolling_vwap_by_seconds_uses_trade_time() -> None:
    vwap = bot.RollingVWAP(max_age=2.0)
    trades = [(10.0, 100, 100.0), (11.0, 100, 100.5), (12.0, 100, 101.9), (13.0, 100, 102.2)]
    for p, v, ts in trades:
        vwap.add(p, v, ts)
    # at 102.2 the window is (100.2, 102.2]: the trades at 100.5, 101.9 and 102.2
    assert vwap.value == pytest.approx(_naive_vwap(trades[1:]))
    assert len(vwap) == 3
    vwap.add(14.0, 100, 200.0)  # a long pause empties the window but the new trade
    assert vwap.value == 14.0 and len(vwap) == 1


def test_rolling_vwap_stays_exact_over_a_long_run() -> None:
    vwap = bot.RollingVWAP(max_ticks=50, resum_every=1000)
    # one huge price early on: naive running sums would keep its rounding error forever
    trades = [(100 + math.sin(i) * 5 + 1e9 * (i == 3), 100 + i % 7, i) for i in range(20_000)]
    for p, v, ts in trades:
        vwap.add(p, v, ts)
    assert vwap.value == pytest.approx(_naive_vwap(trades[-50:]), rel=1e-12)


def test_rolling_vwap_arguments() -> None:
    with pytest.raises(ValueError, match="max_ticks"):
        bot.RollingVWAP()
    with pytest.raises(ValueError, match="max_ticks"):
        bot.RollingVWAP(max_ticks=0)
    with pytest.raises(ValueError, match="max_age"):
        bot.RollingVWAP(max_age=0)
    assert bot.RollingVWAP(max_ticks=5).value is None


def _tick(seq: int, price: float, volume: int = 100) -> aiofutu.Ticker:
    return aiofutu.Ticker(
        code=HK,
        name="Tencent",
        sequence=seq,
        time=f"2025-01-02 10:00:{seq % 60:02d}.000",
        price=price,
        volume=volume,
        turnover=price * volume,
        ticker_direction=aiofutu.TickerDirection.BUY,
        type=aiofutu.TickerType.AUTO_MATCH,
        timestamp=1_735_783_200.0 + seq,
    )


def test_strategy_signals_on_view_changes_only() -> None:
    strategy = bot.VwapStrategy(window_ticks=10, threshold_bps=10, warmup=5)
    prices = [100.0] * 6 + [99.8, 99.8, 100.0, 100.0, 100.0, 100.0, 100.3, 100.0]
    views = []
    for seq, price in enumerate(prices):
        sig = strategy.on_tick(_tick(seq, price))
        if sig is not None:
            views.append((seq, sig.view))
            assert (sig.deviation_bps < 0) == (sig.view == "BUY") or sig.view == "FLAT"
    # 99.8 is ~20 bps under the VWAP: BUY once (not again on the second 99.8); 100.0 is then
    # +4.4 bps over the VWAP (99.956), within half the threshold: FLAT; 100.3 is +31 bps over
    # the VWAP (99.99): SELL; 100.0 again (+1 bps): FLAT
    assert views == [(6, "BUY"), (8, "FLAT"), (12, "SELL"), (13, "FLAT")]
    assert strategy.state(HK).ticks == len(prices)


def test_no_signal_during_warmup() -> None:
    strategy = bot.VwapStrategy(window_ticks=100, threshold_bps=1, warmup=50)
    assert all(strategy.on_tick(_tick(i, 100.0 + (i % 2))) is None for i in range(49))


# -- the bot as a process ---------------------------------------------------------------------


class Lines:
    """Lines of a process's stdout, awaited by pattern; keeps all of them for the final checks."""

    def __init__(self, stream: ByteReceiveStream) -> None:
        self._stream = stream
        self._buf = b""
        self.seen: list[str] = []
        self._read = 0

    async def _next(self) -> bool:
        """Read one more line into ``seen``; False at the end of the output."""
        while b"\n" not in self._buf:
            try:
                self._buf += await self._stream.receive()
            except anyio.EndOfStream:
                return False
        line, self._buf = self._buf.split(b"\n", 1)
        self.seen.append(line.decode())
        return True

    async def expect(self, pattern: str, *, timeout: float = 10) -> re.Match[str]:
        """The next line (from where the last expect stopped) that matches ``pattern``."""
        with anyio.fail_after(timeout):
            while True:
                if self._read == len(self.seen) and not await self._next():
                    output = "\n".join(self.seen)
                    raise AssertionError(f"no line matches {pattern!r}; output:\n{output}")
                line = self.seen[self._read]
                self._read += 1
                if m := re.search(pattern, line):
                    return m

    async def rest(self) -> None:
        """Read up to the end of the output."""
        with anyio.fail_after(10):
            while await self._next():
                pass


def _bot_command(port: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(EXAMPLES / "vwap_bot.py"),
        HK,
        "--port",
        str(port),
        "--window-ticks",
        "20",
        "--threshold-bps",
        "1",
        "--warmup",
        "5",
        "--reconnect-delay",
        "0.05",
        *extra,
    ]


async def _run(command: list[str], check: Any) -> tuple[int, list[str], str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = await anyio.open_process(command, env=env, stderr=subprocess.PIPE)
    try:
        assert process.stdout is not None and process.stderr is not None
        lines = Lines(process.stdout)
        await check(process, lines)
        await lines.rest()
        with anyio.fail_after(10):
            code = await process.wait()
        err = (await process.stderr.receive()).decode() if code else ""
        return code, lines.seen, err
    finally:
        if process.returncode is None:
            process.kill()
            with anyio.move_on_after(5, shield=True):
                await process.wait()
        await process.aclose()


@pytest.mark.parametrize("bot_backend", ["asyncio", "trio"])
async def test_bot_reconnects_and_stops_cleanly_on_sigterm(bot_backend: str) -> None:
    async with sim.serve(port=0, tick_rate=100, codes=(HK,)) as server:

        async def check(process: Any, lines: Lines) -> None:
            await lines.expect(r"^ready: 127\.0\.0\.1:\d+ HK\.00700 window=20 ticks")
            first = int((await lines.expect(r"^status HK\.00700 ticks=(\d+) "))[1])
            await server.drop_connections()  # OpenD goes away; the bot's client reconnects
            await lines.expect(r"^state: reconnecting")
            await lines.expect(r"^state: ready\b")
            while int((await lines.expect(r"^status HK\.00700 ticks=(\d+) "))[1]) <= first + 20:
                pass  # ticks flow again after the reconnect
            process.send_signal(signal.SIGTERM)
            await lines.expect(r"^stopping: SIGTERM$")

        code, out, err = await _run(
            _bot_command(server.port, "--report-every", "0.1", "--backend", bot_backend), check
        )
    assert code == 0, err
    summary = re.fullmatch(
        r"summary: ticks=(\d+) signals=(\d+) gaps=(\d+) reconnects=(\d+) lost=(\d+)", out[-1]
    )
    assert summary is not None, out
    ticks, _signals, gaps, reconnects, lost = map(int, summary.groups())
    assert ticks > 20 and reconnects == 1 and gaps == 0 and lost == 0  # gapless reconnect
    for line in out:
        if m := re.match(
            r"signal (BUY|SELL|FLAT) +HK\.00700 .* price=([\d.]+) vwap=([\d.]+) "
            r"dev=([+-][\d.]+)bps$",
            line,
        ):
            view, price, vwap, dev = m[1], float(m[2]), float(m[3]), float(m[4])
            assert 0 < price and abs(price - vwap) / vwap < 0.01
            assert dev == pytest.approx((price - vwap) / vwap * 1e4, abs=0.2)
            assert {"BUY": dev <= -1, "SELL": dev >= 1, "FLAT": abs(dev) <= 0.5}[view]
        if m := re.match(r"status HK\.00700 ticks=\d+ last=([\d.]+) vwap=([\d.]+) ", line):
            assert abs(float(m[1]) - float(m[2])) / float(m[2]) < 0.01


async def test_bot_stops_after_max_ticks() -> None:
    async with sim.serve(port=0, tick_rate=200, codes=(HK,)) as server:

        async def check(process: Any, lines: Lines) -> None:
            await lines.expect(r"^ready: ")

        code, out, err = await _run(_bot_command(server.port, "--max-ticks", "30"), check)
    assert code == 0, err
    assert out[-1].startswith("summary: ticks=30 "), out


async def test_bot_exits_1_when_opend_is_unreachable() -> None:
    async with sim.serve(port=0) as server:
        port = server.port  # a port nobody listens on once the simulator has stopped

    async def check(process: Any, lines: Lines) -> None:
        pass

    code, out, err = await _run(_bot_command(port), check)
    assert code == 1
    assert "error: ConnectError" in err
    assert out == ["summary: ticks=0 signals=0 gaps=0 reconnects=0 lost=0"]

"""A trading-bot skeleton: a rolling VWAP per security over live ticks, and signals when the price
strays from it. It reconnects by itself and stops cleanly on SIGINT / SIGTERM.

Run it against OpenD (``AIOFUTU_HOST`` / ``AIOFUTU_PORT``, default 127.0.0.1:11111)::

    python examples/vwap_bot.py HK.00700 US.AAPL --window-ticks 200 --threshold-bps 5
    python examples/vwap_bot.py HK.00700 --window-seconds 60 --duration 300
    python examples/vwap_bot.py --sim HK.00700          # with the bundled simulator in-process

Output, one line per event (``--report-every`` adds a status line per code)::

    ready: 127.0.0.1:11111 HK.00700 window=200 ticks threshold=5.0bps
    signal BUY  HK.00700 2025-01-02 10:00:01.250 price=350.200 vwap=350.410 dev=-6.0bps
    state: reconnecting (connection to OpenD is lost: ...)
    state: ready
    stopping: SIGTERM
    summary: ticks=1234 signals=5 gaps=0 reconnects=1 lost=0

The strategy is mean reversion with hysteresis: BUY when the price is ``threshold`` below the
VWAP, SELL when it is ``threshold`` above, FLAT once it is back within half the threshold; a line
is printed only when that view changes. It is an illustration, not advice. Signals are received
with ``anyio.open_signal_receiver`` (POSIX).

Exit status: 0 after a signal, ``--duration`` or ``--max-ticks``; 1 when OpenD cannot be reached
or the stream fails for good; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
from collections import deque
from dataclasses import dataclass, field
from typing import Literal, TextIO

import anyio

import aiofutu

View = Literal["BUY", "SELL", "FLAT"]


class RollingVWAP:
    """Volume-weighted average price over the last ``max_ticks`` ticks and/or ``max_age`` seconds.

    Updates are O(1) (running sums); the sums are recomputed from the window every
    ``resum_every`` updates, so float error cannot build up over a long session. With
    ``max_age``, the window is measured in trade time (``Ticker.timestamp``), not wall time, so a
    replay gives the same numbers as the live run.
    """

    def __init__(
        self, max_ticks: int | None = None, max_age: float | None = None, resum_every: int = 10_000
    ) -> None:
        if max_ticks is None and max_age is None:
            raise ValueError("give max_ticks, max_age or both")
        if max_ticks is not None and max_ticks < 1:
            raise ValueError("max_ticks must be >= 1")
        if max_age is not None and not max_age > 0:
            raise ValueError("max_age must be > 0 seconds")
        self.max_ticks = max_ticks
        self.max_age = max_age
        self._window: deque[tuple[float, float, float]] = deque()  # (timestamp, price*vol, vol)
        self._pv = 0.0
        self._v = 0.0
        self._updates = 0
        self._resum_every = resum_every

    def __len__(self) -> int:
        return len(self._window)

    def add(self, price: float, volume: float, timestamp: float) -> float | None:
        """Add one trade; returns the VWAP afterwards (``None`` while the window has no volume)."""
        window = self._window
        pv = price * volume
        window.append((timestamp, pv, volume))
        self._pv += pv
        self._v += volume
        if self.max_ticks is not None:
            while len(window) > self.max_ticks:
                self._evict()
        if self.max_age is not None:
            horizon = timestamp - self.max_age
            while window and window[0][0] <= horizon:
                self._evict()
        self._updates += 1
        if self._updates % self._resum_every == 0:
            self._pv = math.fsum(w[1] for w in window)
            self._v = math.fsum(w[2] for w in window)
        return self.value

    def _evict(self) -> None:
        _, pv, v = self._window.popleft()
        self._pv -= pv
        self._v -= v

    @property
    def value(self) -> float | None:
        """The current VWAP, or ``None`` when the window holds no volume."""
        return self._pv / self._v if self._v > 0 and self._window else None


@dataclass
class CodeState:
    vwap: RollingVWAP
    view: View = "FLAT"
    ticks: int = 0
    last_price: float = 0.0


@dataclass
class Signal:
    code: str
    view: View
    time: str
    price: float
    vwap: float
    deviation_bps: float

    def __str__(self) -> str:
        return (
            f"signal {self.view:<4} {self.code} {self.time} price={self.price:.3f} "
            f"vwap={self.vwap:.3f} dev={self.deviation_bps:+.1f}bps"
        )


@dataclass
class VwapStrategy:
    """Mean reversion around a rolling VWAP, per code, with hysteresis."""

    window_ticks: int | None = 200
    window_seconds: float | None = None
    threshold_bps: float = 5.0
    #: no signal until the window holds this many ticks
    warmup: int = 20
    codes: dict[str, CodeState] = field(default_factory=dict)

    def state(self, code: str) -> CodeState:
        state = self.codes.get(code)
        if state is None:
            vwap = RollingVWAP(self.window_ticks, self.window_seconds)
            state = self.codes[code] = CodeState(vwap)
        return state

    def on_tick(self, tick: aiofutu.Ticker) -> Signal | None:
        """Feed one tick; returns a :class:`Signal` when the view on its code changes."""
        state = self.state(tick.code)
        state.ticks += 1
        state.last_price = tick.price
        vwap = state.vwap.add(tick.price, tick.volume, tick.timestamp)
        if vwap is None or len(state.vwap) < self.warmup:
            return None
        dev = (tick.price - vwap) / vwap * 10_000
        view: View = state.view
        if dev <= -self.threshold_bps:
            view = "BUY"
        elif dev >= self.threshold_bps:
            view = "SELL"
        elif abs(dev) <= self.threshold_bps / 2:
            view = "FLAT"
        if view == state.view:
            return None
        state.view = view
        return Signal(tick.code, view, tick.time, tick.price, vwap, dev)


@dataclass
class Counters:
    ticks: int = 0
    signals: int = 0
    gaps: int = 0
    lost: int = 0


def say(out: TextIO, text: str) -> None:
    out.write(text + "\n")
    out.flush()  # one line at a time, also into a pipe or a log collector


async def stop_on_signals(scope: anyio.CancelScope, out: TextIO) -> None:
    """Cancel ``scope`` on SIGINT or SIGTERM (the bot then closes the stream and the client)."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            say(out, f"stopping: {signal.Signals(signum).name}")
            scope.cancel()
            return


async def watch_state(client: aiofutu.Client, out: TextIO) -> None:
    """Print link state changes: a reconnect is visible in the log, not silent."""
    first = True
    async for change in client.state_changes():
        if first:  # the current state, already reported by "ready:"
            first = False
            continue
        cause = f" ({change.cause})" if change.cause else ""
        say(out, f"state: {change.state.value}{cause}")


async def report(strategy: VwapStrategy, every: float, out: TextIO) -> None:
    while True:
        await anyio.sleep(every)
        for code, st in strategy.codes.items():
            vwap = st.vwap.value
            shown = "n/a" if vwap is None else f"{vwap:.3f}"
            say(
                out,
                f"status {code} ticks={st.ticks} last={st.last_price:.3f} vwap={shown} {st.view}",
            )


async def run_bot(args: argparse.Namespace, port: int, out: TextIO = sys.stdout) -> int:
    strategy = VwapStrategy(
        window_ticks=args.window_ticks,
        window_seconds=args.window_seconds,
        threshold_bps=args.threshold_bps,
        warmup=args.warmup,
    )
    counts = Counters()
    policy = aiofutu.ReconnectPolicy(initial_delay=args.reconnect_delay, max_delay=10.0)

    def on_gap(gap: aiofutu.Gap) -> None:
        counts.gaps += 1
        missing = "an unknown number of" if gap.missing is None else gap.missing
        say(out, f"gap: {gap.code} lost {missing} tick(s) after sequence {gap.after}")

    window = " ".join(
        part
        for part in (
            f"{args.window_ticks} ticks" if args.window_ticks else "",
            f"{args.window_seconds:g}s" if args.window_seconds else "",
        )
        if part
    )
    failure: aiofutu.FutuError | None = None
    client = aiofutu.connect(args.host, port, client_id="vwap-bot", reconnect=policy)
    try:
        async with client, anyio.create_task_group() as tg:
            tg.start_soon(stop_on_signals, tg.cancel_scope, out)
            tg.start_soon(watch_state, client, out)
            if args.report_every:
                tg.start_soon(report, strategy, args.report_every, out)
            try:
                with anyio.move_on_after(args.duration if args.duration else math.inf):
                    async with client.ticker_stream(*args.codes, on_gap=on_gap) as ticks:
                        say(
                            out,
                            f"ready: {args.host}:{port} {' '.join(args.codes)} "
                            f"window={window} threshold={args.threshold_bps}bps",
                        )
                        await trade(ticks, strategy, counts, args.max_ticks, out)
            except aiofutu.FutuError as exc:  # e.g. reconnect gave up, a refused subscription
                failure = exc
            tg.cancel_scope.cancel()  # done: stop the helper tasks
    except aiofutu.FutuError as exc:  # ConnectError: OpenD unreachable at start
        failure = exc
    finally:
        say(
            out,
            f"summary: ticks={counts.ticks} signals={counts.signals} gaps={counts.gaps} "
            f"reconnects={client.reconnects} lost={counts.lost}",
        )
    if failure is not None:
        say(sys.stderr, f"error: {type(failure).__name__}: {failure}")
        return 1
    return 0


async def trade(
    ticks: aiofutu.TickerStream,
    strategy: VwapStrategy,
    counts: Counters,
    max_ticks: int | None,
    out: TextIO,
) -> None:
    """The strategy loop. ``SlowConsumer`` means ticks were lost: say so and carry on."""
    while True:
        try:
            async for tick in ticks:
                counts.ticks += 1
                sig = strategy.on_tick(tick)
                if sig is not None:
                    counts.signals += 1
                    say(out, str(sig))
                if max_ticks is not None and counts.ticks >= max_ticks:
                    return
            return  # the client closed
        except aiofutu.SlowConsumer as exc:
            counts.lost += exc.lost
            say(out, f"warning: {exc}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Rolling-VWAP signals over live ticks (an aiofutu example)."
    )
    parser.add_argument("codes", nargs="+", metavar="CODE", help="e.g. HK.00700 US.AAPL")
    parser.add_argument("--host", default=os.environ.get("AIOFUTU_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("AIOFUTU_PORT", "11111")))
    parser.add_argument("--window-ticks", type=int, default=None, help="VWAP over the last N ticks")
    parser.add_argument(
        "--window-seconds", type=float, default=None, help="VWAP over the last S seconds"
    )
    parser.add_argument("--threshold-bps", type=float, default=5.0, help="signal threshold")
    parser.add_argument("--warmup", type=int, default=20, help="ticks before the first signal")
    parser.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    parser.add_argument("--max-ticks", type=int, default=None, help="stop after N ticks")
    parser.add_argument(
        "--report-every", type=float, default=0.0, help="a status line per code every S seconds"
    )
    parser.add_argument("--reconnect-delay", type=float, default=0.5, help="first retry delay")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument(
        "--log-level", default="WARNING", help="aiofutu's log level (stderr), e.g. INFO"
    )
    parser.add_argument("--sim", action="store_true", help="run the bundled simulator in-process")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.window_ticks is None and args.window_seconds is None:
        args.window_ticks = 200
    for code in args.codes:
        try:
            aiofutu.parse_code(code)
        except aiofutu.InvalidCode as exc:
            parser.error(str(exc))

    async def entry() -> int:
        if not args.sim:
            return await run_bot(args, args.port)
        from aiofutu import sim

        async with sim.serve(port=0, tick_rate=20, codes=tuple(args.codes)) as server:
            return await run_bot(args, server.port)

    try:
        return anyio.run(entry, backend=args.backend)
    except KeyboardInterrupt:  # Ctrl-C before the signal handler was installed
        return 130


if __name__ == "__main__":
    sys.exit(main())

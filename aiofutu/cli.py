"""The ``aiofutu`` command line: ``demo``, ``tail``, ``ticker`` and ``sim``.

User errors (OpenD unreachable, an invalid code, a refused subscription) end with one line on
stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING, Any, TextIO

import anyio

from .client import DEFAULT_HOST, DEFAULT_PORT, connect
from .errors import ConfigurationError, FutuError, MissingDependency
from .frames import to_polars

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .models import Ticker

__all__ = ("main",)

DEMO_CODES = ("HK.00700", "US.AAPL", "HK.09988", "SH.600519")
_COLOURS = {"BUY": "\033[32m", "SELL": "\033[31m", "NEUTRAL": "\033[33m"}
_RESET = "\033[0m"


def _env_port() -> int:
    raw = os.environ.get("AIOFUTU_PORT")
    if not raw:
        return DEFAULT_PORT
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(
            f"aiofutu: error: AIOFUTU_PORT must be a port number, got {raw!r}"
        ) from None


def _add_endpoint(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        default=os.environ.get("AIOFUTU_HOST", DEFAULT_HOST),
        help="OpenD host (env AIOFUTU_HOST, default %(default)s)",
    )
    parser.add_argument(
        "--port", type=int, default=_env_port(), help="OpenD port (env AIOFUTU_PORT, default 11111)"
    )


class TickPrinter:
    """Renders ticks as an aligned, colourised table, or as JSON lines."""

    HEADER = f"{'time':<23}  {'code':<10} {'price':>10} {'volume':>9}  {'direction':<9} type"

    def __init__(self, out: TextIO, fmt: str = "table", colour: bool | None = None) -> None:
        self.out = out
        self.fmt = fmt
        self.colour = out.isatty() if colour is None else colour
        self._header_done = False

    def __call__(self, tick: Ticker) -> None:
        if self.fmt == "json":
            self.out.write(tick.model_dump_json() + "\n")
        else:
            if not self._header_done:
                self._header_done = True
                self.out.write(self.HEADER + "\n")
            direction = tick.ticker_direction.value
            line = (
                f"{tick.time:<23}  {tick.code:<10} {tick.price:>10.3f} {tick.volume:>9}  "
                f"{direction:<9} {tick.type.value}"
            )
            if self.colour:
                line = f"{_COLOURS.get(direction, '')}{line}{_RESET}"
            self.out.write(line + "\n")
        self.out.flush()


async def _tail(host: str, port: int, codes: Sequence[str], fmt: str, limit: int | None) -> None:
    printer = TickPrinter(sys.stdout, fmt)
    async with (
        connect(host, port, client_id="aiofutu-cli") as client,
        client.ticker_stream(*codes, overflow="drop_oldest") as stream,
    ):
        count = 0
        async for tick in stream:
            printer(tick)
            count += 1
            if limit is not None and count >= limit:
                return


async def _ticker(args: argparse.Namespace) -> None:
    async with connect(args.host, args.port, client_id="aiofutu-cli") as client:
        await client.subscribe([args.code], ["TICKER"], subscribe_push=False)
        ticks = await client.get_rt_ticker(args.code, args.num)
    _write_ticks(ticks, args.format, args.out)


def _write_ticks(ticks: list[Ticker], fmt: str, out: str | None) -> None:
    if fmt == "table":
        text = _table(ticks)
    elif fmt == "json":
        text = "".join(t.model_dump_json() + "\n" for t in ticks)
    elif fmt == "csv":
        text = to_polars(ticks).write_csv()
    else:  # parquet
        if not out:
            raise ConfigurationError("--format parquet needs --out FILE")
        to_polars(ticks).write_parquet(out)
        return
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)


def _table(ticks: list[Ticker]) -> str:
    lines = [
        f"{'code':<10} {'time':<23} {'price':>10} {'volume':>9} {'turnover':>14} "
        f"{'direction':<9} {'sequence':>20} type"
    ]
    lines += [
        f"{t.code:<10} {t.time:<23} {t.price:>10.3f} {t.volume:>9} {t.turnover:>14.2f} "
        f"{t.ticker_direction.value:<9} {t.sequence:>20} {t.type.value}"
        for t in ticks
    ]
    return "\n".join(lines) + "\n"


async def _serve(args: argparse.Namespace) -> None:
    from .sim import SimConfig, run_forever

    codes = tuple(c for c in args.codes.split(",") if c)
    config = SimConfig(
        host=args.host, port=args.port, seed=args.seed, tick_rate=args.rate, codes=codes
    )

    def ready(server: Any) -> None:
        sys.stderr.write(
            f"aiofutu simulator listening on {server.host}:{server.port} (Ctrl-C stops)\n"
        )
        sys.stderr.flush()

    await run_forever(config, on_ready=ready)


async def _demo(args: argparse.Namespace) -> None:
    from .sim import serve

    codes = tuple(args.codes.split(",")) if args.codes else DEMO_CODES
    async with serve(host="127.0.0.1", port=0, seed=args.seed, tick_rate=args.rate) as server:
        sys.stderr.write(
            f"aiofutu demo: simulator on 127.0.0.1:{server.port}, streaming "
            f"{', '.join(codes)} (Ctrl-C stops)\n"
        )
        await _tail("127.0.0.1", server.port, codes, args.format, args.limit)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aiofutu", description="asyncio client for the Futu / moomoo OpenD quote gateway"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="run the bundled simulator and stream its live ticks")
    p.add_argument("--codes", default="", help=f"comma-separated codes (default {DEMO_CODES})")
    p.add_argument("--rate", type=float, default=4.0, help="ticks per second per code")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--limit", type=int, default=None, help="stop after this many ticks")

    p = sub.add_parser("tail", help="stream live ticks of CODE... until Ctrl-C")
    p.add_argument("codes", nargs="+", metavar="CODE")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--limit", type=int, default=None, help="stop after this many ticks")
    _add_endpoint(p)

    p = sub.add_parser("ticker", help="print the latest ticks of CODE (get_rt_ticker)")
    p.add_argument("code", metavar="CODE")
    p.add_argument("--num", type=int, default=100, help="1..1000 (default %(default)s)")
    p.add_argument("--format", choices=("table", "csv", "json", "parquet"), default="table")
    p.add_argument("--out", default=None, help="write to FILE instead of stdout")
    _add_endpoint(p)

    p = sub.add_parser("sim", help="run the OpenD simulator as a server")
    _add_endpoint(p)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rate", type=float, default=50.0, help="ticks per second per code")
    p.add_argument("--codes", default="HK.00700,US.AAPL", help="comma-separated codes")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    runners: dict[str, Any] = {
        "demo": lambda: _demo(args),
        "tail": lambda: _tail(args.host, args.port, args.codes, args.format, args.limit),
        "ticker": lambda: _ticker(args),
        "sim": lambda: _serve(args),
    }
    try:
        anyio.run(runners[args.command])
    except KeyboardInterrupt:
        return 130
    except (FutuError, MissingDependency) as exc:
        sys.stderr.write(f"aiofutu: error: {exc}\n")
        return 1
    except BrokenPipeError:
        return 0
    return 0

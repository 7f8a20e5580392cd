"""``aiofutu bridge`` (OpenD -> NATS JetStream), and ``--nats`` for ``tail`` and ``record``.

:func:`register` adds the subcommand and the ``--nats`` flag of ``tail``/``record`` to the
parser; the commands themselves run here, so the rest of the CLI knows nothing of NATS.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..state import ReconnectPolicy
from ._commands import _COMMANDS
from ._link import add_link_flags, open_client
from ._output import TickPrinter, _say, _use_colour

if TYPE_CHECKING:
    from ..bridge import BridgeStats

__all__ = ("register",)


def _codes(text: str) -> list[str]:
    return [c for c in text.split(",") if c]


def _kinds(text: str) -> list[str]:
    from ..bridge._buskinds import bus_kinds

    kinds = [k for k in text.split(",") if k]
    for kind in kinds:
        if kind not in bus_kinds():
            raise argparse.ArgumentTypeError(
                f"kind {kind!r} is not a bus kind (bus kinds: {', '.join(bus_kinds())})"
            )
    return kinds


def _duration(text: str) -> float:
    from ..bridge import parse_duration

    try:
        return parse_duration(text)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _size(text: str) -> int:
    from ..bridge import parse_size

    try:
        return parse_size(text)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be > 0 seconds, got {text!r}")
    return value


def register(sub: Any) -> None:
    """Add ``bridge`` to the subcommands and ``--nats`` to ``tail`` and ``record``."""
    p = sub.add_parser(
        "bridge",
        help="publish live ticks of CODES from OpenD to a NATS JetStream stream",
        description="Hold one OpenD connection (reconnecting, with backfill) and publish every "
        "tick to JetStream subjects futu.<kind>.<market>.<code> (docs/bridge.md).",
    )
    p.add_argument("--nats", required=True, metavar="URL", help="e.g. nats://127.0.0.1:4222")
    p.add_argument(
        "--codes", type=_codes, required=True, metavar="CODES", help="e.g. HK.00700,US.AAPL"
    )
    p.add_argument(
        "--kinds", type=_kinds, default=["ticker"], metavar="KINDS",
        help="comma-separated: ticker, quote, order_book, order_book_odd, broker, rt, "
        "kline_1m ... kline_year (the --ktype periods; forward-adjusted); default ticker",
    )  # fmt: skip
    p.add_argument("--stream", default="FUTU", help="JetStream stream name (default %(default)s)")
    p.add_argument("--max-age", type=_duration, default=7 * 86400.0, metavar="AGE",
                   help="keep messages this long (default 7d)")  # fmt: skip
    p.add_argument("--max-bytes", type=_size, default=-1, metavar="SIZE",
                   help="stream size limit, e.g. 10GiB (default: none)")  # fmt: skip
    p.add_argument("--replicas", type=_positive, default=1, help="stream replicas (default 1)")
    p.add_argument("--dupe-window", type=_duration, default=120.0, metavar="AGE",
                   help="JetStream de-duplication window (default 2m)")  # fmt: skip
    p.add_argument("--overflow", choices=("drop", "stall"), default="drop",
                   help="when NATS is slower than the feed or down and the buffer is full: drop "
                   "the oldest queued ticks and count them, or stall the OpenD feed "
                   "(default %(default)s)")  # fmt: skip
    p.add_argument("--buffer", type=_positive, default=200_000, metavar="N",
                   help="ticks queued for NATS at most (default %(default)s)")  # fmt: skip
    p.add_argument("--stats", type=_seconds, metavar="SECONDS",
                   help="print the counters on stderr every SECONDS (default: never)")  # fmt: skip
    add_link_flags(p)
    for name in ("tail", "record"):
        sub.choices[name].add_argument(
            "--nats",
            metavar="URL",
            help="read from the bus (a NATS JetStream stream fed by `aiofutu bridge`) "
            "instead of OpenD (default: none, read OpenD)",
        )
        sub.choices[name].add_argument(
            "--stream", default="FUTU", help="with --nats: the stream name (default FUTU)"
        )
    _COMMANDS["bridge"] = _bridge
    for name in ("tail", "record"):
        _COMMANDS[name] = _with_nats(_COMMANDS[name], _bus_tail if name == "tail" else _bus_record)


def _with_nats(direct: Any, bus: Any) -> Any:
    async def command(args: argparse.Namespace) -> None:
        if getattr(args, "nats", None):
            await bus(args)
        else:
            await direct(args)

    return command


async def _bridge(args: argparse.Namespace) -> None:
    from .. import bridge

    def on_stats(stats: BridgeStats) -> None:
        _say(f"aiofutu bridge: {stats.line()}")

    def on_stop(stats: BridgeStats) -> None:
        if stats.unpublished:
            _say(
                f"aiofutu bridge: stopped; {stats.unpublished} tick(s) not published "
                f"({stats.queued} queued, never sent; {stats.pending_acks} sent without an ack, "
                f"the stream may hold them); {stats.line()}"
            )
        else:
            _say(f"aiofutu bridge: stopped; every tick taken is stored; {stats.line()}")

    policy = ReconnectPolicy(initial_delay=0.2, max_delay=10.0, first_connect=True)
    async with open_client(args, "aiofutu-bridge", reconnect=policy) as client:
        _say(
            f"aiofutu bridge: OpenD {args.host}:{args.port} -> {args.nats} stream {args.stream}, "
            f"{','.join(args.codes)}"
        )
        await bridge.run(
            client,
            args.nats,
            codes=args.codes,
            kinds=args.kinds,
            stream=args.stream,
            max_age=args.max_age,
            max_bytes=args.max_bytes,
            replicas=args.replicas,
            duplicate_window=args.dupe_window,
            overflow=args.overflow,
            buffer=args.buffer,
            stats_interval=args.stats,
            on_stats=on_stats if args.stats else None,
            on_stop=on_stop,
        )


def _bus_token(args: argparse.Namespace) -> str:
    """The bus kind of ``tail --kind K [--ktype T]``: K-lines name their period."""
    from ..bridge._buskinds import kline_token
    from ..quotes.kline import check_kl_type

    kind = getattr(args, "kind", "ticker")
    return kline_token(check_kl_type(args.ktype)) if kind == "kline" else str(kind)


async def _bus_tail_items(args: argparse.Namespace, token: str) -> None:
    """``tail --nats URL --kind quote|order_book|broker|kline|rt``: states and series."""
    from .. import bus
    from ._series import SeriesPrinter
    from ._state import _VIEWS

    out = sys.stdout
    view = _VIEWS.get(args.kind)
    series = None if view is not None else SeriesPrinter(out, args.format, args.kind)
    if view is not None and args.format == "table":
        out.write(view.header + "\n")
    async with bus.kind_stream(
        args.nats,
        args.codes,
        token,
        stream=args.stream,
        closed_only=getattr(args, "closed_only", False),
        overflow="drop_oldest",
    ) as items:
        count = 0
        try:
            async for item in items:
                if series is not None:
                    series(item)
                elif args.format == "json":
                    out.write(item.model_dump_json() + "\n")
                else:
                    out.write(view.line(item) + "\n")  # type: ignore[union-attr]
                count += 1
                if args.limit is not None and count >= args.limit:
                    break
                if not items.pending:
                    out.flush()
        finally:
            out.flush()


async def _bus_record_items(args: argparse.Namespace, token: str) -> None:
    """``record --nats URL --kind quote|...|kline|rt --out F``: every update (no conflation),
    one row each, as ``record --kind`` writes them from OpenD, written as they come."""
    import functools
    import math

    import anyio

    from .. import bus
    from ._rows import record_rows
    from ._series import _row
    from ._state import _VIEWS, report_written, state_row

    async with bus.kind_stream(
        args.nats,
        args.codes,
        token,
        stream=args.stream,
        conflate=False,
        closed_only=getattr(args, "closed_only", False),
        buffer=100_000,
        overflow="block",
    ) as items:
        with anyio.move_on_after(args.duration if args.duration is not None else math.inf):
            await record_rows(
                items,
                state_row(args.out) if args.kind in _VIEWS else _row,
                args.out,
                limit=args.limit,
                written=functools.partial(report_written, args, " (from the bus)"),
            )


async def _bus_tail(args: argparse.Namespace) -> None:
    from .. import bus

    token = _bus_token(args)
    if token != "ticker":
        await _bus_tail_items(args, token)
        return
    printer = TickPrinter(sys.stdout, args.format, _use_colour(sys.stdout, args.colour))
    async with bus.subscribe(
        args.nats, args.codes, stream=args.stream, overflow="drop_oldest"
    ) as ticks:
        count = 0
        try:
            async for tick in ticks:
                printer(tick)
                count += 1
                if args.limit is not None and count >= args.limit:
                    break
                if not ticks.pending:
                    printer.flush()
        finally:
            printer.flush()


class _BusSource:
    """What :class:`~aiofutu.record.Recorder` needs of a client (``ticker_stream``): the bus."""

    def __init__(self, nats: str, stream: str) -> None:
        self.nats = nats
        self.stream = stream

    def ticker_stream(
        self,
        *codes: str,
        buffer: int = 100_000,
        overflow: Any = "block",
        on_gap: Any = None,
        is_first_push: bool = False,
    ) -> Any:
        from .. import bus

        return bus.subscribe(
            self.nats, codes, stream=self.stream, buffer=buffer, overflow=overflow, on_gap=on_gap
        )


async def _bus_record(args: argparse.Namespace) -> None:
    from ..record import Recorder

    token = _bus_token(args)
    if token != "ticker":
        await _bus_record_items(args, token)
        return
    recorder = Recorder(args.codes, limit=args.limit, duration=args.duration)
    source: Any = _BusSource(args.nats, args.stream)
    try:
        await recorder.run(source, out=args.out)  # written as it grows, complete on Ctrl-C
    finally:
        if recorder.written is not None:
            gaps = f", {len(recorder.gaps)} gap(s) in the tape" if recorder.gaps else ""
            sys.stderr.write(
                f"aiofutu record: wrote {recorder.written} ticks to {args.out} (from the bus)"
                f"{gaps}\n"
            )

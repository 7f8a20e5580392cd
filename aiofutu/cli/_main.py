"""The command line: the parser, the checks made before connecting, and ``main``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING, NoReturn

import anyio

from .. import __version__
from ..client import DEFAULT_HOST, DEFAULT_PORT
from ..codes import parse_code
from ..errors import ConfigurationError, FutuError, MissingDependency, OpenDError, ProtocolError
from ..record import check_writable, format_of
from . import _bridge, _kline, _series, _snapshot
from ._commands import _COMMANDS, DEMO_CODES
from ._config import (
    _SIM_FLAGS,
    UsageError,
    _number,
    _sim_config,
    _sim_help,
)
from ._link import add_link_flags, connects, resolve_link

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ("build_parser", "main")

MAX_NUM = 1000
KEY_SIZES = (1024, 2048, 3072, 4096)
_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (its default prints the whole usage first)."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def _endpoint(parser: argparse.ArgumentParser, what: str = "OpenD") -> None:
    if what == "OpenD":  # a client: the shared endpoint, encryption and transport flags
        add_link_flags(parser)
        return
    parser.add_argument("--host", help=f"{what} host (env AIOFUTU_HOST, default {DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=int, help=f"{what} port (env AIOFUTU_PORT, default {DEFAULT_PORT})"
    )


def _output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", choices=("table", "json"), default="table",
        help="an aligned table, or JSON lines with every field (default %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--colour", "--color", choices=("auto", "always", "never"), default="auto",
        help="colour the table by direction (default auto: on a terminal, unless NO_COLOR is set)",
    )  # fmt: skip


def _reconnect(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reconnect",
        action="store_true",
        help="when the link drops, reconnect (backoff 0.5 s to 30 s, until stopped) and resume "
        "with the ticks missed meanwhile (default: off, the command ends with the error)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    from ..sim import MARKET_HOURS, SCENARIOS
    from ..sim._config import AES_MODES
    from ..sim._scenarios import SCENARIO_HELP

    parser = _Parser(
        prog="aiofutu", description="asyncio client for the Futu / moomoo OpenD quote gateway"
    )
    parser.add_argument("--version", action="version", version=f"aiofutu {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("tail", help="stream live ticks of CODE... until Ctrl-C")
    p.add_argument("codes", nargs="+", metavar="CODE", help="e.g. HK.00700 US.AAPL")
    _output(p)
    p.add_argument("--limit", type=int, help="stop after this many ticks (default: no limit)")
    _series.add_kind_flags(p, "stream")
    _reconnect(p)
    _endpoint(p)

    p = sub.add_parser("ticker", help="the latest ticks of CODE (get_rt_ticker)")
    p.add_argument("code", metavar="CODE")
    p.add_argument("--num", type=int, default=100, help="1..1000 (default %(default)s)")
    p.add_argument(
        "--format",
        choices=("table", "csv", "json", "parquet"),
        default="table",
        help="csv, json and parquet carry every field, csv in the SDK's column order first "
        "(parquet needs --out; default %(default)s)",
    )
    p.add_argument("--out", metavar="FILE", help="write to FILE (default: stdout)")
    _endpoint(p)

    p = sub.add_parser("record", help="record every pushed tick of CODE... to a file")
    p.add_argument("codes", nargs="+", metavar="CODE")
    p.add_argument(
        "--out",
        metavar="FILE",
        required=True,
        help="the file to write, as it grows; its suffix gives the format: .parquet, .csv or "
        ".jsonl (required)",
    )
    p.add_argument("--limit", type=int, help="stop after this many ticks (default: no limit)")
    p.add_argument(
        "--duration",
        type=_number(above=True),
        metavar="S",
        help="stop after this many seconds (default: until Ctrl-C)",
    )
    p.add_argument(
        "--first-push", action="store_true", help="also record the latest tick sent on subscribe"
    )
    _series.add_kind_flags(p, "record")
    _reconnect(p)
    _endpoint(p)

    p = sub.add_parser(
        "kline",
        help="the K-line bars of CODE: the latest (--num, get_cur_kline) or a range "
        "(--start/--end, request_history_kline)",
    )
    p.add_argument("code", metavar="CODE")
    p.add_argument(
        "--format",
        choices=("table", "csv", "json", "parquet"),
        default="table",
        help="csv, json and parquet carry the SDK's get_cur_kline (or request_history_kline) "
        "columns (parquet needs --out; default %(default)s)",
    )
    p.add_argument("--out", metavar="FILE", help="write to FILE (default: stdout)")
    _series.add_kline_flags(p)
    _kline.add_range_flags(p)
    _endpoint(p)

    p = sub.add_parser("quote", help="the latest quote of CODE... (get_stock_quote)")
    p.add_argument("codes", nargs="+", metavar="CODE", help="e.g. HK.00700 US.AAPL")
    p.add_argument(
        "--format",
        choices=("table", "csv", "json", "parquet"),
        default="table",
        help="csv and parquet carry the SDK's get_stock_quote columns, json every field "
        "(parquet needs --out; default %(default)s)",
    )
    p.add_argument("--out", metavar="FILE", help="write to FILE (default: stdout)")
    _endpoint(p)

    p = sub.add_parser("book", help="the order book of CODE as a depth ladder, live")
    p.add_argument("code", metavar="CODE")
    p.add_argument(
        "--num", type=int, default=10, help="levels per side (default %(default)s; the market "
        "caps it: A-shares 5, HK 10 (SF 40), US 60)",
    )  # fmt: skip
    p.add_argument(
        "--once", action="store_true",
        help="print one ladder (get_order_book) and exit; also what happens when stdout is not "
        "a terminal (default: redraw it in place on every push until Ctrl-C)",
    )  # fmt: skip
    _endpoint(p)

    p = sub.add_parser("sim", help="run the OpenD simulator as a server (Ctrl-C stops)")
    _endpoint(p, "listen")
    p.add_argument(
        "--scenario",
        choices=tuple(SCENARIOS),
        help="a preset; the flags override it (default steady)",
    )
    p.add_argument("--market-hours", dest="market_hours", choices=MARKET_HOURS, help="default open")
    p.add_argument("--hp-volume", dest="hp_volume", action="store_true", help="set hpVolume")
    p.add_argument(
        "--quote-right",
        dest="quote_right",
        choices=("LV1", "LV2", "SF"),
        help="order-book depth per market: LV2 (default) HK 10, US 60, A-shares 5 levels; SF "
        "the HK full book (40) with order details",
    )
    for flag, field, kind, metavar, text in _SIM_FLAGS:
        p.add_argument(flag, dest=field, type=kind, metavar=metavar, help=_sim_help(text, field))
    p.add_argument(
        "--aes-mode",
        dest="aes_mode",
        choices=AES_MODES,
        help="with --rsa-key: auto (default) as the client asks (packetEncAlgo 2: CBC, else "
        "OpenD's ECB variant), or always cbc / ecb",
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = "scenarios:\n" + "".join(f"  {k:<9} {v}\n" for k, v in SCENARIO_HELP.items())
    p.epilog += "\nkill -USR1 PID sets off a burst of every code that has subscribers."

    p = sub.add_parser("demo", help="run a simulator in-process and stream its ticks")
    p.add_argument(
        "--codes",
        type=lambda s: tuple(c for c in s.split(",") if c),
        default=(),
        help=f"comma-separated codes to stream (default {','.join(DEMO_CODES)})",
    )
    p.add_argument(
        "--rate", type=_number(), default=4.0, help="ticks per second per code (default 4)"
    )
    p.add_argument("--seed", type=int, default=1, help="seed of prices and volumes (default 1)")
    _output(p)
    p.add_argument("--limit", type=int, help="stop after this many ticks (default: no limit)")
    p.add_argument("--host", default="127.0.0.1", help="simulator host (default %(default)s)")
    p.add_argument("--port", type=int, default=0, help="simulator port (default: a free one)")

    p = sub.add_parser(
        "keygen",
        help="write a new RSA private key for encrypted connections to OpenD",
        description="Write a fresh RSA private key (PKCS#1 PEM, the format OpenD reads) readable "
        "by its owner only, and print where OpenD, aiofutu and the official SDK take it.",
    )
    p.add_argument("file", metavar="FILE", help="where to write the key, e.g. opend_key.pem")
    p.add_argument(
        "--bits",
        type=int,
        choices=KEY_SIZES,
        default=1024,
        help="key size (default %(default)s; the official SDK only works with 1024)",
    )
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    _bridge.register(sub)  # `bridge`, and --nats for tail and record
    _snapshot.register(sub)  # `snapshot`
    for p in sub.choices.values():  # -v after the command too (SUPPRESS: keep one given before)
        p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=(
            "log at DEBUG level"
        ))  # fmt: skip
    return parser


def _check(args: argparse.Namespace) -> None:
    """Validate the command line before any connection is made; raises :class:`UsageError`."""
    if args.command == "keygen":
        if not os.path.isdir(os.path.dirname(os.path.abspath(args.file))):
            raise UsageError(f"cannot write {args.file!r}: its directory does not exist")
        if os.path.isdir(args.file):
            raise UsageError(f"{args.file!r} is a directory")
        if os.path.exists(args.file) and not args.force:
            raise UsageError(f"{args.file} already exists; use --force to replace it")
        return
    if connects(args):
        resolve_link(args)  # --host/--port/--rsa-key/--transport...: env, then the checks
    if args.command == "sim":
        args.host = args.host or os.environ.get("AIOFUTU_HOST") or DEFAULT_HOST
        if args.port is None:
            raw = os.environ.get("AIOFUTU_PORT") or str(DEFAULT_PORT)
            try:
                args.port = int(raw)
            except ValueError:
                raise UsageError(f"AIOFUTU_PORT must be a port number, got {raw!r}") from None
    if getattr(args, "rsa_key", None):
        from .._crypto import RsaKey

        RsaKey.load(args.rsa_key)  # a key that does not parse: one line, before connecting
    low = 0 if args.command in ("sim", "demo") else 1
    if not low <= args.port <= 65535:
        raise UsageError(f"--port must be in {low}..65535, got {args.port}")
    codes = (
        [args.code] if args.command in ("ticker", "kline", "book") else getattr(args, "codes", None)
    )
    if args.command != "sim":  # SimConfig checks its own
        for code in codes or ():
            parse_code(code)
    if args.command == "ticker":
        if not 1 <= args.num <= MAX_NUM:
            raise UsageError(
                f"--num must be in 1..{MAX_NUM} (OpenD keeps the latest {MAX_NUM} ticks), "
                f"got {args.num}"
            )
        if args.format == "parquet" and not args.out:
            raise UsageError("--format parquet needs --out FILE")
    if args.command == "kline":
        _kline.check_range_flags(args)  # --start/--end: a range, not --num
        _series.check_kline_flags(args)
    if args.command == "quote" and args.format == "parquet" and not args.out:
        raise UsageError("--format parquet needs --out FILE")
    if args.command == "book":
        from ..quotes.orderbook import get_order_book_request

        try:  # the market's depth, before connecting
            get_order_book_request(args.code, args.num)
        except ConfigurationError as exc:
            raise UsageError(str(exc)) from None
    if getattr(args, "kind", None) == "broker":
        from ..quotes.broker import check_broker_code

        for code in args.codes:
            check_broker_code(code)
    if getattr(args, "kind", None) in _series.SERIES_KINDS:
        _series.check_kind_flags(args)
    if getattr(args, "limit", None) is not None and args.limit < 1:
        raise UsageError(f"--limit must be >= 1, got {args.limit}")
    out = getattr(args, "out", None)
    if out and not os.path.isdir(os.path.dirname(os.path.abspath(out))):
        raise UsageError(f"cannot write {out!r}: its directory does not exist")
    if out and args.command == "record":
        format_of(out)  # the suffix names a format we write
    if out:
        try:
            check_writable(out)  # before connecting, not after a session
        except OSError as exc:
            raise UsageError(_one_line(exc)) from None
    if args.command == "demo":
        from ..sim import SimConfig

        try:
            SimConfig(seed=args.seed, tick_rate=args.rate, codes=args.codes or DEMO_CODES)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if args.command == "sim":
        _sim_config(args)  # every SimConfig rule, before binding a port


async def _run(args: argparse.Namespace) -> int:
    """Run the command; SIGINT/SIGTERM cancel it cleanly (files are written, sockets closed)."""
    command = _COMMANDS[args.command]
    if sys.platform == "win32":  # no signal receivers: Ctrl-C arrives as KeyboardInterrupt
        await command(args)
        return 0
    caught: list[int] = []
    error: Exception | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(_watch_signals, tg.cancel_scope, caught)
        try:
            await command(args)
        except Exception as exc:  # re-raised below, outside the task group (not wrapped)
            error = exc
        tg.cancel_scope.cancel()
    if error is not None:
        raise error
    if caught:
        return 0 if args.command == "record" else _INTERRUPTED
    return 0


async def _watch_signals(scope: anyio.CancelScope, caught: list[int]) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            caught.append(signum)
            scope.cancel()
            return


def _init_connect_noise(record: logging.LogRecord) -> bool:
    """Drop the library's warning about an unreadable InitConnect reply (an RSA key mismatch):
    the command's one-line error says the same."""
    args = record.args if isinstance(record.args, tuple) else ()
    return not any(isinstance(a, ProtocolError) and a.proto_id == 1001 for a in args)


def _link_lost_noise(record: logging.LogRecord) -> bool:
    """Drop the connection's warning that the link is lost: the command's one-line error (or,
    with ``--reconnect``, its line about reconnecting) says the same."""
    args = record.args if isinstance(record.args, tuple) else ()
    return not (record.msg == "conn %d: %s" and any(isinstance(a, FutuError) for a in args))


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OpenDError) and exc.proto_id == 3001:
        text = f"OpenD refused the subscription: {exc.ret_msg} (errCode {exc.err_code})"
    elif isinstance(exc, OSError) and not isinstance(exc, FutuError) and exc.strerror:
        text = exc.strerror if exc.filename is None else f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc) or type(exc).__name__
    text = text.replace("pass websocket_key=", "pass --websocket-key")  # the library's hint
    return " ".join(text.split())


def _unwrap(exc: BaseException) -> BaseException:
    while len(getattr(exc, "exceptions", ())) == 1:
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    return exc


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``aiofutu`` and ``python -m aiofutu``; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    connection_log = logging.getLogger("aiofutu.connection")
    if not args.verbose and _init_connect_noise not in connection_log.filters:
        connection_log.addFilter(_init_connect_noise)
    if not args.verbose and _link_lost_noise not in connection_log.filters:
        connection_log.addFilter(_link_lost_noise)
    try:
        _check(args)
        return anyio.run(_run, args)
    except KeyboardInterrupt:
        return _INTERRUPTED
    except BaseException as raised:
        exc = _unwrap(raised)
        if isinstance(exc, SystemExit):
            raise exc from None
        if isinstance(exc, BrokenPipeError):  # `aiofutu tail ... | head`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        if isinstance(exc, (UsageError, ConfigurationError)):
            sys.stderr.write(f"aiofutu {args.command}: error: {_one_line(exc)}\n")
            return 2
        if isinstance(exc, (FutuError, MissingDependency, OSError)):
            sys.stderr.write(f"aiofutu {args.command}: error: {_one_line(exc)}\n")
            return 1
        raise

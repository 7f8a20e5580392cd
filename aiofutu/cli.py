"""The ``aiofutu`` command line: ``tail``, ``ticker``, ``record``, ``sim``, ``demo`` and ``keygen``.

A user error (OpenD unreachable, an invalid code, a refused subscription, a bad option) ends
with one line on stderr and a non-zero status, never a traceback: 2 for a bad command line,
1 for everything that went wrong at run time, 130 after Ctrl-C (``record`` then writes its file
and exits 0, since Ctrl-C is how a recording is ended).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

import anyio
import anyio.to_thread

from . import __version__
from .client import DEFAULT_HOST, DEFAULT_PORT, connect
from .codes import parse_code
from .errors import ConfigurationError, FutuError, MissingDependency, OpenDError, ProtocolError
from .record import Recorder, ticks_to_frame

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from .models import Ticker
    from .sim import Simulator

__all__ = ("main",)

DEMO_CODES = ("HK.00700", "US.AAPL", "HK.09988", "SH.600519")
MAX_NUM = 1000
KEY_SIZES = (1024, 2048, 3072, 4096)
_COLOURS = {"BUY": "\033[32m", "SELL": "\033[31m", "NEUTRAL": "\033[33m"}
_RESET = "\033[0m"
_INTERRUPTED = 130


class UsageError(Exception):
    """A bad command line: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (its default prints the whole usage first)."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


# ---- output ----------------------------------------------------------------------------------


def _price(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") if value == value else "nan"


class TickPrinter:
    """Renders ticks as an aligned, colourised table, or as JSON lines (every field)."""

    HEADER = f"{'time':<23}  {'code':<10} {'price':>10} {'volume':>9}  {'direction':<9} type"

    def __init__(self, out: TextIO, fmt: str = "table", colour: bool | None = None) -> None:
        self.out = out
        self.fmt = fmt
        self.colour = _use_colour(out, "auto") if colour is None else colour
        self._header_done = False

    def __call__(self, tick: Ticker) -> None:
        if self.fmt == "json":
            self.out.write(tick.model_dump_json() + "\n")
            return
        if not self._header_done:
            self._header_done = True
            self.out.write(self.HEADER + "\n")
        direction = tick.ticker_direction.value
        line = (
            f"{tick.time:<23}  {tick.code:<10} {_price(tick.price):>10} {tick.volume:>9}  "
            f"{direction:<9} {tick.type.value}"
        )
        if self.colour:
            line = f"{_COLOURS.get(direction, '')}{line}{_RESET}"
        self.out.write(line + "\n")

    def flush(self) -> None:
        self.out.flush()


def _use_colour(out: TextIO, mode: str) -> bool:
    if mode != "auto":
        return mode == "always"
    return out.isatty() and not os.environ.get("NO_COLOR")


def _table(ticks: list[Ticker]) -> str:
    lines = [
        f"{'code':<10} {'time':<23} {'price':>10} {'volume':>9} {'turnover':>14} "
        f"{'direction':<9} {'sequence':>20} type"
    ]
    lines += [
        f"{t.code:<10} {t.time:<23} {_price(t.price):>10} {t.volume:>9} {t.turnover:>14.2f} "
        f"{t.ticker_direction.value:<9} {t.sequence:>20} {t.type.value}"
        for t in ticks
    ]
    return "\n".join(lines) + "\n"


def _write_ticks(ticks: list[Ticker], fmt: str, out: str | None) -> None:
    if fmt == "parquet":
        assert out is not None  # checked with the command line
        ticks_to_frame(ticks).write_parquet(out)
        return
    if fmt == "table":
        text = _table(ticks)
    elif fmt == "json":
        text = "".join(t.model_dump_json() + "\n" for t in ticks)
    else:
        text = ticks_to_frame(ticks).write_csv()
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)


# ---- commands --------------------------------------------------------------------------------


async def _stream(
    host: str,
    port: int,
    codes: Sequence[str],
    printer: TickPrinter,
    limit: int | None,
    rsa_key: str | None = None,
) -> None:
    async with (
        connect(host, port, client_id="aiofutu-cli", rsa_private_key=rsa_key) as client,
        client.ticker_stream(*codes, overflow="drop_oldest") as stream,
    ):
        count = 0
        try:
            async for tick in stream:
                printer(tick)
                count += 1
                if limit is not None and count >= limit:
                    break
                if not stream.pending:
                    printer.flush()
        finally:
            printer.flush()


async def _tail(args: argparse.Namespace) -> None:
    printer = TickPrinter(sys.stdout, args.format, _use_colour(sys.stdout, args.colour))
    await _stream(args.host, args.port, args.codes, printer, args.limit, args.rsa_key)


async def _ticker(args: argparse.Namespace) -> None:
    async with connect(
        args.host, args.port, client_id="aiofutu-cli", rsa_private_key=args.rsa_key
    ) as client:
        await client.subscribe([args.code], ["TICKER"], subscribe_push=False)
        ticks = await client.get_rt_ticker(args.code, args.num)
    _write_ticks(ticks, args.format, args.out)


async def _record(args: argparse.Namespace) -> None:
    recorder = Recorder(
        args.codes, limit=args.limit, duration=args.duration, first_push=args.first_push
    )
    try:
        async with connect(
            args.host, args.port, client_id="aiofutu-record", rsa_private_key=args.rsa_key
        ) as client:
            await recorder.run(client)
    finally:
        if recorder.streaming:  # subscribed: write what was recorded, even after Ctrl-C
            with anyio.CancelScope(shield=True):  # Ctrl-C cancelled the command's scope
                count = await recorder.awrite(args.out)
            gaps = f", {len(recorder.gaps)} gap(s) in the tape" if recorder.gaps else ""
            sys.stderr.write(f"aiofutu record: wrote {count} ticks to {args.out}{gaps}\n")


def _sim_config(args: argparse.Namespace, **fixed: Any) -> Any:
    from .sim import SimConfig

    options: dict[str, Any] = {}
    for field in _SIM_FIELDS:
        value = getattr(args, field, None)
        if value is not None and value is not False:  # only what was given: presets fill in
            options[field] = value
    if "codes" in options:
        options["codes"] = tuple(c for c in options["codes"].split(",") if c)
    options.update(fixed)
    try:
        return SimConfig(**options)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


async def _sim(args: argparse.Namespace) -> None:
    from .sim import Simulator

    config = _sim_config(args, host=args.host, port=args.port)
    async with Simulator(config) as server, anyio.create_task_group() as tg:
        extra = ", ".join(f"{k}={v}" for k, v in config.changed().items() if k != "codes")
        _say(f"aiofutu sim: listening on {server.host}:{server.port}" + (extra and f" ({extra})"))
        if server.websocket_port is not None:
            _say(f"aiofutu sim: WebSocket gateway on ws://{server.host}:{server.websocket_port}")
        if server.replay is not None:
            tg.start_soon(_report_replay, server)
        if hasattr(signal, "SIGUSR1"):
            tg.start_soon(_burst_on_signal, server)
        await anyio.sleep_forever()


async def _keygen(args: argparse.Namespace) -> None:
    from ._crypto import generate_private_key_pem

    pem = await anyio.to_thread.run_sync(generate_private_key_pem, args.bits)
    path = await anyio.to_thread.run_sync(_write_private, args.file, pem, args.force)
    sdk = "it only works with 1024-bit keys" + ("" if args.bits == 1024 else ", not this one")
    sys.stdout.write(
        f"wrote a {args.bits}-bit RSA private key (PKCS#1 PEM, mode 0600) to {path}\n"
        "\n"
        "OpenD: set rsa_private_key to its absolute path in OpenD.xml (FutuOpenD.xml),\n"
        f"    <rsa_private_key>{path}</rsa_private_key>\n"
        "  (GUI OpenD: the encryption private key path setting), then restart OpenD.\n"
        "aiofutu:\n"
        f'    aiofutu.connect(host, port, rsa_private_key="{path}")\n'
        f"    aiofutu tail HK.00700 --host HOST --rsa-key {path}\n"
        f"    aiofutu sim --rsa-key {path}    # a simulator that requires it\n"
        f"futu-api (the official SDK; {sdk}):\n"
        "    SysConfig.enable_proto_encrypt(True)\n"
        f'    SysConfig.set_init_rsa_file("{path}")\n'
        "Every client of that OpenD needs this file; keep it private.\n"
    )
    if args.bits != 1024:
        _say(
            f"aiofutu keygen: warning: the official SDK (futu-api) only works with 1024-bit "
            f"keys, and OpenD documents no other size; aiofutu and its simulator take "
            f"{args.bits} bits"
        )


def _write_private(file: str, data: bytes, force: bool) -> str:
    """Write ``data`` to a new file readable by its owner only (replace it with ``force``).

    Returns the file's absolute path.
    """
    path = os.path.abspath(file)
    target = path
    if os.path.exists(path):
        if not force:
            raise FileExistsError(f"{path} already exists; use --force to replace it")
        target = f"{path}.{os.getpid()}.tmp"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            if hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), 0o600)  # exactly 0600, whatever the umask
            fh.write(data)
        if target != path:
            os.replace(target, path)
    except BaseException:
        if target != path:
            with contextlib.suppress(OSError):
                os.unlink(target)
        raise
    return path


async def _report_replay(server: Simulator) -> None:
    assert server.replay is not None
    _say(f"aiofutu sim: replay of {len(server.replay.rows)} ticks starts at the first subscription")
    await server.replay.done.wait()
    _say(f"aiofutu sim: replay finished ({server.replay.pushed} ticks)")


async def _burst_on_signal(server: Simulator) -> None:
    """``kill -USR1 <pid>``: a burst of every code someone receives pushes for."""
    n = server.config.burst or 10_000
    with anyio.open_signal_receiver(signal.SIGUSR1) as signals:
        async for _ in signals:
            for code in server.watched_codes():
                result = await server.burst(code, n, ticks_per_push=server.config.burst_per_push)
                _say(f"aiofutu sim: burst of {result.ticks} {code} ticks")


async def _demo(args: argparse.Namespace) -> None:
    from .sim import serve

    codes = args.codes or DEMO_CODES
    async with serve(
        host=args.host, port=args.port, seed=args.seed, tick_rate=args.rate, codes=codes
    ) as server:
        _say(
            f"aiofutu demo: simulator on {server.host}:{server.port}, streaming "
            f"{', '.join(codes)} (Ctrl-C stops)"
        )
        printer = TickPrinter(sys.stdout, args.format, _use_colour(sys.stdout, args.colour))
        await _stream(server.host, server.port, codes, printer, args.limit)


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


_COMMANDS: dict[str, Callable[[argparse.Namespace], Awaitable[None]]] = {
    "tail": _tail,
    "ticker": _ticker,
    "record": _record,
    "sim": _sim,
    "demo": _demo,
    "keygen": _keygen,
}


# ---- command line ----------------------------------------------------------------------------

#: sim flags that map one to one onto SimConfig fields: (flag, field, type, metavar, help)
_SIM_FLAGS: tuple[tuple[str, str, Any, str, str], ...] = (
    ("--codes", "codes", str, "CODES", "comma-separated codes with live ticks from the start"),
    ("--seed", "seed", int, "N", "seed of prices and volumes (default 1)"),
    ("--rate", "tick_rate", float, "N", "live ticks per second per code (default 50; 0 = none)"),
    ("--burst", "burst", int, "N", "N ticks as fast as possible after each push registration"),
    ("--burst-per-push", "burst_per_push", int, "K", "ticks per push message in a burst"),
    ("--gap-every", "gap_every", int, "N", "skip trades before every N-th tick (gaps)"),
    ("--gap-size", "gap_size", int, "N", "trades skipped at each gap (default 1)"),
    ("--reply-delay", "reply_delay", float, "S", "seconds before every reply (a slow OpenD)"),
    ("--drop-after-frames", "drop_after_frames", int, "N", "close connections after N frames"),
    ("--corrupt-replies", "corrupt_replies", int, "N", "the next N replies get a bad SHA1"),
    ("--corrupt-pushes", "corrupt_pushes", int, "N", "the next N pushes get a bad SHA1"),
    ("--corrupt-every", "corrupt_every", int, "N", "every N-th push gets a bad SHA1"),
    ("--sub-quota", "sub_quota", int, "N", "subscription quota (default 1000; 0 refuses all)"),
    ("--unsub-min-age", "unsub_min_age", float, "S", "seconds before unsubscribing (60)"),
    ("--max-ticks", "max_ticks", int, "N", "ticks kept per code for get_rt_ticker (1000)"),
    ("--keepalive-interval", "keepalive_interval", int, "S", "keepAliveInterval (default 10)"),
    ("--replay", "replay", str, "FILE", "serve a recording (aiofutu record), not random ticks"),
    ("--speed", "speed", float, "X", "replay speed: 1 = as recorded, 10 = 10x, 0 = no waiting"),
    ("--rsa-key", "rsa_key", str, "FILE", "OpenD's RSA private key: require encryption"),
    ("--websocket-port", "websocket_port", int, "PORT", "also serve OpenD's WebSocket gateway"),
    ("--websocket-key", "websocket_key", str, "KEY", "the gateway's key (Init sends its MD5)"),
)
_SIM_FIELDS = (*(f[1] for f in _SIM_FLAGS), "scenario", "market_hours", "hp_volume", "aes_mode")


def _endpoint(parser: argparse.ArgumentParser, what: str = "OpenD") -> None:
    parser.add_argument("--host", help=f"{what} host (env AIOFUTU_HOST, default {DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=int, help=f"{what} port (env AIOFUTU_PORT, default {DEFAULT_PORT})"
    )
    if what == "OpenD":
        parser.add_argument(
            "--rsa-key",
            metavar="FILE",
            help="OpenD's RSA private key (its rsa_private_key setting; env AIOFUTU_RSA_KEY): "
            "encrypt the connection",
        )


def _output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument(
        "--colour", "--color", choices=("auto", "always", "never"), default="auto",
        help="colour the table by direction (auto: on a terminal, unless NO_COLOR is set)",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    from .sim import MARKET_HOURS, SCENARIOS
    from .sim._config import AES_MODES
    from .sim._scenarios import SCENARIO_HELP

    parser = _Parser(
        prog="aiofutu", description="asyncio client for the Futu / moomoo OpenD quote gateway"
    )
    parser.add_argument("--version", action="version", version=f"aiofutu {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("tail", help="stream live ticks of CODE... until Ctrl-C")
    p.add_argument("codes", nargs="+", metavar="CODE", help="e.g. HK.00700 US.AAPL")
    _output(p)
    p.add_argument("--limit", type=int, help="stop after this many ticks")
    _endpoint(p)

    p = sub.add_parser("ticker", help="the latest ticks of CODE (get_rt_ticker)")
    p.add_argument("code", metavar="CODE")
    p.add_argument("--num", type=int, default=100, help="1..1000 (default %(default)s)")
    p.add_argument(
        "--format",
        choices=("table", "csv", "json", "parquet"),
        default="table",
        help="csv, json and parquet carry every field (parquet needs --out)",
    )
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    _endpoint(p)

    p = sub.add_parser("record", help="record every pushed tick of CODE... to a Parquet file")
    p.add_argument("codes", nargs="+", metavar="CODE")
    p.add_argument("--out", metavar="FILE", required=True, help="Parquet file to write")
    p.add_argument("--limit", type=int, help="stop after this many ticks")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument(
        "--first-push", action="store_true", help="also record the latest tick sent on subscribe"
    )
    _endpoint(p)

    p = sub.add_parser("sim", help="run the OpenD simulator as a server (Ctrl-C stops)")
    _endpoint(p, "listen")
    p.add_argument(
        "--scenario", choices=tuple(SCENARIOS), help="a preset; the other flags override it"
    )
    p.add_argument("--market-hours", dest="market_hours", choices=MARKET_HOURS, help="default open")
    p.add_argument("--hp-volume", dest="hp_volume", action="store_true", help="set hpVolume")
    for flag, field, kind, metavar, text in _SIM_FLAGS:
        p.add_argument(flag, dest=field, type=kind, metavar=metavar, help=text)
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
    p.add_argument("--codes", type=lambda s: tuple(c for c in s.split(",") if c), default=())
    p.add_argument("--rate", type=float, default=4.0, help="ticks per second per code")
    p.add_argument("--seed", type=int, default=1)
    _output(p)
    p.add_argument("--limit", type=int, help="stop after this many ticks")
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
    if args.command in ("tail", "ticker", "record", "sim"):
        args.host = args.host or os.environ.get("AIOFUTU_HOST") or DEFAULT_HOST
        if args.port is None:
            raw = os.environ.get("AIOFUTU_PORT") or str(DEFAULT_PORT)
            try:
                args.port = int(raw)
            except ValueError:
                raise UsageError(f"AIOFUTU_PORT must be a port number, got {raw!r}") from None
    if args.command in ("tail", "ticker", "record"):
        args.rsa_key = args.rsa_key or os.environ.get("AIOFUTU_RSA_KEY") or None
    if getattr(args, "rsa_key", None):
        from ._crypto import RsaKey

        RsaKey.load(args.rsa_key)  # a key that does not parse: one line, before connecting
    low = 0 if args.command in ("sim", "demo") else 1
    if not low <= args.port <= 65535:
        raise UsageError(f"--port must be in {low}..65535, got {args.port}")
    codes = [args.code] if args.command == "ticker" else getattr(args, "codes", None)
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
    if getattr(args, "limit", None) is not None and args.limit < 1:
        raise UsageError(f"--limit must be >= 1, got {args.limit}")
    if getattr(args, "duration", None) is not None and not args.duration > 0:
        raise UsageError(f"--duration must be > 0 seconds, got {args.duration}")
    out = getattr(args, "out", None)
    if out and not os.path.isdir(os.path.dirname(os.path.abspath(out))):
        raise UsageError(f"cannot write {out!r}: its directory does not exist")
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


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OpenDError) and exc.proto_id == 3001:
        text = f"OpenD refused the subscription: {exc.ret_msg} (errCode {exc.err_code})"
    else:
        text = str(exc) or type(exc).__name__
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

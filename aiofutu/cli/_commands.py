"""The commands: ``tail``, ``ticker``, ``record``, ``sim``, ``demo``, ``keygen``, ``kline``,
``quote`` and ``book``."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from ..client import connect
from ..record import Recorder
from ..state import ClientState, ReconnectPolicy
from . import _series, _state
from ._link import open_client
from ._output import TickPrinter, _say, _use_colour, _write_ticks

if TYPE_CHECKING:
    import argparse
    from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

    from ..client import Client
    from ..sim import Simulator

DEMO_CODES = ("HK.00700", "US.AAPL", "HK.09988", "SH.600519")


async def _stream(
    client: Client,
    codes: Sequence[str],
    printer: TickPrinter,
    limit: int | None,
    reconnect: bool = False,
) -> None:
    """Print the ticks of ``codes`` from ``client`` (not entered yet) until ``limit``."""
    async with (
        client,
        _link_reports(client, "tail", reconnect),
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
    if getattr(args, "kind", "ticker") in _series.SERIES_KINDS:
        await _series.tail_series(args)
        return
    if getattr(args, "kind", "ticker") in _state.STATE_KINDS:
        await _state.tail_state(args)
        return
    printer = TickPrinter(sys.stdout, args.format, _use_colour(sys.stdout, args.colour))
    client = open_client(args, reconnect=_policy(args.reconnect))
    await _stream(client, args.codes, printer, args.limit, args.reconnect)


def _policy(reconnect: bool) -> ReconnectPolicy | bool:
    """``--reconnect``: back off from 0.5 s to 30 s between attempts, until stopped."""
    return ReconnectPolicy(initial_delay=0.5, max_delay=30.0) if reconnect else False


@contextlib.asynccontextmanager
async def _link_reports(client: Client, command: str, enabled: bool) -> AsyncIterator[None]:
    """With ``--reconnect``: one line on stderr when the link drops and when it is back."""
    if not enabled:
        yield
        return
    async with anyio.create_task_group() as tg:
        tg.start_soon(_report_link, client, command)
        try:
            yield
        finally:
            tg.cancel_scope.cancel()


async def _report_link(client: Client, command: str) -> None:
    last = client.state
    async with client.state_changes() as changes:
        async for change in changes:
            if change.state is ClientState.RECONNECTING and last is not change.state:
                _say(f"aiofutu {command}: link to OpenD lost ({change.cause}); reconnecting")
            elif change.state is ClientState.READY and last is ClientState.RECONNECTING:
                _say(f"aiofutu {command}: {change.cause or 'reconnected'}")
            last = change.state


async def _ticker(args: argparse.Namespace) -> None:
    async with open_client(args) as client:
        await client.subscribe([args.code], ["TICKER"], subscribe_push=False)
        ticks = await client.get_rt_ticker(args.code, args.num)
    _write_ticks(ticks, args.format, args.out)


async def _record(args: argparse.Namespace) -> None:
    if getattr(args, "kind", "ticker") in _series.SERIES_KINDS:
        await _series.record_series(args)
        return
    if getattr(args, "kind", "ticker") in _state.STATE_KINDS:
        await _state.record_state(args)
        return
    recorder = Recorder(
        args.codes, limit=args.limit, duration=args.duration, first_push=args.first_push
    )
    try:
        async with (
            open_client(args, "aiofutu-record", reconnect=_policy(args.reconnect)) as client,
            _link_reports(client, "record", args.reconnect),
        ):
            await recorder.run(client, out=args.out)  # written as it grows, complete on Ctrl-C
    finally:
        if recorder.written is not None:
            gaps = f", {len(recorder.gaps)} gap(s) in the tape" if recorder.gaps else ""
            sys.stderr.write(
                f"aiofutu record: wrote {recorder.written} ticks to {args.out}{gaps}\n"
            )


async def _sim(args: argparse.Namespace) -> None:
    from ..sim import Simulator
    from ._config import _sim_config

    config = _sim_config(args, host=args.host, port=args.port)
    listening = _listening(Simulator(config), args.host, args.port)
    async with listening as server, anyio.create_task_group() as tg:
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
    from .._crypto import generate_private_key_pem

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
    from ..sim import serve

    codes = args.codes or DEMO_CODES
    async with _listening(
        serve(host=args.host, port=args.port, seed=args.seed, tick_rate=args.rate, codes=codes),
        args.host,
        args.port,
    ) as server:
        _say(
            f"aiofutu demo: simulator on {server.host}:{server.port}, streaming "
            f"{', '.join(codes)} (Ctrl-C stops)"
        )
        if sys.stdout.isatty() and args.format == "table":
            from ._board import run_board

            title = f"aiofutu demo  {server.host}:{server.port}  (Ctrl-C stops)"
            async with connect(server.host, server.port, client_id="aiofutu-demo") as client:
                await run_board(client, codes, sys.stdout, title, args.limit)
            return
        printer = TickPrinter(sys.stdout, args.format, _use_colour(sys.stdout, args.colour))
        client = connect(server.host, server.port, client_id="aiofutu-demo")
        await _stream(client, codes, printer, args.limit)


@contextlib.asynccontextmanager
async def _listening(
    simulator: contextlib.AbstractAsyncContextManager[Simulator], host: str, port: int
) -> AsyncIterator[Simulator]:
    """Enter a simulator; a port that cannot be bound is one line naming the address."""
    async with contextlib.AsyncExitStack() as stack:
        try:
            server = await stack.enter_async_context(simulator)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise OSError(exc.errno, f"cannot listen on {host}:{port}: {reason}") from None
        yield server


_COMMANDS: dict[str, Callable[[argparse.Namespace], Awaitable[None]]] = {
    "tail": _tail,
    "ticker": _ticker,
    "record": _record,
    "sim": _sim,
    "demo": _demo,
    "keygen": _keygen,
    "kline": _series.kline_command,
    "quote": _state.quote_command,
    "book": _state.book_command,
}

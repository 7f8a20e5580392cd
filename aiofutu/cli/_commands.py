"""The commands: ``tail``, ``ticker``, ``record``, ``sim``, ``demo`` and ``keygen``."""

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
from ._output import TickPrinter, _say, _use_colour, _write_ticks

if TYPE_CHECKING:
    import argparse
    from collections.abc import Awaitable, Callable, Sequence

    from ..sim import Simulator

DEMO_CODES = ("HK.00700", "US.AAPL", "HK.09988", "SH.600519")


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


async def _sim(args: argparse.Namespace) -> None:
    from ..sim import Simulator
    from ._main import _sim_config

    config = _sim_config(args, host=args.host, port=args.port)
    async with Simulator(config) as server, anyio.create_task_group() as tg:
        extra = ", ".join(f"{k}={v}" for k, v in config.changed().items() if k != "codes")
        _say(f"aiofutu sim: listening on {server.host}:{server.port}" + (extra and f" ({extra})"))
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
    async with serve(
        host=args.host, port=args.port, seed=args.seed, tick_rate=args.rate, codes=codes
    ) as server:
        _say(
            f"aiofutu demo: simulator on {server.host}:{server.port}, streaming "
            f"{', '.join(codes)} (Ctrl-C stops)"
        )
        printer = TickPrinter(sys.stdout, args.format, _use_colour(sys.stdout, args.colour))
        await _stream(server.host, server.port, codes, printer, args.limit)


_COMMANDS: dict[str, Callable[[argparse.Namespace], Awaitable[None]]] = {
    "tail": _tail,
    "ticker": _ticker,
    "record": _record,
    "sim": _sim,
    "demo": _demo,
    "keygen": _keygen,
}

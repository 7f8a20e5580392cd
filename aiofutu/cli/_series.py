"""The series kinds on the command line: ``tail``/``record --kind kline|rt`` and ``kline --num``.

``--kind`` takes the names of :data:`aiofutu._kinds.KINDS`. Each series update is one row: the
bar (or minute) and whether it is closed; ``--closed-only`` keeps the closed ones (each once).
``aiofutu kline CODE --num N`` prints the latest bars (``get_cur_kline``); its flags are a group
of their own (:func:`add_kline_flags`), next to which the history range flags can sit.
"""

from __future__ import annotations

import functools
import json
import math
import sys
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from .._kinds import KINDS
from ..quotes._series_router import kline_sub_type
from ..quotes.kline import MAX_KL_NUM, AuType, KLType, check_au_type, check_kl_type
from ._config import UsageError
from ._link import open_client
from ._rows import record_rows

if TYPE_CHECKING:
    import argparse

    from ..client import Client
    from ..quotes.series_stream import KLineUpdate, RTUpdate, SeriesStream

__all__ = (
    "KIND_NAMES",
    "SERIES_KINDS",
    "add_kind_flags",
    "add_kline_flags",
    "check_kind_flags",
    "check_kline_flags",
    "kline_command",
    "record_series",
    "tail_series",
)

#: ``--kind`` choices: every kind of the table.
KIND_NAMES = tuple(k.name for k in KINDS)
#: the kinds this module streams (the others have their own commands' paths)
SERIES_KINDS = tuple(k.name for k in KINDS if k.shape == "series")
_KTYPES = tuple(k.value for k in KLType if k is not KLType.NONE)
_AUTYPES = tuple(a.value for a in AuType)


def add_kind_flags(parser: argparse.ArgumentParser, what: str) -> None:
    """``--kind`` (from the table of kinds) and the K-line options of ``tail`` and ``record``."""
    parser.add_argument(
        "--kind", choices=KIND_NAMES, default="ticker",
        help=f"what to {what}: ticks, K-line bars, time-share minutes, or the states quote, "
        "order_book, broker (default %(default)s)",
    )  # fmt: skip
    _period_flags(parser)
    parser.add_argument(
        "--closed-only", action="store_true",
        help="kline/rt: only closed bars/minutes, each once (default: every update too)",
    )  # fmt: skip


def _period_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ktype", default="K_1M", metavar="KTYPE",
        help=f"bar period: {', '.join(_KTYPES)} (default %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--autype", default="qfq", metavar="AUTYPE",
        help=f"price adjustment: {', '.join(_AUTYPES)} (default %(default)s)",
    )  # fmt: skip


def check_kind_flags(args: argparse.Namespace) -> None:
    """Reject a bad ``--ktype``/``--autype`` before connecting (one line)."""
    check_kl_type(args.ktype)
    check_au_type(args.autype)


# ------------------------------------------------------------------------------ rendering


def _row(update: KLineUpdate | RTUpdate) -> dict[str, Any]:
    """One update as a flat JSON-able row."""
    data = update.model_dump(mode="json")
    item = data.pop("bar", None) or data.pop("point")
    return {**data, **item}


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}".rstrip("0").rstrip(".")


class SeriesPrinter:
    """Series updates as an aligned table, or JSON lines (every field)."""

    def __init__(self, out: Any, fmt: str, kind: str) -> None:
        self.out = out
        self.fmt = fmt
        self.kind = kind
        self._header = False

    def __call__(self, update: Any) -> None:
        if self.fmt == "json":
            self.out.write(json.dumps(_row(update)) + "\n")
            return
        if not self._header:
            self._header = True
            cols = (
                "open       high        low      close"
                if self.kind == "kline"
                else "price        avg"
            )
            self.out.write(f"{'time':<19}  {'code':<10} {'state':<6} {cols}      volume\n")
        state = "closed" if update.closed else "open"
        if self.kind == "kline":
            b = update.bar
            nums = f"{_num(b.open):>10} {_num(b.high):>10} {_num(b.low):>10} {_num(b.close):>10}"
            t, volume = b.time, b.volume
        else:
            p = update.point
            nums = f"{_num(p.price):>10} {_num(p.avg_price):>10}"
            t, volume = p.time, p.volume
        self.out.write(f"{t:<19}  {update.code:<10} {state:<6} {nums} {_num(volume):>11}\n")

    def flush(self) -> None:
        self.out.flush()


def _open_stream(client: Client, args: argparse.Namespace) -> SeriesStream[Any]:
    if args.kind == "kline":
        return client.kline_stream(
            *args.codes,
            ktype=args.ktype,
            autype=args.autype,
            closed_only=args.closed_only,
            overflow="drop_oldest",
        )
    return client.rt_stream(*args.codes, closed_only=args.closed_only, overflow="drop_oldest")


async def tail_series(args: argparse.Namespace) -> None:
    """``aiofutu tail --kind kline|rt CODE...``: print updates until Ctrl-C or ``--limit``."""
    from ._commands import _link_reports, _policy

    printer = SeriesPrinter(sys.stdout, args.format, args.kind)
    async with (
        open_client(args, reconnect=_policy(args.reconnect)) as client,
        _link_reports(client, "tail", args.reconnect),
        _open_stream(client, args) as stream,
    ):
        count = 0
        try:
            async for update in stream:
                printer(update)
                count += 1
                if args.limit is not None and count >= args.limit:
                    break
                if not stream.pending:
                    printer.flush()
        finally:
            printer.flush()


async def record_series(args: argparse.Namespace) -> None:
    """``aiofutu record --kind kline|rt CODE... --out F``: every update (or closed item),
    written as they come (:mod:`._rows`)."""
    from ._commands import _link_reports, _policy
    from ._state import report_written

    async with (
        open_client(args, "aiofutu-record", reconnect=_policy(args.reconnect)) as client,
        _link_reports(client, "record", args.reconnect),
        _open_stream(client, args) as stream,
    ):
        with anyio.move_on_after(args.duration if args.duration is not None else math.inf):
            await record_rows(
                stream,
                _row,
                args.out,
                limit=args.limit,
                written=functools.partial(report_written, args, ""),
            )


# ------------------------------------------------------------------------------ kline --num


def add_kline_flags(parser: argparse.ArgumentParser) -> None:
    """The ``kline`` command's latest-bars group: ``--num`` (get_cur_kline) and the period."""
    group = parser.add_argument_group("latest bars (get_cur_kline)")
    group.add_argument(
        "--num", type=int, default=None, help=f"the latest 1..{MAX_KL_NUM} bars (default 100)"
    )
    _period_flags(group)  # type: ignore[arg-type]


def check_kline_flags(args: argparse.Namespace) -> None:
    """``kline``'s checks before connecting."""
    check_kind_flags(args)
    num = 100 if args.num is None else args.num
    if not 1 <= num <= MAX_KL_NUM:
        raise UsageError(
            f"--num must be in 1..{MAX_KL_NUM} (OpenD keeps the latest {MAX_KL_NUM} bars), "
            f"got {num}"
        )
    args.num = num
    if args.format == "parquet" and not args.out:
        raise UsageError("--format parquet needs --out FILE")


def _bars_text(frame: Any, fmt: str) -> str:
    if fmt == "csv":
        return str(frame.write_csv())
    if fmt == "json":
        return "".join(json.dumps(r) + "\n" for r in frame.iter_rows(named=True))
    head = f"{'time_key':<19} {'open':>10} {'high':>10} {'low':>10} {'close':>10} {'volume':>12}"
    lines = [head]
    lines += [
        f"{r['time_key']:<19} {_num(r['open']):>10} {_num(r['high']):>10} "
        f"{_num(r['low']):>10} {_num(r['close']):>10} {_num(r['volume']):>12}"
        for r in frame.iter_rows(named=True)
    ]
    return "\n".join(lines) + "\n"


async def kline_command(args: argparse.Namespace) -> None:
    """``aiofutu kline CODE --num N``: subscribe the period (no push) and print its latest bars."""
    sub_type = kline_sub_type(check_kl_type(args.ktype))
    async with open_client(args) as client:
        await client.subscribe([args.code], [sub_type], subscribe_push=False)
        frame = await client.get_cur_kline_frame(args.code, args.num, args.ktype, args.autype)
    if args.format == "parquet":
        await anyio.to_thread.run_sync(frame.write_parquet, args.out)
        return
    text = _bars_text(frame, args.format)
    if args.out:
        await anyio.to_thread.run_sync(_write_text, args.out, text)
    else:
        sys.stdout.write(text)


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)

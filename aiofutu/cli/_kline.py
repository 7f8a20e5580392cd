"""``aiofutu kline CODE --ktype K_1M --start D --end D``: history K-lines of a range (3103).

The range flags sit next to ``--num`` (the latest bars, :mod:`._series`) on the one ``kline``
command; any of them selects the range. The range is paged automatically (1000 bars a
request); on a terminal a progress line on stderr shows the bars so far and how far into the
range they reach. ``table`` prints the bars; ``csv`` and ``parquet`` carry the SDK's
``request_history_kline`` columns (``code, name``, then the fields), ``json`` one line per bar
with every field of :class:`aiofutu.quotes.kline.KLine`. Blank bars are skipped, as the SDK
does. Everything is checked before connecting.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from typing import TYPE_CHECKING

from ..quotes.history import ALL_FIELDS, history_to_polars, make_history_query
from . import _series
from ._commands import _COMMANDS
from ._config import UsageError
from ._link import open_client

if TYPE_CHECKING:
    from ..quotes.history import HistoryQuery
    from ..quotes.kline import KLine

__all__ = ("add_range_flags", "check_range_flags", "is_range")
_FMT = "%Y-%m-%d %H:%M:%S"


def add_range_flags(parser: argparse.ArgumentParser) -> None:
    """The ``kline`` command's history-range group (next to ``--num``, get_cur_kline's)."""
    group = parser.add_argument_group(
        "history range (request_history_kline; pages automatically, no subscription)"
    )
    group.add_argument(
        "--start",
        metavar="D",
        help="first day (or time) of the range (default: 365 days before --end)",
    )
    group.add_argument(
        "--end",
        metavar="D",
        help="last day (or time) of the range (default: 365 days after --start)",
    )
    group.add_argument(
        "--fields", metavar="F,F", help=f"columns (default all: {','.join(ALL_FIELDS)})"
    )
    group.add_argument(
        "--max-count", type=_positive, metavar="N", help="stop after N bars (default: all)"
    )
    group.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress line on stderr (default: one on a terminal)",
    )
    _COMMANDS["kline"] = _dispatch


def is_range(args: argparse.Namespace) -> bool:
    """Whether ``kline`` asks for a history range rather than the latest bars."""
    return any(
        getattr(args, name, None) is not None for name in ("start", "end", "fields", "max_count")
    )


def check_range_flags(args: argparse.Namespace) -> None:
    """Before ``--num``'s checks: a range and ``--num`` exclude each other; the range's own."""
    if not is_range(args):
        return
    if args.num is not None:
        raise UsageError("--num (the latest bars) and --start/--end (a range) exclude each other")
    _query(args)  # InvalidHistoryRequest: one line, before connecting


async def _dispatch(args: argparse.Namespace) -> None:
    if is_range(args):
        await _kline(args)
    else:
        await _series.kline_command(args)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def _query(args: argparse.Namespace) -> HistoryQuery:
    fields = [f.strip() for f in args.fields.split(",") if f.strip()] if args.fields else None
    return make_history_query(
        args.code, args.start, args.end, args.ktype, args.autype, fields
    )  # InvalidHistoryRequest: a one-line usage error


class _Progress:
    """``\\r1,234 bars, 2 pages, to 2024-03-01 10:00:00 (42%)`` on a terminal's stderr."""

    def __init__(self, query: HistoryQuery, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.begin = _dt.datetime.strptime(query.begin, _FMT)
        self.span = (_dt.datetime.strptime(query.end, _FMT) - self.begin).total_seconds() or 1.0
        self.shown = False

    def update(self, bars: int, pages: int, last: str | None) -> None:
        if not self.enabled:
            return
        share = ""
        if last:
            try:
                at = _dt.datetime.strptime(last[:19], _FMT)
            except ValueError:
                at = None
            if at is not None:
                done = max(0.0, min(1.0, (at - self.begin).total_seconds() / self.span))
                share = f" ({done:.0%})"
        sys.stderr.write(f"\r{bars:,} bars, {pages} pages, to {last or '-'}{share}\033[K")
        sys.stderr.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


async def _kline(args: argparse.Namespace) -> None:
    query = _query(args)
    if args.format in ("csv", "parquet"):
        from ..frames import _polars

        _polars()  # MissingDependency before connecting
    progress = _Progress(query, not args.no_progress)
    bars: list[KLine] = []
    name = "N/A"
    try:
        async with open_client(args) as client:
            pages = client.history_kline(
                query.code, query.begin, query.end, query.kl_type, query.au_type, query.fields
            )
            async for page in pages:
                name = page.name
                bars.extend(b for b in page.bars if not b.is_blank)
                progress.update(len(bars), pages.pages, bars[-1].time if bars else None)
                if args.max_count is not None and len(bars) >= args.max_count:
                    del bars[args.max_count :]
                    break
    finally:
        progress.done()
    _write(query, name, bars, args.format, args.out)


def _table(query: HistoryQuery, bars: list[KLine]) -> str:
    def num(v: float | None, digits: int = 4) -> str:
        return "-" if v is None else f"{v:.{digits}f}".rstrip("0").rstrip(".")

    lines = [
        f"{'time':<19} {'open':>10} {'high':>10} {'low':>10} {'close':>10} {'volume':>14} "
        f"{'turnover':>18}"
    ]
    lines += [
        f"{b.time:<19} {num(b.open):>10} {num(b.high):>10} {num(b.low):>10} {num(b.close):>10} "
        f"{num(b.volume, 0):>14} {num(b.turnover, 2):>18}"
        for b in bars
    ]
    return f"{query.code} {query.kl_type} {query.begin} .. {query.end}\n" + "\n".join(lines) + "\n"


def _write(query: HistoryQuery, name: str, bars: list[KLine], fmt: str, out: str | None) -> None:
    try:
        if fmt in ("csv", "parquet"):
            df = history_to_polars(query.code, name, bars, query.fields)
            if fmt == "parquet":
                assert out is not None  # checked before connecting
                df.write_parquet(out)
            elif out:
                df.write_csv(out)
            else:
                sys.stdout.write(df.write_csv())
            return
        text = (
            _table(query, bars)
            if fmt == "table"
            else "".join(b.model_dump_json() + "\n" for b in bars)
        )
        if not out:
            sys.stdout.write(text)
            return
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:  # one line naming the file, not a raw errno
        raise OSError(exc.errno, f"cannot write {out!r}: {exc.strerror or exc}") from None

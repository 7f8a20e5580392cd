"""The state kinds on the command line: ``quote``, ``book``, and ``tail``/``record --kind
quote|order_book|broker``.

One :class:`_View` per state kind of :data:`aiofutu._kinds.KINDS` says how a state is one line
and one flat row; the stream comes from the client's ``<kind>_stream`` verb, so ``tail`` and
``record`` have no branch per kind. A depth ladder (:func:`ladder`) is shared by ``book`` and
``demo``'s board.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from .._kinds import KINDS
from ..enums import SubType
from ._link import open_client
from ._rows import record_rows

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

    from ..client import Client
    from ..latest import LatestStream
    from ..quotes.basic import Quote
    from ..quotes.broker import BrokerQueue
    from ..quotes.orderbook import OrderBook

__all__ = (
    "STATE_KINDS",
    "book_command",
    "ladder",
    "quote_command",
    "quote_line",
    "record_state",
    "report_written",
    "state_row",
    "tail_state",
)

#: the state kinds of the table of kinds (``tail``/``record --kind`` names)
STATE_KINDS = tuple(k.name for k in KINDS if k.shape == "state")
#: erase to the end of the line / of the screen; cursor home (plain ANSI)
CLEAR_LINE, CLEAR_DOWN, HOME = "\033[K", "\033[J", "\033[H"


def _num(value: float | None) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:.4f}".rstrip("0").rstrip(".")


# ------------------------------------------------------------------------------ one line each


def quote_line(q: Quote) -> str:
    """A quote as one aligned line (see :data:`QUOTE_HEADER`)."""
    change = q.last_price - q.prev_close_price
    pct = 100 * change / q.prev_close_price if q.prev_close_price else 0.0
    return (
        f"{q.update_time:<23}  {q.code:<10} {_num(q.last_price):>10} {pct:>+7.2f}% "
        f"{_num(q.open_price):>10} {_num(q.high_price):>10} {_num(q.low_price):>10} "
        f"{q.volume:>12} {q.turnover:>16.2f}"
    )


QUOTE_HEADER = (
    f"{'update_time':<23}  {'code':<10} {'last':>10} {'change':>8} {'open':>10} {'high':>10} "
    f"{'low':>10} {'volume':>12} {'turnover':>16}"
)


def _level(lv: Any) -> str:
    return "-" if lv is None else f"{_num(lv.price)} x {lv.volume} ({lv.order_count})"


def _book_line(b: OrderBook) -> str:
    bid = _level(b.bids[0] if b.bids else None)
    ask = _level(b.asks[0] if b.asks else None)
    when = b.svr_recv_time_bid or b.svr_recv_time_ask or "-"
    return f"{when:<23}  {b.code:<10} {len(b.bids):>3}/{len(b.asks):<3} {bid:>26} | {ask}"


_BOOK_HEADER = f"{'svr_recv_time':<23}  {'code':<10} {'levels':<7} {'best bid':>26} | best ask"


def _first(entries: Sequence[Any]) -> str:
    return "-" if not entries else f"{entries[0].broker_id} {entries[0].name}"[:28]


def _broker_line(q: BrokerQueue) -> str:
    return f"{q.code:<10} {len(q.bids):>4} {_first(q.bids):<28} {len(q.asks):>4} {_first(q.asks)}"


_BROKER_HEADER = f"{'code':<10} {'bids':>4} {'first bid broker':<28} {'asks':>4} first ask broker"


def _flat(model: Any) -> dict[str, Any]:
    """A state as a flat row: scalars as they are, nested values (levels, entries) as JSON."""
    return {
        k: json.dumps(v) if isinstance(v, (list, dict)) else v
        for k, v in model.model_dump(mode="json").items()
    }


@dataclass(frozen=True)
class _View:
    """How a state kind is shown: a header and one line per state."""

    header: str
    line: Callable[[Any], str]


_VIEWS: dict[str, _View] = {
    "quote": _View(QUOTE_HEADER, quote_line),
    "order_book": _View(_BOOK_HEADER, _book_line),
    "broker": _View(_BROKER_HEADER, _broker_line),
}
if set(_VIEWS) != set(STATE_KINDS):  # pragma: no cover (a state kind without a view)
    raise AssertionError(f"state kinds {STATE_KINDS} and CLI views {tuple(_VIEWS)} differ")


def _open(client: Client, kind: str, codes: Sequence[str], conflate: bool) -> LatestStream[Any]:
    stream: Callable[..., LatestStream[Any]] = getattr(client, f"{kind}_stream")
    if conflate:
        return stream(*codes, overflow="drop_oldest")
    return stream(*codes, conflate=False, buffer=100_000, overflow="raise")


# ------------------------------------------------------------------------------ tail / record


async def tail_state(args: argparse.Namespace) -> None:
    """``aiofutu tail --kind quote|order_book|broker CODE...``: one line per (conflated) state."""
    from ._commands import _link_reports, _policy

    view = _VIEWS[args.kind]
    out = sys.stdout
    async with (
        open_client(args, reconnect=_policy(args.reconnect)) as client,
        _link_reports(client, "tail", args.reconnect),
        _open(client, args.kind, args.codes, conflate=True) as stream,
    ):
        if args.format == "table":
            out.write(view.header + "\n")
        count = 0
        try:
            async for state in stream:
                out.write(
                    (state.model_dump_json() if args.format == "json" else view.line(state)) + "\n"
                )
                count += 1
                if args.limit is not None and count >= args.limit:
                    break
                if not stream.pending:
                    out.flush()
        finally:
            out.flush()


async def record_state(args: argparse.Namespace) -> None:
    """``aiofutu record --kind quote|order_book|broker CODE... --out F``: every push (no
    conflation), one row each, written as they come (:mod:`._rows`)."""
    from ._commands import _link_reports, _policy

    async with (
        open_client(args, "aiofutu-record", reconnect=_policy(args.reconnect)) as client,
        _link_reports(client, "record", args.reconnect),
        _open(client, args.kind, args.codes, conflate=False) as stream,
    ):
        with anyio.move_on_after(args.duration if args.duration is not None else math.inf):
            await record_rows(
                stream,
                state_row(args.out),
                args.out,
                limit=args.limit,
                written=functools.partial(report_written, args, ""),
            )


def state_row(out: str) -> Callable[[Any], dict[str, Any]]:
    """A state's row: every field as JSON for ``.jsonl``, else the flat columns."""
    if out.endswith((".jsonl", ".json")):
        return lambda state: state.model_dump(mode="json")
    return _flat


def report_written(args: argparse.Namespace, source: str, rows: int) -> None:
    """The last line of ``record --kind``: what was written where."""
    sys.stderr.write(f"aiofutu record: wrote {rows} {args.kind} rows to {args.out}{source}\n")


# ------------------------------------------------------------------------------ quote


def _quote_table(quotes: list[Quote]) -> str:
    return "\n".join([QUOTE_HEADER, *(quote_line(q) for q in quotes)]) + "\n"


async def quote_command(args: argparse.Namespace) -> None:
    """``aiofutu quote CODE...``: subscribe QUOTE (no push) and print ``get_stock_quote``."""
    async with open_client(args) as client:
        await client.subscribe(args.codes, [SubType.QUOTE], subscribe_push=False)
        if args.format in ("table", "json"):
            quotes = await client.get_stock_quote(args.codes)
            frame = None
        else:
            frame = await client.get_stock_quote_frame(args.codes)
    if frame is not None and args.format == "parquet":
        await anyio.to_thread.run_sync(_write_parquet, frame, args.out)
        return
    if frame is not None:
        text = str(frame.write_csv())
    elif args.format == "json":
        text = "".join(q.model_dump_json() + "\n" for q in quotes)
    else:
        text = _quote_table(quotes)
    if args.out:
        await anyio.to_thread.run_sync(_write_text, args.out, text)
    else:
        sys.stdout.write(text)


def _write_parquet(frame: Any, path: str) -> None:
    try:
        frame.write_parquet(path)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write {path!r}: {exc.strerror or exc}") from None


def _write_text(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write {path!r}: {exc.strerror or exc}") from None


# ------------------------------------------------------------------------------ book


def ladder(book: OrderBook, num: int) -> list[str]:
    """A depth ladder: the ``num`` best asks (highest on top), then the ``num`` best bids."""
    width = 36
    lines = [
        f"{book.code} {book.name}"[:width],
        f"{'':<4} {'price':>10} {'volume':>12} {'orders':>7}",
    ]
    row = "{:<4} {:>10} {:>12} {:>7}".format
    lines += [
        row("ask", _num(lv.price), lv.volume, lv.order_count) for lv in book.asks[num - 1 :: -1]
    ]
    lines.append("-" * width)
    lines += [row("bid", _num(lv.price), lv.volume, lv.order_count) for lv in book.bids[:num]]
    return lines


def redraw(out: Any, lines: Sequence[str]) -> None:
    """Draw ``lines`` over the previous frame: cursor home, each line cleared to its end."""
    out.write(HOME + "".join(f"{line}{CLEAR_LINE}\n" for line in lines) + CLEAR_DOWN)
    out.flush()


@contextlib.contextmanager
def screen(out: Any) -> Any:
    """Clear the screen and hide the cursor while drawing; show it again at the end."""
    out.write("\033[?25l" + HOME + "\033[2J")
    try:
        yield
    finally:
        out.write("\033[?25h")
        out.flush()


async def book_command(args: argparse.Namespace) -> None:
    """``aiofutu book CODE [--num N] [--once]``: a ladder redrawn in place until Ctrl-C; one
    ladder (``get_order_book``) with ``--once`` or when stdout is not a terminal."""
    out = sys.stdout
    async with open_client(args) as client:
        if args.once or not out.isatty():
            await client.subscribe([args.code], [SubType.ORDER_BOOK], subscribe_push=False)
            book = await client.get_order_book(args.code, args.num)
            out.write("\n".join(ladder(book, args.num)) + "\n")
            return
        async with client.order_book_stream(args.code, overflow="drop_oldest") as books:
            with screen(out):
                async for book in books:
                    redraw(out, ladder(book, args.num))

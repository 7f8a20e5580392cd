"""``aiofutu demo`` on a terminal: a small live board from one connection.

The latest quote per code, a depth ladder of the first code and the tape (the latest ticks),
redrawn in place (plain ANSI) at most :data:`FPS` times a second. Three streams of one client
feed it: ``quote_stream`` and ``order_book_stream`` (conflated: the board only wants the
newest state) and ``ticker_stream``.
"""

from __future__ import annotations

import collections
import itertools
from typing import TYPE_CHECKING, Any

import anyio

from ._output import _price
from ._state import QUOTE_HEADER, ladder, quote_line, redraw, screen

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..client import Client
    from ..models import Ticker
    from ..quotes.basic import Quote
    from ..quotes.orderbook import OrderBook

__all__ = ("FPS", "run_board")

FPS = 8
TAPE_ROWS = 14
LADDER_LEVELS = 5
_LADDER_WIDTH = 38


class _Board:
    def __init__(self, codes: Sequence[str], title: str) -> None:
        self.codes = codes
        self.title = title
        self.quotes: dict[str, Quote] = {}
        self.book: OrderBook | None = None
        self.tape: collections.deque[Ticker] = collections.deque(maxlen=TAPE_ROWS)
        self.ticks = 0
        self.changed = anyio.Event()

    def touch(self) -> None:
        self.changed.set()

    def lines(self) -> list[str]:
        out = [f"{self.title}   ticks {self.ticks}", "", QUOTE_HEADER]
        out += [quote_line(self.quotes[c]) if c in self.quotes else c for c in self.codes]
        out.append("")
        left = ladder(self.book, LADDER_LEVELS) if self.book else [f"{self.codes[0]} (no book)"]
        right = ["tape", *(_tick(t) for t in reversed(self.tape))]
        for a, b in itertools.zip_longest(left, right, fillvalue=""):
            out.append(f"{a:<{_LADDER_WIDTH}}  {b}")
        return out


def _tick(t: Ticker) -> str:
    clock = t.time[11:] if len(t.time) > 11 else t.time
    return f"{clock:<12} {t.code:<10} {_price(t.price):>9} {t.volume:>7} {t.ticker_direction.value}"


async def _follow(stream: Any, board: _Board, apply: Any) -> None:
    async for item in stream:
        apply(item)
        board.touch()


async def _render(board: _Board, out: Any) -> None:
    """Redraw after each change, at most :data:`FPS` frames a second."""
    while True:
        await board.changed.wait()
        board.changed = anyio.Event()
        redraw(out, board.lines())
        await anyio.sleep(1 / FPS)


async def run_board(
    client: Client, codes: Sequence[str], out: Any, title: str, limit: int | None
) -> None:
    """Draw the board until cancelled (Ctrl-C) or until ``limit`` ticks have arrived."""
    board = _Board(codes, title)

    def quote(q: Quote) -> None:
        board.quotes[q.code] = q

    def book(b: OrderBook) -> None:
        board.book = b

    async with (
        client.quote_stream(*codes, overflow="drop_oldest") as quotes,
        client.order_book_stream(codes[0], overflow="drop_oldest") as books,
        client.ticker_stream(*codes, overflow="drop_oldest") as ticks,
    ):
        with screen(out):
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_follow, quotes, board, quote)
                    tg.start_soon(_follow, books, board, book)
                    tg.start_soon(_render, board, out)
                    async for tick in ticks:
                        board.tape.append(tick)
                        board.ticks += 1
                        board.touch()
                        if limit is not None and board.ticks >= limit:
                            break
                    tg.cancel_scope.cancel()
            finally:
                redraw(out, board.lines())  # the last frame stays on the screen

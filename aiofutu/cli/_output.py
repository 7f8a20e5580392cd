"""Tick rendering for the commands: the live table, JSON lines, and ``ticker``'s formats."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, TextIO

from ..record import ticks_to_csv, ticks_to_frame

if TYPE_CHECKING:
    from ..models import Ticker

_COLOURS = {"BUY": "\033[32m", "SELL": "\033[31m", "NEUTRAL": "\033[33m"}
_RESET = "\033[0m"


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
    text = ""
    if fmt == "table":
        text = _table(ticks)
    elif fmt == "json":
        text = "".join(t.model_dump_json() + "\n" for t in ticks)
    elif fmt == "csv":
        text = ticks_to_csv(ticks)  # the SDK's columns in its order, then the other fields
    if not out:
        sys.stdout.write(text)
        return
    try:
        if fmt == "parquet":
            ticks_to_frame(ticks).write_parquet(out)
        else:
            with open(out, "w", encoding="utf-8") as fh:
                fh.write(text)
    except OSError as exc:  # one line naming the file, not a raw errno
        raise OSError(exc.errno, f"cannot write {out!r}: {exc.strerror or exc}") from None


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()

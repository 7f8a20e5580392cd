"""The simulator's K-lines (3006 reply, 3007 push), folded from the tape.

A bar of any of the 15 periods is the fold of the ticks whose local time falls in its bucket:
open/high/low/close from their prices, volume and turnover their sums; so a test can check
a 1-minute bar against its ticks and a day bar against the day's basic-quote fold.

Bar times: minute bars are labelled with the **end** of their bucket (09:30:xx ticks make the
09:31:00 bar, Futu's app convention), buckets counted from local midnight; day and longer bars
carry the bucket's first day at 00:00:00 (week: Monday, month/quarter/year: its first day).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..._pb import qot_common_pb2, qot_get_kl_pb2, qot_update_kl_pb2
from ._common import s2c_response

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ...enums import Market
    from .basic import TickLike

__all__ = (
    "MINUTES",
    "BarFold",
    "KLineBuilder",
    "bar_time",
    "bars_of",
    "minute_bar_end",
    "get_reply_body",
    "push_body",
)

#: Minutes per bar of the intraday periods, by wire KLType.
MINUTES = {1: 1, 6: 5, 7: 15, 8: 30, 9: 60, 10: 3, 12: 10, 13: 120, 14: 180, 15: 240}
_DAY, _WEEK, _MONTH, _YEAR, _QUARTER = 2, 3, 4, 5, 11
_FMT = "%Y-%m-%d %H:%M:%S"


def bar_time(kl_type: int, time: str) -> str:
    """The time of the ``kl_type`` bar (wire number) that a tick at local ``time`` falls in."""
    minutes = MINUTES.get(kl_type)
    if minutes is not None:
        return minute_bar_end(minutes, time[:10], int(time[11:13]) * 60 + int(time[14:16]))
    d = _dt.date(int(time[:4]), int(time[5:7]), int(time[8:10]))
    if kl_type == _DAY:
        pass
    elif kl_type == _WEEK:
        d -= _dt.timedelta(days=d.weekday())
    elif kl_type == _MONTH:
        d = d.replace(day=1)
    elif kl_type == _QUARTER:
        d = d.replace(month=(d.month - 1) // 3 * 3 + 1, day=1)
    elif kl_type == _YEAR:
        d = d.replace(month=1, day=1)
    else:
        raise ValueError(f"unknown klType {kl_type}")
    return f"{d:%Y-%m-%d} 00:00:00"


def minute_bar_end(minutes: int, day: str, of_day: int) -> str:
    """The label (end) of the ``minutes`` bucket holding minute ``of_day`` of ``day``."""
    end = (of_day // minutes + 1) * minutes
    if end >= 1440:
        nxt = _dt.date.fromisoformat(day) + _dt.timedelta(days=end // 1440)
        day, end = nxt.isoformat(), end % 1440
    return f"{day} {end // 60:02d}:{end % 60:02d}:00"


@dataclass
class BarFold:
    """The running figures of one bar."""

    time: str
    last_close: float
    open: float = 0.0
    high: float = 0.0
    low: float = 0.0
    close: float = 0.0
    volume: int = 0
    turnover: float = 0.0
    count: int = 0

    def add(self, tick: TickLike) -> None:
        """Fold one tick of this bar's bucket in."""
        price = tick.price
        if not self.count:
            self.open = self.high = self.low = price
        else:
            self.high = max(self.high, price)
            self.low = min(self.low, price)
        self.close = price
        self.volume += tick.volume
        self.turnover += tick.turnover
        self.count += 1

    def to_pb(self) -> qot_common_pb2.KLine:
        """The bar as a ``Qot_Common.KLine`` (blank while it has no tick)."""
        k = qot_common_pb2.KLine(time=self.time, isBlank=self.count == 0)
        if self.count:
            k.openPrice, k.highPrice, k.lowPrice = self.open, self.high, self.low
            k.closePrice = self.close
            k.lastClosePrice = self.last_close
            k.volume = self.volume
            k.turnover = round(self.turnover, 4)
            if self.last_close:
                k.changeRate = round((self.close - self.last_close) * 100 / self.last_close, 6)
        return k


@dataclass
class KLineBuilder:
    """Folds one security's ticks into ``kl_type`` bars as they arrive.

    :meth:`add` returns ``(closed, current)``: ``current`` is the open bar to (re-)push;
    ``closed`` is the bar the tick's new time just finished, else ``None``.
    """

    kl_type: int
    prev_close: float
    current: BarFold | None = None
    closed: list[BarFold] = field(default_factory=list)

    def add(self, tick: TickLike) -> tuple[qot_common_pb2.KLine | None, qot_common_pb2.KLine]:
        """Fold ``tick`` in: ``(closed bar or None, the open bar)``."""
        t = bar_time(self.kl_type, tick.time)
        done: qot_common_pb2.KLine | None = None
        if self.current is None or self.current.time != t:
            last = self.prev_close
            if self.current is not None:
                self.closed.append(self.current)
                done = self.current.to_pb()
                last = self.current.close
            self.current = BarFold(time=t, last_close=last)
        self.current.add(tick)
        return done, self.current.to_pb()

    def bars(self) -> list[qot_common_pb2.KLine]:
        """Every bar so far, oldest first (the open one last)."""
        out = [b.to_pb() for b in self.closed]
        if self.current is not None:
            out.append(self.current.to_pb())
        return out


def bars_of(
    kl_type: int, ticks: Iterable[TickLike], prev_close: float
) -> list[qot_common_pb2.KLine]:
    """The ``kl_type`` bars of ``ticks`` (in time order)."""
    b = KLineBuilder(kl_type, prev_close)
    for tick in ticks:
        b.add(tick)
    return b.bars()


def _security(msg: qot_common_pb2.Security, market: Market, code: str) -> None:
    msg.market = market.wire
    msg.code = code


def get_reply_body(
    market: Market, code: str, bars: Sequence[qot_common_pb2.KLine], num: int, name: str | None
) -> bytes:
    """A 3006 reply body: the latest ``num`` of ``bars``."""
    s2c = qot_get_kl_pb2.S2C()
    _security(s2c.security, market, code)
    s2c.klList.extend(bars[-num:] if num > 0 else [])
    if name is not None:
        s2c.name = name
    return s2c_response(qot_get_kl_pb2, s2c)


def push_body(
    market: Market,
    code: str,
    kl_type: int,
    rehab_type: int,
    bars: Sequence[qot_common_pb2.KLine],
    name: str | None = None,
) -> bytes:
    """A 3007 push body (its own field numbers: #1 rehabType, #4 klList)."""
    s2c = qot_update_kl_pb2.S2C(rehabType=rehab_type, klType=kl_type)
    _security(s2c.security, market, code)
    s2c.klList.extend(bars)
    if name is not None:
        s2c.name = name
    return s2c_response(qot_update_kl_pb2, s2c)

"""The simulator's basic quote (3004 reply, 3005 push), folded from the day's ticks.

The quote's last price is the last tick's price, volume and turnover are the day's sums, open,
high and low come from the day's ticks, and the update time is the last tick's; so a test can
check the quote against the tape it was built from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..._pb import qot_common_pb2, qot_get_basic_qot_pb2, qot_update_basic_qot_pb2
from ._common import from_units, s2c_response, tick_size, to_units

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ...enums import Market

__all__ = ("DayFold", "TickLike", "basic_qot", "get_reply_body", "push_body", "s2c")


class TickLike(Protocol):
    """What the builders read from a tick (``Qot_Common.Ticker`` messages fit)."""

    @property
    def time(self) -> str:
        """OpenD's time string."""

    @property
    def price(self) -> float:
        """Trade price."""

    @property
    def volume(self) -> int:
        """Trade volume."""

    @property
    def turnover(self) -> float:
        """Trade turnover."""

    @property
    def timestamp(self) -> float:
        """Trade time in Unix seconds."""


@dataclass
class DayFold:
    """The day's running figures of one security's tape (fold each new tick with :meth:`add`)."""

    open: float = 0.0
    high: float = 0.0
    low: float = 0.0
    last: float = 0.0
    volume: int = 0
    turnover: float = 0.0
    count: int = 0
    last_time: str = ""
    last_timestamp: float = 0.0

    @classmethod
    def from_ticks(cls, ticks: Iterable[TickLike], *, since: float | None = None) -> DayFold:
        """The fold of ``ticks`` (those at or after ``since``, the day's start, if given)."""
        fold = cls()
        for tick in ticks:
            if since is None or tick.timestamp >= since:
                fold.add(tick)
        return fold

    def add(self, tick: TickLike) -> None:
        """Fold one more tick of the day."""
        price = tick.price
        if not self.count:
            self.open = self.high = self.low = price
        elif price > self.high:
            self.high = price
        elif price < self.low:
            self.low = price
        self.last = price
        self.volume += tick.volume
        self.turnover += tick.turnover
        self.count += 1
        self.last_time = tick.time
        self.last_timestamp = tick.timestamp


def basic_qot(
    market: Market,
    code: str,
    fold: DayFold,
    *,
    prev_close: float,
    name: str | None = None,
    list_time: str = "",
    shares_outstanding: int = 0,
    suspended: bool = False,
) -> qot_common_pb2.BasicQot:
    """One ``BasicQot`` for ``(market, code)`` from the day's ``fold``.

    With no tick yet today, the quote is the previous close with zero day figures and an empty
    update time (as OpenD's first push outside trading hours). ``amplitude`` and
    ``turnover_rate`` are percent; the turnover rate needs ``shares_outstanding`` (else 0).
    """
    q = qot_common_pb2.BasicQot()
    q.security.market = market.wire
    q.security.code = code
    if name is not None:
        q.name = name
    q.isSuspended = suspended
    q.listTime = list_time
    last = fold.last if fold.count else prev_close
    q.priceSpread = from_units(tick_size(market, max(to_units(last), 1), True))
    q.updateTime = fold.last_time
    if fold.count:
        q.updateTimestamp = fold.last_timestamp
    q.openPrice, q.highPrice, q.lowPrice = fold.open, fold.high, fold.low
    q.curPrice = last
    q.lastClosePrice = prev_close
    q.volume = fold.volume
    q.turnover = round(fold.turnover, 4)
    q.turnoverRate = (
        round(fold.volume * 100 / shares_outstanding, 6) if shares_outstanding > 0 else 0.0
    )
    q.amplitude = (
        round((fold.high - fold.low) * 100 / prev_close, 6) if prev_close and fold.count else 0.0
    )
    q.secStatus = 9 if suspended else 1  # SecurityStatus SUSPENDED / NORMAL
    return q


def s2c(quotes: Sequence[qot_common_pb2.BasicQot]) -> qot_get_basic_qot_pb2.S2C:
    """The S2C of both 3004 and 3005 (the same field numbers)."""
    out = qot_get_basic_qot_pb2.S2C()
    out.basicQotList.extend(quotes)
    return out


def get_reply_body(quotes: Sequence[qot_common_pb2.BasicQot]) -> bytes:
    """A successful 3004 reply body."""
    return s2c_response(qot_get_basic_qot_pb2, s2c(quotes))


def push_body(quotes: Sequence[qot_common_pb2.BasicQot]) -> bytes:
    """A 3005 push body (one push may carry several securities)."""
    out = qot_update_basic_qot_pb2.S2C()
    out.basicQotList.extend(quotes)
    return s2c_response(qot_update_basic_qot_pb2, out)

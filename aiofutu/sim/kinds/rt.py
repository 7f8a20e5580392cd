"""The simulator's time share (3008 reply, 3009 push), folded from the tape.

Each point is one minute: its price the minute's last trade, its volume/turnover the minute's,
its average the day's running turnover / volume (VWAP). Points use the 1-minute bar times of
:mod:`.kline` (the end of the minute); ``minute`` counts from local midnight.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._pb import qot_common_pb2, qot_get_rt_pb2, qot_update_rt_pb2
from ._common import s2c_response
from .kline import bar_time

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ...enums import Market
    from .basic import TickLike

__all__ = ("get_reply_body", "push_body", "rt_points", "s2c")


def rt_points(ticks: Iterable[TickLike], prev_close: float) -> list[qot_common_pb2.TimeShare]:
    """One ``TimeShare`` per minute that has ticks, oldest first."""
    out: list[qot_common_pb2.TimeShare] = []
    cum_vol = 0
    cum_turnover = 0.0
    current: qot_common_pb2.TimeShare | None = None
    for tick in ticks:
        t = bar_time(1, tick.time)
        if current is None or current.time != t:
            hh, mm = int(t[11:13]), int(t[14:16])
            current = qot_common_pb2.TimeShare(
                time=t, minute=hh * 60 + mm, isBlank=False, lastClosePrice=prev_close
            )
            current.volume = 0
            current.turnover = 0.0
            out.append(current)
        cum_vol += tick.volume
        cum_turnover += tick.turnover
        current.price = tick.price
        current.volume += tick.volume
        current.turnover = round(current.turnover + tick.turnover, 4)
        current.avgPrice = round(cum_turnover / cum_vol, 6) if cum_vol else tick.price
    return out


def s2c(
    market: Market, code: str, points: Sequence[qot_common_pb2.TimeShare], name: str | None = None
) -> qot_get_rt_pb2.S2C:
    """The S2C of both 3008 and 3009 (the same field numbers)."""
    out = qot_get_rt_pb2.S2C()
    out.security.market = market.wire
    out.security.code = code
    out.rtList.extend(points)
    if name is not None:
        out.name = name
    return out


def get_reply_body(
    market: Market, code: str, points: Sequence[qot_common_pb2.TimeShare], name: str | None = None
) -> bytes:
    """A successful 3008 reply body."""
    return s2c_response(qot_get_rt_pb2, s2c(market, code, points, name))


def push_body(
    market: Market, code: str, points: Sequence[qot_common_pb2.TimeShare], name: str | None = None
) -> bytes:
    """A 3009 push body (usually the current minute only)."""
    msg = qot_update_rt_pb2.S2C()
    msg.MergeFromString(s2c(market, code, points, name).SerializeToString())
    return s2c_response(qot_update_rt_pb2, msg)

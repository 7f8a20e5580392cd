"""Intraday time share: ``Qot_GetRT`` (3008) and its push ``Qot_UpdateRT`` (3009).

Reply and push share one S2C, so :func:`rt_from_s2c` serves both. Pushes carry the newest minute
point(s) and re-push the current minute while it fills (upsert by ``time``). ``minute`` counts
from local midnight and wraps for US overnight series: it is not a monotonic index.

polars form: :func:`rt_to_polars` gives ``get_rt_data``'s columns; :func:`rt_push_to_polars` the
push handler's (``turnover`` before ``volume``). ``avg_price`` is null where the SDK writes
``N/A`` (options); other absent numbers are 0.0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from .._pb import qot_get_rt_pb2
from ..codes import format_code, parse_code
from ..frames import RT_COLUMNS, _polars
from ._model import TrustedModel, trusted

if TYPE_CHECKING:
    import polars as pl

__all__ = (
    "RT_COLUMNS",
    "RT_PUSH_COLUMNS",
    "RTPoint",
    "RTSeries",
    "get_rt_request",
    "rt_from_s2c",
    "rt_push_to_polars",
    "rt_to_polars",
)


class RTPoint(TrustedModel):
    """One minute of the time share; numbers are ``None`` when OpenD leaves them out."""

    time: str
    minute: int
    is_blank: bool = False
    price: float | None = None
    last_close: float | None = None
    avg_price: float | None = None
    volume: float | None = None
    turnover: float | None = None
    timestamp: float | None = None


class RTSeries(TrustedModel):
    """The time share of one security (a 3008 reply or a 3009 push)."""

    code: str
    name: str
    points: tuple[RTPoint, ...]


def _point(t: Any) -> RTPoint:
    has = t.HasField
    if has("hpVolume"):
        volume: float | None = t.hpVolume
    elif has("volume"):
        volume = float(t.volume)
    else:
        volume = None
    return trusted(
        RTPoint,
        {
            "time": t.time,
            "minute": t.minute,
            "is_blank": t.isBlank,
            "price": t.price if has("price") else None,
            "last_close": t.lastClosePrice if has("lastClosePrice") else None,
            "avg_price": t.avgPrice if has("avgPrice") else None,
            "volume": volume,
            "turnover": t.turnover if has("turnover") else None,
            "timestamp": t.timestamp if has("timestamp") else None,
        },
    )


def rt_from_s2c(s2c: Any) -> RTSeries:
    """The model of a 3008 reply's or a 3009 push's S2C."""
    sec = s2c.security
    return trusted(
        RTSeries,
        {
            "code": format_code(sec.market, sec.code),
            "name": s2c.name if s2c.HasField("name") else "N/A",
            "points": tuple(_point(t) for t in s2c.rtList),
        },
    )


def get_rt_request(code: str) -> qot_get_rt_pb2.Request:
    """The 3008 request for ``code``."""
    market, local = parse_code(code)
    req = qot_get_rt_pb2.Request()
    req.c2s.security.market = market.wire
    req.c2s.security.code = local
    req.c2s.header.securityFirm = 0
    return req


#: The 3009 handler's columns (``turnover`` before ``volume``).
RT_PUSH_COLUMNS = (*RT_COLUMNS[:8], "turnover", "volume")


def _frame(series: RTSeries, columns: tuple[str, ...]) -> pl.DataFrame:
    pl_ = _polars()
    pts = series.points
    n = len(pts)

    def zero(values: list[float | None]) -> list[float]:
        return [0.0 if v is None else v for v in values]

    cols: dict[str, tuple[Any, Any]] = {
        "code": ([series.code] * n, pl_.String),
        "name": ([series.name] * n, pl_.String),
        "time": ([p.time for p in pts], pl_.String),
        "is_blank": ([p.is_blank for p in pts], pl_.Boolean),
        "opened_mins": ([p.minute for p in pts], pl_.Int64),
        "cur_price": (zero([p.price for p in pts]), pl_.Float64),
        "last_close": (zero([p.last_close for p in pts]), pl_.Float64),
        "avg_price": ([p.avg_price for p in pts], pl_.Float64),
        "volume": (zero([p.volume for p in pts]), pl_.Float64),
        "turnover": (zero([p.turnover for p in pts]), pl_.Float64),
    }
    data = {c: cols[c][0] for c in columns}
    schema = {c: cols[c][1] for c in columns}
    return cast("pl.DataFrame", pl_.DataFrame(data, schema=schema))


def rt_to_polars(series: RTSeries, code: str | None = None) -> pl.DataFrame:
    """``get_rt_data``'s frame; the SDK writes the caller's ``code`` string, pass it to match."""
    if code is not None and code != series.code:
        series = series.model_copy(update={"code": code})
    return _frame(series, RT_COLUMNS)


def rt_push_to_polars(series: RTSeries) -> pl.DataFrame:
    """The 3009 handler's frame."""
    return _frame(series, RT_PUSH_COLUMNS)

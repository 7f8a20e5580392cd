"""Columnar decoding of the Qot_GetKL (3006) reply: one parse, one list per field.

Reading a protobuf bar field by field costs an attribute lookup per field per bar, which is
most of a 1000-bar reply's cost in Python. The ``series_columns`` view schema (see its
``.proto``) parses the reply straight into columns; :func:`kline_columns` accepts them only when
every column has one entry per bar or none (so presence is known exactly), and returns ``None``
otherwise: the caller then decodes the reply exactly
(:func:`~aiofutu.quotes.kline.klines_from_s2c`).
Both give the same bars (``tests/unit/test_series_columns.py``).
"""

from __future__ import annotations

from itertools import repeat
from typing import TYPE_CHECKING, Any, cast

from .._pb import series_columns_pb2
from ..codes import format_code
from ..frames import CUR_KLINE_COLUMNS, _polars
from ..models import _new, _set_dict
from .kline import OPTIONAL_FIELDS, KLine

if TYPE_CHECKING:
    import polars as pl

__all__ = ("KLineColumns", "kline_columns", "klines_of", "klines_frame")

_parse = series_columns_pb2.KLineResponse.FromString


class KLineColumns:
    """The bars of one 3006 reply as parallel lists (``None``: absent on every bar)."""

    __slots__ = ("code", "cols", "is_blank", "n", "name", "time")

    def __init__(
        self,
        code: str,
        name: str,
        time: list[str],
        is_blank: list[bool],
        cols: dict[str, list[float] | None],
    ) -> None:
        self.code = code
        self.name = name
        self.time = time
        self.is_blank = is_blank
        self.n = len(time)
        #: model attribute -> values (``volume``: the high-precision volume when present)
        self.cols = cols


def kline_columns(body: bytes) -> KLineColumns | None:
    """The columns of a successful 3006 reply, or ``None`` when the view cannot be trusted."""
    try:
        resp = _parse(body)
    except Exception:  # DecodeError: the exact decoder describes the problem
        return None
    if resp.retType[:] != [0] or resp.retMsg or resp.errCode:
        return None
    s2c = resp.s2c
    sec = s2c.security
    codes = sec.code[:]
    markets = sec.market[:]
    names = s2c.name[:]
    if len(codes) != 1 or len(markets) != 1 or len(names) > 1:
        return None
    kl = s2c.klList
    time = kl.time[:]
    n = len(time)
    blank = kl.isBlank[:]
    if len(blank) != n:
        return None
    cols: dict[str, list[float] | None] = {}
    for attr, wire in OPTIONAL_FIELDS:
        col = getattr(kl, wire)[:]
        if len(col) == n:
            cols[attr] = col
        elif col:
            return None  # present on some bars only
        else:
            cols[attr] = None
    hp = kl.hpVolume[:]
    volume = kl.volume[:]
    if len(hp) == n:
        cols["volume"] = hp
    elif hp:
        return None
    elif len(volume) == n:
        cols["volume"] = [float(v) for v in volume]
    elif volume:
        return None
    else:
        cols["volume"] = None
    code = format_code(markets[0], codes[0])
    return KLineColumns(code, names[0] if names else "N/A", time, blank, cols)


def klines_of(cols: KLineColumns) -> list[KLine]:
    """The bars as :class:`KLine` models (unvalidated: protobuf typed every value)."""
    n = cols.n
    c = cols.cols

    def col(name: str) -> Any:
        values = c[name]
        return repeat(None, n) if values is None else values  # one iterator per column

    rows = zip(
        cols.time,
        cols.is_blank,
        col("open"),
        col("close"),
        col("high"),
        col("low"),
        col("last_close"),
        col("volume"),
        col("turnover"),
        col("turnover_rate"),
        col("pe"),
        col("change_rate"),
        col("timestamp"),
        strict=False,
    )
    new = _new
    set_dict = _set_dict
    cls = KLine
    out: list[KLine] = []
    append = out.append
    for t, b, o, cl, h, lo, lc, v, to, tr, pe, cr, ts in rows:
        model = new(cls)
        set_dict(
            model,
            {
                "time": t,
                "is_blank": b,
                "open": o,
                "close": cl,
                "high": h,
                "low": lo,
                "last_close": lc,
                "volume": v,
                "turnover": to,
                "turnover_rate": tr,
                "pe": pe,
                "change_rate": cr,
                "timestamp": ts,
            },
        )
        append(model)
    return out


#: polars column <- model attribute
_FRAME_SOURCE = {
    "open": "open",
    "close": "close",
    "high": "high",
    "low": "low",
    "volume": "volume",
    "turnover": "turnover",
    "pe_ratio": "pe",
    "turnover_rate": "turnover_rate",
    "last_close": "last_close",
}


def klines_frame(cols: KLineColumns) -> pl.DataFrame:
    """``get_cur_kline``'s frame straight from the columns (absent numbers 0.0, as the SDK)."""
    pl_ = _polars()
    n = cols.n
    data: dict[str, Any] = {}
    for name in CUR_KLINE_COLUMNS:
        if name == "code":
            data[name] = pl_.Series(name, [cols.code], pl_.String).new_from_index(0, n)
        elif name == "name":
            data[name] = pl_.Series(name, [cols.name], pl_.String).new_from_index(0, n)
        elif name == "time_key":
            data[name] = pl_.Series(name, cols.time, pl_.String)
        else:
            values = cols.cols[_FRAME_SOURCE[name]]
            data[name] = pl_.Series(name, [0.0] * n if values is None else values, pl_.Float64)
    return cast("pl.DataFrame", pl_.DataFrame(data))

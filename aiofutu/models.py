"""Typed, immutable data models (pydantic v2) and their construction from protobuf messages.

Models built from OpenD's messages skip validation: protobuf has already typed every field, and
validating again would triple the cost per tick. Models built by users (``Ticker(...)``) are
validated as usual.
"""

from __future__ import annotations

import datetime as _dt
from itertools import repeat
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from . import _columns
from .codes import format_code
from .enums import PushDataType, TickerDirection, TickerType

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._columns import TickColumns

__all__ = ("Ticker",)


class Ticker(BaseModel):
    """One trade tick (``Qot_Common.Ticker``), with the official SDK's column names.

    ``time`` is OpenD's string, unchanged (exchange-local time: Beijing for HK/A-shares, US Eastern
    for US); ``timestamp`` is the same instant in Unix seconds and is what :attr:`datetime` uses.
    ``sequence`` orders ticks of one security and identifies them uniquely.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    name: str
    sequence: int
    time: str
    price: float
    volume: int
    turnover: float
    ticker_direction: TickerDirection
    type: TickerType
    push_data_type: PushDataType = PushDataType.NA
    timestamp: float = 0.0
    recv_time: float = 0.0
    type_sign: int = 0
    #: High-precision volume, when OpenD sends one (the SDK then reports it as ``volume``).
    hp_volume: float | None = None

    @property
    def datetime(self) -> _dt.datetime:
        """The trade time as a timezone-aware UTC datetime (from ``timestamp``)."""
        return _dt.datetime.fromtimestamp(self.timestamp, tz=_dt.timezone.utc)

    if not TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            # Models built from OpenD's messages (``tickers_from_columns``) set only
            # ``__dict__``; their pydantic bookkeeping slots fall back to these constants, which
            # is what a validated model would hold anyway. Saves three slot writes per tick.
            try:
                return _TRUSTED_DEFAULTS[name]
            except KeyError:
                return super().__getattr__(name)


_ALL_FIELDS_SET = set(Ticker.model_fields)
_TRUSTED_DEFAULTS: dict[str, Any] = {
    "__pydantic_fields_set__": _ALL_FIELDS_SET,
    "__pydantic_extra__": None,
    "__pydantic_private__": None,
}
_DIRECTIONS = tuple(TickerDirection.from_wire(i) for i in range(4))
_TYPES = tuple(TickerType.from_wire(i) for i in range(32))
_PUSH_TYPES = tuple(PushDataType.from_wire(i) for i in range(4))
_NA_DIRECTION = TickerDirection.NA
_NA_TYPE = TickerType.NA
_NA_PUSH = PushDataType.NA


_new = object.__new__
_set_dict = BaseModel.__dict__["__dict__"].__set__
_DIRECTION_OF = dict(enumerate(_DIRECTIONS)).get
_TYPE_OF = dict(enumerate(_TYPES)).get
_PUSH_OF = dict(enumerate(_PUSH_TYPES)).get


def tickers_from_columns(full_code: str, cols: TickColumns, out: list[Ticker]) -> None:
    """Append a model for every tick of ``cols`` to ``out``.

    This is the per-tick hot path: the columns were decoded in bulk, ``zip`` hands one value
    per field, enums come from ``dict.get`` (out-of-range numbers and absent fields read as
    ``N/A``, as in the SDK), and the model is assembled without validation (protobuf typed every
    value): one object and its ``__dict__``, nothing else.
    """
    n = cols.n
    if not n:
        return
    name = cols.name
    append = out.append
    new = _new
    set_dict = _set_dict
    direction_of = _DIRECTION_OF
    type_of = _TYPE_OF
    push_of = _PUSH_OF
    na_dir = _NA_DIRECTION
    na_type = _NA_TYPE
    na_push = _NA_PUSH
    cls = Ticker
    rows = zip(  # every column has n entries (checked by the decoder)
        cols.sequence,
        cols.time,
        cols.price,
        cols.volume,
        cols.turnover,
        cols.dir,
        cols.type or repeat(-1, n),
        cols.push_data_type or repeat(0, n),
        cols.timestamp or repeat(0.0, n),
        cols.recv_time or repeat(0.0, n),
        cols.type_sign or repeat(0, n),
        cols.hp_volume or repeat(None, n),
        strict=False,
    )
    for seq, time, price, volume, turnover, d, ty, p, stamp, recv, sign, hp in rows:
        model = new(cls)
        set_dict(
            model,
            {
                "code": full_code,
                "name": name,
                "sequence": seq,
                "time": time,
                "price": price,
                "volume": volume,
                "turnover": turnover,
                "ticker_direction": direction_of(d, na_dir),
                "type": type_of(ty, na_type),
                "push_data_type": push_of(p, na_push),
                "timestamp": stamp,
                "recv_time": recv,
                "type_sign": sign,
                "hp_volume": hp,
            },
        )
        append(model)


def tickers_from_pb(market: int, code: str, name: str, ticker_list: Iterable[Any]) -> list[Ticker]:
    """Models for exact-schema ``Qot_Common.Ticker`` messages of one security (tests, tools)."""
    out: list[Ticker] = []
    cols = _columns.from_pb(market, code, name, list(ticker_list))
    tickers_from_columns(format_code(market, code), cols, out)
    return out

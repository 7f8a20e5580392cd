"""Typed, immutable data models (pydantic v2) and their construction from protobuf messages.

Models built from OpenD's messages skip validation: protobuf has already typed every field, and
validating again would triple the cost per tick. Models built by users (``Ticker(...)``) are
validated as usual.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from .codes import format_code
from .enums import PushDataType, TickerDirection, TickerType

if TYPE_CHECKING:
    from collections.abc import Iterable

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


_FIELD_NAMES = tuple(Ticker.model_fields)
_ALL_FIELDS_SET = set(_FIELD_NAMES)
_object_new = object.__new__
_object_setattr = object.__setattr__
_direction = TickerDirection.from_wire
_type = TickerType.from_wire
_push_type = PushDataType.from_wire


def _trusted_ticker(fields: dict[str, Any]) -> Ticker:
    """Build a Ticker from values already typed by protobuf, without validation."""
    model = _object_new(Ticker)
    _object_setattr(model, "__dict__", fields)
    _object_setattr(model, "__pydantic_fields_set__", _ALL_FIELDS_SET)
    _object_setattr(model, "__pydantic_extra__", None)
    _object_setattr(model, "__pydantic_private__", None)
    return model


def tickers_from_pb(market: int, code: str, name: str, ticker_list: Iterable[Any]) -> list[Ticker]:
    """Models for every ``Qot_Common.Ticker`` of one security (a 3010 reply or a 3011 push).

    Reads each protobuf field once, into locals: the generic accessors are the dominant cost.
    """
    full_code = format_code(market, code)
    out: list[Ticker] = []
    append = out.append
    new = _object_new
    setattr_ = _object_setattr
    fields_set = _ALL_FIELDS_SET
    for t in ticker_list:
        hp = t.hpVolume if t.HasField("hpVolume") else None
        type_wire = t.type if t.HasField("type") else -1
        model = new(Ticker)
        setattr_(
            model,
            "__dict__",
            {
                "code": full_code,
                "name": name,
                "sequence": t.sequence,
                "time": t.time,
                "price": t.price,
                "volume": t.volume,
                "turnover": t.turnover,
                "ticker_direction": _direction(t.dir),
                "type": _type(type_wire),
                "push_data_type": _push_type(t.pushDataType),
                "timestamp": t.timestamp,
                "recv_time": t.recvTime,
                "type_sign": t.typeSign,
                "hp_volume": hp,
            },
        )
        setattr_(model, "__pydantic_fields_set__", fields_set)
        setattr_(model, "__pydantic_extra__", None)
        setattr_(model, "__pydantic_private__", None)
        append(model)
    return out

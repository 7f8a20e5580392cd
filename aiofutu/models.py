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

    if not TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            # Models built from OpenD's messages (``build_tickers``) set only ``__dict__``; their
            # pydantic bookkeeping slots fall back to these constants, which is what a
            # validated model would hold anyway. Saves three slot writes per tick.
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
_UNKNOWN_TYPE = TickerType.UNKNOWN


_new = object.__new__
_set_dict = BaseModel.__dict__["__dict__"].__set__
#: The protobuf tag byte of ``Ticker.hpVolume`` (field 12, fixed64). A body without this byte
#: anywhere cannot carry the field, so the per-tick presence check can be skipped.
HP_VOLUME_TAG = b"\x61"


def build_tickers(
    full_code: str, name: str, ticker_list: Iterable[Any], out: list[Ticker], hp: bool = True
) -> None:
    """Append a model for every ``Qot_Common.Ticker`` to ``out``.

    This is the per-tick hot path: each protobuf field is read once into a local, enums come
    from tuples, and the model is assembled without validation (protobuf typed every value):
    one object and its ``__dict__``, nothing else. ``hp=False`` promises that
    no ticker carries ``hpVolume`` (see :data:`HP_VOLUME_TAG`).
    """
    append = out.append
    new = _new
    set_dict = _set_dict
    dirs = _DIRECTIONS
    types = _TYPES
    pushes = _PUSH_TYPES
    cls = Ticker
    for t in ticker_list:
        d = t.dir
        ty = t.type
        if ty == 0 and not t.HasField("type"):
            tick_type = _NA_TYPE
        else:
            tick_type = types[ty] if 0 <= ty < 32 else _NA_TYPE
        p = t.pushDataType
        model = new(cls)
        set_dict(
            model,
            {
                "code": full_code,
                "name": name,
                "sequence": t.sequence,
                "time": t.time,
                "price": t.price,
                "volume": t.volume,
                "turnover": t.turnover,
                "ticker_direction": dirs[d] if 0 <= d < 4 else _NA_DIRECTION,
                "type": tick_type,
                "push_data_type": pushes[p] if 0 <= p < 4 else _NA_PUSH,
                "timestamp": t.timestamp,
                "recv_time": t.recvTime,
                "type_sign": t.typeSign,
                "hp_volume": t.hpVolume if hp and t.HasField("hpVolume") else None,
            },
        )
        append(model)


def ticker_from_pb(t: Any, full_code: str, name: str, hp: bool = True) -> Ticker:
    """One model: :func:`build_tickers` without the loop, for the one-tick push (the common case).

    The two must build identical models; ``tests/unit/test_models.py`` checks that they do.
    """
    d = t.dir
    ty = t.type
    if ty == 0 and not t.HasField("type"):
        tick_type = _NA_TYPE
    else:
        tick_type = _TYPES[ty] if 0 <= ty < 32 else _NA_TYPE
    p = t.pushDataType
    model = _new(Ticker)
    _set_dict(
        model,
        {
            "code": full_code,
            "name": name,
            "sequence": t.sequence,
            "time": t.time,
            "price": t.price,
            "volume": t.volume,
            "turnover": t.turnover,
            "ticker_direction": _DIRECTIONS[d] if 0 <= d < 4 else _NA_DIRECTION,
            "type": tick_type,
            "push_data_type": _PUSH_TYPES[p] if 0 <= p < 4 else _NA_PUSH,
            "timestamp": t.timestamp,
            "recv_time": t.recvTime,
            "type_sign": t.typeSign,
            "hp_volume": t.hpVolume if hp and t.HasField("hpVolume") else None,
        },
    )
    return model


def tickers_from_pb(market: int, code: str, name: str, ticker_list: Iterable[Any]) -> list[Ticker]:
    """Models for every ``Qot_Common.Ticker`` of one security (a 3010 reply or a 3011 push)."""
    out: list[Ticker] = []
    build_tickers(format_code(market, code), name, ticker_list, out)
    return out

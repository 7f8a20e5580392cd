"""Public enums. Their values are the official SDK's strings, so code and frames written for the
SDK read the same; ``.wire`` gives the protocol's integer.

Lookups from wire integers (``TickerDirection.from_wire(1)``) are table-driven because they run
once per tick on the push path.
"""

from __future__ import annotations

import sys
from enum import Enum, IntEnum

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover
    from typing_extensions import Self

__all__ = (
    "Market",
    "ProtoId",
    "PushDataType",
    "RetType",
    "Session",
    "SubType",
    "TickerDirection",
    "TickerType",
)


class ProtoId(IntEnum):
    """OpenD protocol ids (the header's ``nProtoID``)."""

    INIT_CONNECT = 1001
    GET_GLOBAL_STATE = 1002
    NOTIFY = 1003
    KEEP_ALIVE = 1004
    TRD_UPDATE_ORDER = 2208
    TRD_UPDATE_ORDER_FILL = 2218
    QOT_SUB = 3001
    QOT_REG_QOT_PUSH = 3002
    QOT_GET_SUB_INFO = 3003
    QOT_GET_BASIC_QOT = 3004
    QOT_UPDATE_BASIC_QOT = 3005
    QOT_GET_KL = 3006
    QOT_UPDATE_KL = 3007
    QOT_GET_RT = 3008
    QOT_UPDATE_RT = 3009
    QOT_GET_TICKER = 3010
    QOT_UPDATE_TICKER = 3011
    QOT_GET_ORDER_BOOK = 3012
    QOT_UPDATE_ORDER_BOOK = 3013
    QOT_GET_BROKER = 3014
    QOT_UPDATE_BROKER = 3015
    QOT_UPDATE_PRICE_REMINDER = 3019
    QOT_REQUEST_HISTORY_KL = 3103
    QOT_REQUEST_HISTORY_KL_QUOTA = 3104
    QOT_GET_STATIC_INFO = 3202
    QOT_GET_SECURITY_SNAPSHOT = 3203
    QOT_GET_MARKET_STATE = 3223
    QOT_PUSH_INDICATOR_CALC = 3261
    QOT_UPDATE_OPTION_EVENT = 3310
    QOT_UPDATE_EC_ORDER_BOOK = 3450
    QOT_UPDATE_EC_KLINE = 3451
    QOT_UPDATE_EC_TICKER = 3452


#: Protocol ids that OpenD sends unsolicited (everything else is a reply to a request): Notify
#: and every ``*_UPDATE_*`` / ``*_PUSH_*`` id, derived from the names above, so that a new push
#: id (a new quote kind's, say) needs no second list. ``_kinds`` checks every kind's push is one.
PUSH_PROTO_IDS = frozenset(
    int(p)
    for p in ProtoId
    if p is ProtoId.NOTIFY or "_UPDATE_" in p.name or p.name.startswith("QOT_PUSH_")
)


class RetType(IntEnum):
    """``Response.retType`` values."""

    SUCCEED = 0
    FAILED = -1
    TIMEOUT = -100
    DISCONNECT = -200
    UNKNOWN = -400
    INVALID = -500


class _WireEnum(str, Enum):
    """A str enum whose members also carry the protocol integer."""

    _wire_: int

    def __new__(cls, value: str, wire: int) -> _WireEnum:
        member = str.__new__(cls, value)
        member._value_ = value
        member._wire_ = wire
        return member

    @classmethod
    def coerce(cls, value: object) -> Self:
        """A member from itself, its string value (``"TICKER"``) or its name."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            member = cls._value2member_map_.get(value)
            if member is None:
                member = cls.__members__.get(value)
            if member is not None:
                return member  # type: ignore[return-value]
        names = ", ".join(m.name for m in cls)
        raise ValueError(f"{value!r} is not a {cls.__name__}; use one of {names}")

    @property
    def wire(self) -> int:
        """The integer OpenD uses for this member."""
        return self._wire_

    def __str__(self) -> str:
        return str(self.value)


class Market(_WireEnum):
    """Markets, by the prefix of a code string (``HK.00700``)."""

    NONE = ("N/A", 0)
    HK = ("HK", 1)
    HK_FUTURE = ("HK_FUTURE", 2)
    US = ("US", 11)
    SH = ("SH", 21)
    SZ = ("SZ", 22)
    SG = ("SG", 31)
    JP = ("JP", 41)
    AU = ("AU", 51)
    MY = ("MY", 61)
    CA = ("CA", 71)
    FX = ("FX", 81)
    CC = ("CC", 91)
    EC = ("EC", 101)


class SubType(_WireEnum):
    """Subscription types (``Qot_Common.SubType``)."""

    NONE = ("N/A", 0)
    QUOTE = ("QUOTE", 1)
    ORDER_BOOK = ("ORDER_BOOK", 2)
    TICKER = ("TICKER", 4)
    RT_DATA = ("RT_DATA", 5)
    K_DAY = ("K_DAY", 6)
    K_5M = ("K_5M", 7)
    K_15M = ("K_15M", 8)
    K_30M = ("K_30M", 9)
    K_60M = ("K_60M", 10)
    K_1M = ("K_1M", 11)
    K_WEEK = ("K_WEEK", 12)
    K_MON = ("K_MON", 13)
    BROKER = ("BROKER", 14)
    K_QUARTER = ("K_QUARTER", 15)
    K_YEAR = ("K_YEAR", 16)
    K_3M = ("K_3M", 17)
    K_10M = ("K_10M", 18)
    K_120M = ("K_120M", 19)
    K_180M = ("K_180M", 20)
    K_240M = ("K_240M", 21)
    ORDER_BOOK_ODD = ("ORDER_BOOK_ODD", 22)


class Session(_WireEnum):
    """Trading sessions for US subscriptions (``Common.Session``)."""

    NONE = ("N/A", 0)
    RTH = ("RTH", 1)
    ETH = ("ETH", 2)
    ALL = ("ALL", 3)
    OVERNIGHT = ("OVERNIGHT", 4)


class TickerDirection(_WireEnum):
    """Who initiated a trade."""

    NA = ("N/A", 0)
    BUY = ("BUY", 1)
    SELL = ("SELL", 2)
    NEUTRAL = ("NEUTRAL", 3)

    @classmethod
    def from_wire(cls, value: int) -> TickerDirection:
        """The member for a wire integer; ``NA`` for anything unknown."""
        return _DIRECTION_BY_WIRE[value] if 0 <= value < len(_DIRECTION_BY_WIRE) else cls.NA


class TickerType(_WireEnum):
    """Exchange trade type of a tick. ``NA`` means the field was absent or unknown."""

    NA = ("N/A", -1)
    UNKNOWN = ("UNKNOWN", 0)
    AUTO_MATCH = ("AUTO_MATCH", 1)
    LATE = ("LATE", 2)
    NON_AUTO_MATCH = ("NON_AUTO_MATCH", 3)
    INTER_AUTO_MATCH = ("INTER_AUTO_MATCH", 4)
    INTER_NON_AUTO_MATCH = ("INTER_NON_AUTO_MATCH", 5)
    ODD_LOT = ("ODD_LOT", 6)
    AUCTION = ("AUCTION", 7)
    BULK = ("BULK", 8)
    CRASH = ("CRASH", 9)
    CROSS_MARKET = ("CROSS_MARKET", 10)
    BULK_SOLD = ("BULK_SOLD", 11)
    FREE_ON_BOARD = ("FREE_ON_BOARD", 12)
    RULE127_OR_155 = ("RULE127_OR_155", 13)
    DELAY = ("DELAY", 14)
    MARKET_CENTER_CLOSE_PRICE = ("MARKET_CENTER_CLOSE_PRICE", 15)
    NEXT_DAY = ("NEXT_DAY", 16)
    MARKET_CENTER_OPENING = ("MARKET_CENTER_OPENING", 17)
    PRIOR_REFERENCE_PRICE = ("PRIOR_REFERENCE_PRICE", 18)
    MARKET_CENTER_OPEN_PRICE = ("MARKET_CENTER_OPEN_PRICE", 19)
    SELLER = ("SELLER", 20)
    T = ("T", 21)
    EXTENDED_TRADING_HOURS = ("EXTENDED_TRADING_HOURS", 22)
    CONTINGENT = ("CONTINGENT", 23)
    AVERAGE_PRICE = ("AVERAGE_PRICE", 24)
    OTC_SOLD = ("OTC_SOLD", 25)
    ODD_LOT_CROSS_MARKET = ("ODD_LOT_CROSS_MARKET", 26)
    DERIVATIVELY_PRICED = ("DERIVATIVELY_PRICED", 27)
    #: The SDK spells this value with a misplaced underscore; kept for column compatibility.
    REOPENING_PRICED = ("REOPENINGP_RICED", 28)
    CLOSING_PRICED = ("CLOSING_PRICED", 29)
    COMPREHENSIVE_DELAY_PRICE = ("COMPREHENSIVE_DELAY_PRICE", 30)
    OVERSEAS = ("OVERSEAS", 31)

    @classmethod
    def from_wire(cls, value: int) -> TickerType:
        """The member for a wire integer; ``NA`` for anything unknown."""
        return _TYPE_BY_WIRE[value] if 0 <= value < len(_TYPE_BY_WIRE) else cls.NA


class PushDataType(_WireEnum):
    """Why a tick was pushed: live, gap-fill after OpenD's own outage, or cache."""

    NA = ("N/A", 0)
    REALTIME = ("REALTIME", 1)
    BYDISCONN = ("BYDISCONN", 2)
    CACHE = ("CACHE", 3)

    @classmethod
    def from_wire(cls, value: int) -> PushDataType:
        """The member for a wire integer; ``NA`` for anything unknown."""
        return _PUSH_BY_WIRE[value] if 0 <= value < len(_PUSH_BY_WIRE) else cls.NA


def _table(enum: type[_WireEnum]) -> tuple[_WireEnum, ...]:
    by_wire = {m.wire: m for m in enum if m.wire >= 0}
    return tuple(by_wire[i] for i in range(max(by_wire) + 1))


_DIRECTION_BY_WIRE: tuple[TickerDirection, ...] = _table(TickerDirection)  # type: ignore[assignment]
_TYPE_BY_WIRE: tuple[TickerType, ...] = _table(TickerType)  # type: ignore[assignment]
_PUSH_BY_WIRE: tuple[PushDataType, ...] = _table(PushDataType)  # type: ignore[assignment]

MARKET_BY_WIRE: dict[int, Market] = {m.wire: m for m in Market}
MARKET_BY_PREFIX: dict[str, Market] = {m.value: m for m in Market}

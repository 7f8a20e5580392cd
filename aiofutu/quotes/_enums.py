"""The enums of the state kinds, with the official SDK's strings as values (``N/A`` for absent
or unknown numbers, as the SDK renders them). Candidates for :mod:`aiofutu.enums`."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from ..enums import _WireEnum

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = (
    "AssetClass",
    "DarkStatus",
    "ExchType",
    "IndexOptionType",
    "OptionAreaType",
    "OptionType",
    "OrderBookType",
    "PriceType",
    "SecurityStatus",
    "SecurityType",
    "WrtType",
)


class DarkStatus(_WireEnum):
    """Grey-market (HK pre-listing) trading status of a quote."""

    NA = ("N/A", 0)
    TRADING = ("TRADING", 1)
    END = ("END", 2)


class SecurityStatus(_WireEnum):
    """Listing/trading status of a security (``Qot_Common.SecurityStatus``); SDK spellings."""

    NA = ("N/A", 0)
    NORMAL = ("NORMAL", 1)
    LISTING = ("LISTING", 2)
    PURCHASING = ("PURCHASING", 3)
    SUBSCRIBING = ("SUBSCRIBING", 4)
    BEFORE_DARK_TRADE_OPEING = ("BEFORE_DARK_TRADE_OPEING", 5)
    DARK_TRADING = ("DARK_TRADING", 6)
    DARK_TRAD_END = ("DARK_TRAD_END", 7)
    TO_BE_OPEN = ("TO_BE_OPEN", 8)
    SUSPENDED = ("SUSPENDED", 9)
    CALLED = ("CALLED", 10)
    EXPIRED_LAST_TRADING_DATE = ("EXPIRED_LAST_TRADING_DATE", 11)
    EXPIRED = ("EXPIRED", 12)
    DELISTED = ("DELISTED", 13)
    CHANGE_TO_TEMPORARY_CODE = ("CHANGE_TO_TEMPORARY_CODE", 14)
    TEMPORARY_CODE_TRADE_END = ("TEMPORARY_CODE_TRADE_END", 15)
    CHANGED_PLATE_TRADE_END = ("CHANGED_PLATE_TRADE_END", 16)
    CHANGED_CODE_TRAD_END = ("CHANGED_CODE_TRAD_END", 17)
    RECOVERABLE_CIRCUIT_BREAKER = ("RECOVERABLE_CIRCUIT_BREAKER", 18)
    UNRECOVERABLE_CIRCUIT_BREAKER = ("UNRECOVERABLE_CIRCUIT_BREAKER", 19)
    AFTER_COMBINATION = ("AFTER_COMBINATION", 20)
    AFTER_TRANSACTION = ("AFTER_TRANSACTION", 21)


class OptionAreaType(_WireEnum):
    """Exercise style of an option."""

    NA = ("N/A", 0)
    AMERICAN = ("AMERICAN", 1)
    EUROPEAN = ("EUROPEAN", 2)
    BERMUDA = ("BERMUDA", 3)


class IndexOptionType(_WireEnum):
    """Normal or mini index option."""

    NA = ("N/A", 0)
    NORMAL = ("NORMAL", 1)
    SMALL = ("SMALL", 2)


class OrderBookType(_WireEnum):
    """Board lots (``NORMAL``, the default) or the odd-lot book (``ODD``)."""

    NORMAL = ("NORMAL", 0)
    ODD = ("ODD", 1)


class SecurityType(_WireEnum):
    """The type of a security (``Qot_Common.SecurityType``), with the SDK's strings.

    ``ETF`` is the protocol's "Trust" (funds); ``DRVT`` is options. Numbers the SDK does not
    name decode to ``NA``.
    """

    NA = ("N/A", 0)
    BOND = ("BOND", 1)
    BWRT = ("BWRT", 2)
    STOCK = ("STOCK", 3)
    ETF = ("ETF", 4)
    WARRANT = ("WARRANT", 5)
    IDX = ("IDX", 6)
    PLATE = ("PLATE", 7)
    DRVT = ("DRVT", 8)
    PLATESET = ("PLATESET", 9)
    FUTURE = ("FUTURE", 10)
    FOREX = ("FOREX", 11)
    CRYPTO = ("CRYPTO", 12)


class WrtType(_WireEnum):
    """The type of a warrant (``Qot_Common.WarrantType``)."""

    NA = ("N/A", 0)
    CALL = ("CALL", 1)
    PUT = ("PUT", 2)
    BULL = ("BULL", 3)
    BEAR = ("BEAR", 4)
    INLINE = ("INLINE", 5)


class OptionType(_WireEnum):
    """Call or put; the protocol's 0 ("unknown") is the SDK's ``ALL``, other numbers ``NA``."""

    ALL = ("ALL", 0)
    CALL = ("CALL", 1)
    PUT = ("PUT", 2)
    NA = ("N/A", -1)


class PriceType(_WireEnum):
    """Whether an inline warrant's price is inside its range (``Qot_Common.PriceType``)."""

    NA = ("N/A", 0)
    OUTSIDE = ("OUTSIDE", 1)
    WITH_IN = ("WITH_IN", 2)


class AssetClass(_WireEnum):
    """What a fund invests in (``Qot_Common.AssetClass``)."""

    NA = ("N/A", 0)
    STOCK = ("STOCK", 1)
    BOND = ("BOND", 2)
    COMMODITY = ("COMMODITY", 3)
    CURRENCY_MARKET = ("CURRENCY_MARKET", 4)
    FUTURE = ("FUTURE", 5)
    SWAP = ("SWAP", 6)


class ExchType(_WireEnum):
    """The exchange a security is listed on (``Qot_Common.ExchType``)."""

    NA = ("N/A", 0)
    HK_MAINBOARD = ("HK_MAINBOARD", 1)
    HK_GEMBOARD = ("HK_GEMBOARD", 2)
    HK_HKEX = ("HK_HKEX", 3)
    US_NYSE = ("US_NYSE", 4)
    US_NASDAQ = ("US_NASDAQ", 5)
    US_PINK = ("US_PINK", 6)
    US_AMEX = ("US_AMEX", 7)
    US_OPTION = ("US_OPTION", 8)
    US_NYMEX = ("US_NYMEX", 9)
    US_COMEX = ("US_COMEX", 10)
    US_CBOT = ("US_CBOT", 11)
    US_CME = ("US_CME", 12)
    US_CBOE = ("US_CBOE", 13)
    CN_SH = ("CN_SH", 14)
    CN_SZ = ("CN_SZ", 15)
    CN_STIB = ("CN_STIB", 16)
    SG_SGX = ("SG_SGX", 17)
    JP_OSE = ("JP_OSE", 18)
    CC_CRYPTO = ("CC_CRYPTO", 19)
    MY_MYX = ("MY_MYX", 20)
    JP_TSE = ("JP_TSE", 21)
    JP_NIKKEI = ("JP_NIKKEI", 22)


_E = TypeVar("_E", bound=_WireEnum)


def lookup(enum: type[_E], default: _E) -> Callable[[int], _E]:
    """A fast wire-number -> member function; unknown numbers give ``default``."""
    table = {m.wire: m for m in enum}
    get = table.get

    def of(number: int) -> _E:
        return get(number, default)

    return of

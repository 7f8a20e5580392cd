"""The enums of the state kinds, with the official SDK's strings as values (``N/A`` for absent
or unknown numbers, as the SDK renders them). Candidates for :mod:`aiofutu.enums`."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from ..enums import AssetClass, ExchType, OptionType, PriceType, SecurityType, WrtType, _WireEnum

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


_E = TypeVar("_E", bound=_WireEnum)


def lookup(enum: type[_E], default: _E) -> Callable[[int], _E]:
    """A fast wire-number -> member function; unknown numbers give ``default``."""
    table = {m.wire: m for m in enum}
    get = table.get

    def of(number: int) -> _E:
        return get(number, default)

    return of

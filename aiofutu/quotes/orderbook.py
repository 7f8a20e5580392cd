"""Order books: ``Qot_GetOrderBook`` (3012) and its push ``Qot_UpdateOrderBook`` (3013).

The reply and the push share one S2C, so :func:`order_book_from_s2c` serves both. Each push is
the full book of both sides up to the subscribed depth (replace, never merge); route it by
``(code, order_book_type)``, an absent type meaning the normal book.

polars form: the SDK's ``get_order_book`` returns a dict, and so does
:func:`order_book_to_polars`, with the SDK's keys (``code``, ``name``, ``svr_recv_time_bid``,
``svr_recv_time_ask``, ``order_book_type`` only when OpenD sent it, ``Bid``, ``Ask``). Where the
SDK has a list of ``(price, volume, order_num, {order_id: order_volume})`` tuples, ``Bid`` and
``Ask`` here are DataFrames with the columns ``price, volume, order_num, order_details`` in that
order, one row per level in the server's order; ``order_details`` is a list of
``{order_id, order_volume}`` structs (empty without HK SF). ``volume`` is the high-precision
volume when sent, rounded, as in the ticker frames.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from .._pb import qot_get_order_book_pb2
from ..codes import format_code, parse_code
from ..enums import Market
from ..errors import ConfigurationError
from ..frames import _polars, _volume
from ._enums import OrderBookType, lookup
from ._model import TrustedModel, trusted, utc

if TYPE_CHECKING:
    import datetime as _dt

    import polars as pl

__all__ = (
    "DEPTH_LIMITS",
    "LEVEL_COLUMNS",
    "OrderBook",
    "OrderBookDetail",
    "OrderBookLevel",
    "OrderBookType",
    "get_order_book_request",
    "max_depth",
    "order_book_from_s2c",
    "order_book_to_polars",
)

#: Levels per side by security class and quote right (Futu's Q&A, fact sheet section 4.4).
#: ``None`` is the full book; a missing right has no order book.
DEPTH_LIMITS: dict[str, dict[str, int | None]] = {
    "HK": {"LV2": 10, "SF": None},  # stocks, warrants, CBBCs, inline warrants
    "HK_DERIVATIVE": {"LV1": 1, "LV2": 10},  # HK options and futures
    "US": {"LV1": 1, "LV2": 60},  # stocks and ETFs
    "US_OPTION": {"LV1": 1},
    "US_FUTURE": {"LV2": 40},
    "CN": {"LV1": 5},  # A-shares
}
_CLASSES_BY_MARKET: dict[Market, tuple[str, ...]] = {
    Market.HK: ("HK", "HK_DERIVATIVE"),
    Market.HK_FUTURE: ("HK_DERIVATIVE",),
    Market.US: ("US", "US_OPTION", "US_FUTURE"),
    Market.SH: ("CN",),
    Market.SZ: ("CN",),
}
_INT32_MAX = 2**31 - 1
#: Order details per level under HK SF, at most (fact sheet section 2.2).
MAX_DETAILS = 1000


def max_depth(market: Market) -> int:
    """The most levels per side any quote right gets in ``market`` (the full book: int32 max).

    Markets the table does not cover are not capped beyond the wire's int32.
    """
    best = 0
    for cls in _CLASSES_BY_MARKET.get(market, ()):
        for depth in DEPTH_LIMITS[cls].values():
            if depth is None:
                return _INT32_MAX
            best = max(best, depth)
    return best or _INT32_MAX


class OrderBookDetail(TrustedModel):
    """One order queued at a level (HK SF with order details only)."""

    order_id: int
    volume: int


class OrderBookLevel(TrustedModel):
    """One price level of a book side."""

    price: float
    volume: int
    order_count: int
    details: tuple[OrderBookDetail, ...] = ()
    #: High-precision volume, when OpenD sends one (the SDK then reports it as the volume).
    hp_volume: float | None = None


class OrderBook(TrustedModel):
    """The full book of one security: ``bids`` and ``asks``, best price first as OpenD sends.

    ``svr_recv_time_bid``/``_ask`` are OpenD's strings for when Futu's server received each side
    from the exchange (empty when not sent, e.g. outside HK/A-share trading hours);
    ``*_timestamp`` are the same instants in Unix seconds, used by :attr:`bid_datetime` and
    :attr:`ask_datetime`. ``order_book_type`` is ``None`` when OpenD did not say (a normal book).
    """

    code: str
    name: str
    bids: tuple[OrderBookLevel, ...]
    asks: tuple[OrderBookLevel, ...]
    svr_recv_time_bid: str = ""
    svr_recv_time_ask: str = ""
    svr_recv_time_bid_timestamp: float | None = None
    svr_recv_time_ask_timestamp: float | None = None
    order_book_type: OrderBookType | None = None

    @property
    def bid_datetime(self) -> _dt.datetime | None:
        """When the bid side reached Futu's server, as a UTC datetime (``None`` if not sent)."""
        return utc(self.svr_recv_time_bid_timestamp)

    @property
    def ask_datetime(self) -> _dt.datetime | None:
        """When the ask side reached Futu's server, as a UTC datetime (``None`` if not sent)."""
        return utc(self.svr_recv_time_ask_timestamp)

    @property
    def kind(self) -> OrderBookType:
        """The book's type, ``NORMAL`` when OpenD did not say."""
        return self.order_book_type or OrderBookType.NORMAL


# ------------------------------------------------------------------------------ decoding

_BOOK_TYPE = lookup(OrderBookType, OrderBookType.NORMAL)
_new_level = OrderBookLevel
_new_detail = OrderBookDetail


def _side(levels: Any) -> tuple[OrderBookLevel, ...]:
    out: list[OrderBookLevel] = []
    append = out.append
    for lv in levels:
        details = lv.detailList
        hp = lv.hpVolume if lv.HasField("hpVolume") else None
        append(
            trusted(
                _new_level,
                {
                    "price": lv.price,
                    "volume": lv.volume,
                    "order_count": lv.orederCount,
                    "details": (
                        tuple(
                            trusted(_new_detail, {"order_id": d.orderID, "volume": d.volume})
                            for d in details
                        )
                        if details
                        else ()
                    ),
                    "hp_volume": hp,
                },
            )
        )
    return tuple(out)


def order_book_from_s2c(s2c: Any) -> OrderBook:
    """The model of a 3012 reply's or a 3013 push's S2C."""
    sec = s2c.security
    fields: dict[str, Any] = {
        "code": format_code(sec.market, sec.code),
        "name": "N/A",
        "bids": _side(s2c.orderBookBidList),
        "asks": _side(s2c.orderBookAskList),
        "svr_recv_time_bid": "",
        "svr_recv_time_ask": "",
        "svr_recv_time_bid_timestamp": None,
        "svr_recv_time_ask_timestamp": None,
        "order_book_type": None,
    }
    for desc, value in s2c.ListFields():
        number = desc.number
        if number == 8:
            fields["name"] = value
        elif number == 4:
            fields["svr_recv_time_bid"] = value
        elif number == 5:
            fields["svr_recv_time_bid_timestamp"] = value
        elif number == 6:
            fields["svr_recv_time_ask"] = value
        elif number == 7:
            fields["svr_recv_time_ask_timestamp"] = value
        elif number == 9:
            fields["order_book_type"] = _BOOK_TYPE(value)
    return trusted(OrderBook, fields)


# ------------------------------------------------------------------------------ request


def get_order_book_request(
    code: str, num: int = 10, order_book_type: OrderBookType | str | None = None
) -> qot_get_order_book_pb2.Request:
    """The 3012 request for ``num`` levels per side of ``code``.

    ``num`` must be an int from 1 to :func:`max_depth` of the code's market (A-shares 5,
    HK options/futures 10, US 60; HK securities under SF get the full book). OpenD may still
    send fewer levels than asked, per the account's quote right. ``order_book_type`` is sent only
    when given, as the SDK does. Raises :class:`~aiofutu.InvalidCode` or
    :class:`~aiofutu.ConfigurationError` before anything is sent.
    """
    market, local = parse_code(code)
    if isinstance(num, bool) or not isinstance(num, int):
        raise ConfigurationError(f"num must be an int (levels per side), got {num!r}")
    limit = max_depth(market)
    if not 1 <= num <= limit:
        raise ConfigurationError(
            f"num must be between 1 and {limit} for {market.value} order books, got {num}"
        )
    req = qot_get_order_book_pb2.Request()
    c2s = req.c2s
    c2s.security.market = market.wire
    c2s.security.code = local
    c2s.num = num
    if order_book_type is not None:
        try:
            c2s.orderBookType = OrderBookType.coerce(order_book_type).wire
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
    c2s.header.securityFirm = 0
    return req


# ------------------------------------------------------------------------------ polars

#: Columns of the ``Bid`` and ``Ask`` frames (the SDK's tuple, named as its docs name it).
LEVEL_COLUMNS = ("price", "volume", "order_num", "order_details")


def _level_schema() -> dict[str, Any]:
    pl = _polars()
    detail = pl.Struct({"order_id": pl.Int64, "order_volume": pl.Int64})
    return {
        "price": pl.Float64,
        "volume": pl.Int64,
        "order_num": pl.Int64,
        "order_details": pl.List(detail),
    }


def _side_frame(levels: tuple[OrderBookLevel, ...]) -> pl.DataFrame:
    data = {
        "price": [lv.price for lv in levels],
        "volume": [_volume(lv.volume, lv.hp_volume) for lv in levels],
        "order_num": [lv.order_count for lv in levels],
        "order_details": [
            [{"order_id": d.order_id, "order_volume": d.volume} for d in lv.details]
            for lv in levels
        ],
    }
    return cast("pl.DataFrame", _polars().DataFrame(data, schema=_level_schema()))


def order_book_to_polars(book: OrderBook) -> dict[str, Any]:
    """The SDK's ``get_order_book`` dict, with ``Bid``/``Ask`` as polars DataFrames."""
    out: dict[str, Any] = {
        "code": book.code,
        "name": book.name,
        "svr_recv_time_bid": book.svr_recv_time_bid,
        "svr_recv_time_ask": book.svr_recv_time_ask,
    }
    if book.order_book_type is not None:
        out["order_book_type"] = book.order_book_type.value
    out["Bid"] = _side_frame(book.bids)
    out["Ask"] = _side_frame(book.asks)
    return out

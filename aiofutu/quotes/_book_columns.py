"""Order-book pushes decoded through a columnar view (``protos/order_book_columns.proto``).

The exact schema gives one wrapper object per level and several attribute reads on it, which
is most of the cost of a book (about 1.6 us per level of a 10-level book). The view parses each
side into columns instead; the levels are then built straight from them. It is used only when
the view loses nothing: no level has order details (HK SF) and ``hpVolume`` is on every level
of a side or on none. Otherwise the push is decoded exactly
(:func:`~aiofutu.quotes.orderbook.order_book_from_s2c`): same model either way.
"""

from __future__ import annotations

from itertools import repeat
from typing import Any

from .._pb import order_book_columns_pb2, qot_get_order_book_pb2, qot_update_order_book_pb2
from .._protocol import decode_response, successful_view
from ..codes import format_code
from ..models import _new, _set_dict
from ._enums import OrderBookType, lookup
from .orderbook import OrderBook, OrderBookLevel, order_book_from_s2c

__all__ = ("BookView", "book_from_reply", "book_from_view")

#: the view's Response (parse a 3012 reply or a 3013 push body with it)
BookView = order_book_columns_pb2.Response
_BOOK_TYPE = lookup(OrderBookType, OrderBookType.NORMAL)
_Level = OrderBookLevel
_Book = OrderBook


#: levels already built, by (price, volume, order count, hpVolume): a book update usually
#: changes a level or two, and a frozen model can be shared by every book that has it
_LEVELS: dict[tuple[float, int, int, float | None], OrderBookLevel] = {}
_LEVELS_MAX = 8192


def _level(key: tuple[float, int, int, float | None]) -> OrderBookLevel:
    if len(_LEVELS) >= _LEVELS_MAX:
        _LEVELS.clear()
    level = _LEVELS[key] = _new(_Level)
    price, volume, count, hp_volume = key
    _set_dict(
        level,
        {
            "price": price,
            "volume": volume,
            "order_count": count,
            "details": (),
            "hp_volume": hp_volume,
        },
    )
    return level


def _side(cols: Any) -> tuple[OrderBookLevel, ...] | None:
    """The levels of one side, or ``None`` when the view cannot represent them exactly."""
    if cols.detailList:
        return None
    # slicing copies a column to a list in one call (iterating the container is ~3x slower)
    prices = cols.price[:]
    volumes = cols.volume[:]
    counts = cols.orederCount[:]
    hp = cols.hpVolume[:]
    n = len(prices)
    if len(volumes) != n or len(counts) != n or (hp and len(hp) != n):
        return None
    get = _LEVELS.get
    out: list[OrderBookLevel] = []
    append = out.append
    for key in zip(prices, volumes, counts, hp if hp else repeat(None, n), strict=True):
        level = get(key)
        append(level if level is not None else _level(key))
    return tuple(out)


def _exact(body: bytes) -> OrderBook:
    response = qot_update_order_book_pb2.Response()
    response.ParseFromString(body)
    return order_book_from_s2c(response.s2c)


def book_from_reply(body: bytes, proto_id: int, serial: int) -> OrderBook:
    """The model of a 3012 reply (its S2C is a 3013 push's), through the view when it loses
    nothing; a refusal or a body that does not parse goes the exact way, for its typed error."""
    view = successful_view(BookView, body)
    if view is None:
        return order_book_from_s2c(
            decode_response(qot_get_order_book_pb2.Response, body, proto_id, serial).s2c
        )
    return book_from_view((view.s2c, body))


def book_from_view(item: tuple[Any, bytes]) -> OrderBook:
    """The model of ``(view S2C, body)``: from the view's columns, or the body decoded exactly."""
    s2c, body = item
    bids = _side(s2c.orderBookBidList)
    asks = _side(s2c.orderBookAskList) if bids is not None else None
    if bids is None or asks is None:
        return _exact(body)
    sec = s2c.security
    has = s2c.HasField
    book = _new(_Book)
    _set_dict(
        book,
        {
            "code": format_code(sec.market, sec.code),
            "name": s2c.name if has("name") else "N/A",
            "bids": bids,
            "asks": asks,
            "svr_recv_time_bid": s2c.svrRecvTimeBid,
            "svr_recv_time_ask": s2c.svrRecvTimeAsk,
            "svr_recv_time_bid_timestamp": (
                s2c.svrRecvTimeBidTimestamp if has("svrRecvTimeBidTimestamp") else None
            ),
            "svr_recv_time_ask_timestamp": (
                s2c.svrRecvTimeAskTimestamp if has("svrRecvTimeAskTimestamp") else None
            ),
            "order_book_type": _BOOK_TYPE(s2c.orderBookType) if has("orderBookType") else None,
        },
    )
    return book

"""The simulator's order book (3012 reply, 3013 push), centred on the last traded price.

The touch sits on the market's tick ladder around the last tick's price (the ask at the last
price after a buyer-initiated trade, the bid there otherwise) and each side steps one tick per
level away from it; volumes, order counts and (HK SF) order details come from a seeded RNG, so
one seed gives one book. Depth follows the fact sheet's limits per market and quote right.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._pb import qot_common_pb2, qot_get_order_book_pb2, qot_update_order_book_pb2
from ...enums import Market
from ...quotes.orderbook import DEPTH_LIMITS, MAX_DETAILS
from ._common import from_units, rng_of, s2c_response, snap, tick_size, to_units

if TYPE_CHECKING:
    import random

__all__ = (
    "DEPTH_LIMITS",
    "FULL_BOOK_LEVELS",
    "BookSides",
    "book_sides",
    "depth_limit",
    "get_reply_body",
    "push_body",
    "s2c",
)

#: Levels per side the simulator serves for a "full book" (HK SF): the SDK's documented 40.
FULL_BOOK_LEVELS = 40
_BUY = 1
BookSides = tuple[list[qot_common_pb2.OrderBook], list[qot_common_pb2.OrderBook]]


def depth_limit(market: Market, right: str = "LV2", *, security_class: str | None = None) -> int:
    """Levels per side for ``market`` under quote ``right`` (``LV1``, ``LV2``, ``SF``); 0 when
    that right has no book. ``security_class`` picks a row of :data:`DEPTH_LIMITS` (default:
    the market's stocks)."""
    cls = security_class or {
        Market.HK: "HK",
        Market.HK_FUTURE: "HK_DERIVATIVE",
        Market.US: "US",
        Market.SH: "CN",
        Market.SZ: "CN",
    }.get(market)
    if cls is None:
        return 10  # markets the fact sheet does not cover
    rights = DEPTH_LIMITS[cls]
    if right not in rights:
        # a higher right sees at least what the best lower one does
        order = ("LV1", "LV2", "SF")
        lower = [rights[r] for r in order[: order.index(right)] if r in rights]
        if not lower:
            return 0
        depth = lower[-1]
    else:
        depth = rights[right]
    return FULL_BOOK_LEVELS if depth is None else depth


def _levels(
    market: Market,
    start: int,
    up: bool,
    num: int,
    lot: int,
    rng: random.Random,
    details: bool,
    next_id: list[int],
) -> list[qot_common_pb2.OrderBook]:
    out: list[qot_common_pb2.OrderBook] = []
    price = start
    for depth in range(num):
        if price <= 0:
            break
        level = qot_common_pb2.OrderBook()
        level.price = from_units(price)
        orders = 1 + min(int(rng.expovariate(0.35) * (1 + depth / 4)), 60)
        lots = [1 + min(int(rng.expovariate(0.6)), 20) for _ in range(orders)]
        level.volume = sum(lots) * lot
        level.orederCount = orders
        if details:
            for n in lots[:MAX_DETAILS]:
                d = level.detailList.add()
                next_id[0] += rng.randint(1, 97)
                d.orderID = next_id[0]
                d.volume = n * lot
        out.append(level)
        tick = tick_size(market, price, up)
        price = price + tick if up else price - tick
    return out


def book_sides(
    market: Market,
    last_price: float,
    num: int,
    seed: random.Random | int | str,
    *,
    lot: int = 100,
    last_direction: int = 0,
    details: bool = False,
) -> BookSides:
    """``(bids, asks)``: ``num`` levels per side around ``last_price``, best price first.

    Bids are strictly below asks and every price is on the market's ladder; the same ``seed``
    (and inputs) gives the same book. With ``details`` each level lists its orders (HK SF).
    """
    rng = rng_of(seed, "book")
    last = snap(market, max(to_units(last_price), 1))
    if last_direction == _BUY:  # a buyer lifted the offer: the ask is at the last price
        ask = last
        bid = last - tick_size(market, last, False)
    else:
        bid = last
        ask = last + tick_size(market, last, True)
    if bid <= 0:  # the last trade was at the lowest tick: keep a bid there
        bid, ask = ask, ask + tick_size(market, ask, True)
    next_id = [rng.randrange(10**12, 10**13)]
    bids = _levels(market, bid, False, num, lot, rng, details, next_id)
    asks = _levels(market, ask, True, num, lot, rng, details, next_id)
    return bids, asks


def s2c(
    market: Market,
    code: str,
    sides: BookSides,
    *,
    name: str | None = None,
    recv_time: tuple[str, float] | None = None,
    order_book_type: int | None = None,
) -> qot_get_order_book_pb2.S2C:
    """The S2C of both 3012 and 3013; ``recv_time`` is ``(OpenD string, Unix seconds)`` for
    both ``svrRecvTime*`` fields (HK/A-shares in trading hours)."""
    out = qot_get_order_book_pb2.S2C()
    out.security.market = market.wire
    out.security.code = code
    if name is not None:
        out.name = name
    bids, asks = sides
    out.orderBookBidList.extend(bids)
    out.orderBookAskList.extend(asks)
    if recv_time is not None:
        text, stamp = recv_time
        out.svrRecvTimeBid = out.svrRecvTimeAsk = text
        out.svrRecvTimeBidTimestamp = out.svrRecvTimeAskTimestamp = stamp
    if order_book_type is not None:
        out.orderBookType = order_book_type
    return out


def get_reply_body(book: qot_get_order_book_pb2.S2C) -> bytes:
    """A successful 3012 reply body."""
    return s2c_response(qot_get_order_book_pb2, book)


def push_body(book: qot_get_order_book_pb2.S2C) -> bytes:
    """A 3013 push body (the same S2C field numbers)."""
    push = qot_update_order_book_pb2.S2C.FromString(book.SerializeToString())
    return s2c_response(qot_update_order_book_pb2, push)

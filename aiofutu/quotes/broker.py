"""HK broker queues: ``Qot_GetBroker`` (3014) and its push ``Qot_UpdateBroker`` (3015).

The reply and the push share one S2C, so :func:`broker_queue_from_s2c` serves both; each push is
the full queue of both sides (replace, never merge), routed by security. HK securities only, and
not under HK LV1.

polars form: the SDK's ``get_broker_queue`` returns ``(ret, bid_frame, ask_frame)``;
:func:`broker_queue_to_polars` returns ``(bid_frame, ask_frame)`` with exactly the SDK's columns
(``code, name, bid_broker_id, bid_broker_name, bid_broker_pos, order_id, order_volume`` and the
``ask_`` twin), rows in the server's order. ``order_id``/``order_volume`` are null where the SDK
puts ``N/A`` (they are filled under HK SF only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from .._pb import qot_get_broker_pb2
from ..codes import format_code, parse_code
from ..enums import Market
from ..errors import UnsupportedMarket
from ..frames import _polars
from ._model import TrustedModel, trusted

if TYPE_CHECKING:
    import polars as pl

__all__ = (
    "ASK_COLUMNS",
    "BID_COLUMNS",
    "BrokerEntry",
    "BrokerQueue",
    "broker_queue_from_s2c",
    "broker_queue_to_polars",
    "check_broker_code",
    "get_broker_request",
)


class BrokerEntry(TrustedModel):
    """One broker in the queue of one side.

    ``position`` is the price level the broker sits at (``pos`` on the wire; samples start at
    1). ``order_id`` and ``volume`` are sent under HK SF only.
    """

    broker_id: int
    name: str
    position: int
    order_id: int | None = None
    volume: int | None = None


class BrokerQueue(TrustedModel):
    """The broker queue of one HK security: ``bids`` and ``asks`` in the server's order."""

    code: str
    name: str
    bids: tuple[BrokerEntry, ...]
    asks: tuple[BrokerEntry, ...]


# ------------------------------------------------------------------------------ decoding

_new_entry = BrokerEntry


def _side(entries: Any) -> tuple[BrokerEntry, ...]:
    out: list[BrokerEntry] = []
    append = out.append
    for b in entries:
        append(
            trusted(
                _new_entry,
                {
                    "broker_id": b.id,
                    "name": b.name,
                    "position": b.pos,
                    "order_id": b.orderID if b.HasField("orderID") else None,
                    "volume": b.volume if b.HasField("volume") else None,
                },
            )
        )
    return tuple(out)


def broker_queue_from_s2c(s2c: Any) -> BrokerQueue:
    """The model of a 3014 reply's or a 3015 push's S2C."""
    sec = s2c.security
    return trusted(
        BrokerQueue,
        {
            "code": format_code(sec.market, sec.code),
            "name": s2c.name if s2c.HasField("name") else "N/A",
            "bids": _side(s2c.brokerBidList),
            "asks": _side(s2c.brokerAskList),
        },
    )


# ------------------------------------------------------------------------------ request


def check_broker_code(code: str) -> tuple[Market, str]:
    """``code`` parsed, or :class:`~aiofutu.UnsupportedMarket` if it is not an HK code."""
    market, local = parse_code(code)
    if market is not Market.HK:
        raise UnsupportedMarket(code, "the broker queue", ("HK",))
    return market, local


def get_broker_request(code: str) -> qot_get_broker_pb2.Request:
    """The 3014 request for an HK ``code`` (:class:`~aiofutu.UnsupportedMarket` otherwise)."""
    market, local = check_broker_code(code)
    req = qot_get_broker_pb2.Request()
    req.c2s.security.market = market.wire
    req.c2s.security.code = local
    req.c2s.header.securityFirm = 0
    return req


# ------------------------------------------------------------------------------ polars

#: The SDK's bid-frame columns, in its order.
BID_COLUMNS = (
    "code",
    "name",
    "bid_broker_id",
    "bid_broker_name",
    "bid_broker_pos",
    "order_id",
    "order_volume",
)
#: The SDK's ask-frame columns, in its order.
ASK_COLUMNS = tuple(c.replace("bid_", "ask_") for c in BID_COLUMNS)


def _frame(
    queue: BrokerQueue, side: tuple[BrokerEntry, ...], columns: tuple[str, ...]
) -> pl.DataFrame:
    pl_ = _polars()
    n = len(side)
    types = (pl_.String, pl_.String, pl_.Int64, pl_.String, pl_.Int64, pl_.Int64, pl_.Int64)
    values = (
        [queue.code] * n,
        [queue.name] * n,
        [b.broker_id for b in side],
        [b.name for b in side],
        [b.position for b in side],
        [b.order_id for b in side],
        [b.volume for b in side],
    )
    data = dict(zip(columns, values, strict=True))
    return cast("pl.DataFrame", pl_.DataFrame(data, schema=dict(zip(columns, types, strict=True))))


def broker_queue_to_polars(queue: BrokerQueue) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(bid_frame, ask_frame)`` with the SDK's columns (bid first, as the SDK returns them)."""
    return _frame(queue, queue.bids, BID_COLUMNS), _frame(queue, queue.asks, ASK_COLUMNS)

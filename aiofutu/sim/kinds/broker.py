"""The simulator's HK broker queue (3014 reply, 3015 push), seeded.

Brokers sit at the levels of the book (``pos`` 1 is the best price) and are drawn from a fixed,
made-up roster, so a seed gives one queue and a queue agrees with the book it came from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._pb import qot_common_pb2, qot_get_broker_pb2, qot_update_broker_pb2
from ._common import rng_of, s2c_response

if TYPE_CHECKING:
    import random

    from ...enums import Market

__all__ = ("ROSTER", "broker_sides", "get_reply_body", "push_body", "s2c")

#: ``(broker id, name)`` pairs the simulator draws from (invented names, HK-style 4-digit ids).
ROSTER: tuple[tuple[int, str], ...] = tuple(
    (1000 + 37 * i, f"Sim Securities {chr(65 + i % 26)}{i // 26 or ''} Ltd") for i in range(40)
)

BrokerSides = tuple[list[qot_common_pb2.Broker], list[qot_common_pb2.Broker]]


def _side(
    levels: int, rng: random.Random, details: bool, next_id: list[int]
) -> list[qot_common_pb2.Broker]:
    out: list[qot_common_pb2.Broker] = []
    for pos in range(1, levels + 1):
        for broker_id, name in rng.sample(ROSTER, rng.randint(1, 4)):
            b = qot_common_pb2.Broker(id=broker_id, name=name, pos=pos)
            if details:
                next_id[0] += rng.randint(1, 97)
                b.orderID = next_id[0]
                b.volume = 100 * rng.randint(1, 50)
            out.append(b)
    return out


def broker_sides(
    bid_levels: int,
    ask_levels: int,
    seed: random.Random | int | str,
    *,
    details: bool = False,
) -> BrokerSides:
    """``(bids, asks)``: one to four brokers at each of the book's levels, best level first.

    ``details`` fills the HK SF fields (order id and volume).
    """
    rng = rng_of(seed, "broker")
    next_id = [rng.randrange(10**12, 10**13)]
    return _side(bid_levels, rng, details, next_id), _side(ask_levels, rng, details, next_id)


def s2c(
    market: Market, code: str, sides: BrokerSides, *, name: str | None = None
) -> qot_get_broker_pb2.S2C:
    """The S2C of both 3014 and 3015 (the same field numbers)."""
    out = qot_get_broker_pb2.S2C()
    out.security.market = market.wire
    out.security.code = code
    if name is not None:
        out.name = name
    bids, asks = sides
    out.brokerBidList.extend(bids)
    out.brokerAskList.extend(asks)
    return out


def get_reply_body(queue: qot_get_broker_pb2.S2C) -> bytes:
    """A successful 3014 reply body."""
    return s2c_response(qot_get_broker_pb2, queue)


def push_body(queue: qot_get_broker_pb2.S2C) -> bytes:
    """A 3015 push body (the same S2C field numbers)."""
    push = qot_update_broker_pb2.S2C.FromString(queue.SerializeToString())
    return s2c_response(qot_update_broker_pb2, push)

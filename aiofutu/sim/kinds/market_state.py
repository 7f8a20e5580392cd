"""The simulator's 3223 reply: each security's market state from a per-market state table.

The table is what ``sim/_hours.market_states`` computes for GetGlobalState (``marketHK`` ...),
so both interfaces agree; securities of markets it does not cover are CLOSED.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._pb import qot_get_market_state_pb2
from ...enums import Market
from ._common import s2c_response

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ("get_reply_body", "state_of")

_CLOSED = 6
_FIELD = {
    Market.HK: "marketHK",
    Market.US: "marketUS",
    Market.SH: "marketSH",
    Market.SZ: "marketSZ",
    Market.HK_FUTURE: "marketHKFuture",
}


def state_of(market: Market, states: Mapping[str, int]) -> int:
    """The QotMarketState of ``market`` in a GetGlobalState-style table."""
    field = _FIELD.get(market)
    return states.get(field, _CLOSED) if field is not None else _CLOSED


def get_reply_body(
    securities: Sequence[tuple[Market, str, str]], states: Mapping[str, int]
) -> bytes:
    """A 3223 reply body for ``(market, code, name)`` triples, in request order."""
    s2c = qot_get_market_state_pb2.S2C()
    for market, code, name in securities:
        item = s2c.marketInfoList.add()
        item.security.market = market.wire
        item.security.code = code
        item.name = name
        item.marketState = state_of(market, states)
    return s2c_response(qot_get_market_state_pb2, s2c)

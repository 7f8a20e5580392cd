"""What the kind builders share: the market's price ladder, seeded RNGs and body encoding.

Prices on the ladder are integers in 1/10000 of the currency unit, as in ``sim/_market.py``
(whose HKEX table this mirrors; one of the two should import the other once both settle).
"""

from __future__ import annotations

import random
from typing import Any

from ...enums import Market

__all__ = ("UNIT", "from_units", "rng_of", "s2c_response", "snap", "tick_size", "to_units")

UNIT = 10_000

# HKEX spread table: (upper bound of the band, tick), both in 1/10000 units.
_HK_SPREADS = (
    (2_500, 10),
    (5_000, 50),
    (100_000, 100),
    (200_000, 200),
    (1_000_000, 500),
    (2_000_000, 1_000),
    (5_000_000, 2_000),
    (10_000_000, 5_000),
    (20_000_000, 10_000),
    (50_000_000, 20_000),
    (99_950_000, 50_000),
)


def tick_size(market: Market, price: int, up: bool) -> int:
    """The tick at ``price`` (units): the band above it when moving up, below it moving down.

    HK uses the HKEX spread table; US 0.01 (0.0001 below one dollar); everything else 0.01.
    """
    if market in (Market.HK, Market.HK_FUTURE):
        for upper, tick in _HK_SPREADS:
            if price < upper or (not up and price == upper):
                return tick
        return _HK_SPREADS[-1][1]
    if market is Market.US and (price < UNIT or (not up and price == UNIT)):
        return 1
    return 100


def snap(market: Market, price: int) -> int:
    """``price`` rounded down onto the ladder (never below one tick)."""
    tick = tick_size(market, price, True)
    return max(price - price % tick, tick)


def to_units(price: float) -> int:
    return round(price * UNIT)


def from_units(price: int) -> float:
    return price / UNIT


def rng_of(seed: random.Random | int | str, *salt: object) -> random.Random:
    """A ``random.Random``: the one given, or one seeded from ``seed`` and ``salt``."""
    if isinstance(seed, random.Random):
        return seed
    return random.Random(":".join(str(part) for part in (seed, *salt)))


def s2c_response(module: Any, s2c: Any) -> bytes:
    """``module.Response`` (retType 0) carrying ``s2c``, serialised: a reply or push body."""
    rsp = module.Response(retType=0)
    rsp.s2c.MergeFromString(s2c.SerializeToString())
    return bytes(rsp.SerializeToString())

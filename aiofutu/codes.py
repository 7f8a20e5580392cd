"""Security code strings (``"HK.00700"``) to and from the wire's ``(market, code)`` pair.

The rules are the official SDK's: split at the first dot, the prefix is an exact, upper-case market
name, and the rest is the code verbatim (so ``"US..DJI"`` is market US, code ``".DJI"``).
"""

from __future__ import annotations

from .enums import MARKET_BY_PREFIX, MARKET_BY_WIRE, Market
from .errors import InvalidCode

__all__ = ("format_code", "parse_code")

_EXAMPLES = "expected MARKET.CODE, e.g. 'HK.00700', 'US.AAPL', 'SH.600000', 'US..DJI'"
_PREFIXES = ", ".join(m.value for m in Market if m is not Market.NONE)

_parsed: dict[str, tuple[Market, str]] = {}
_formatted: dict[tuple[int, str], str] = {}


def parse_code(code: object) -> tuple[Market, str]:
    """Split ``"HK.00700"`` into ``(Market.HK, "00700")``.

    Raises :class:`~aiofutu.InvalidCode` (a ``ValueError``) naming the bad value and the
    expected form.
    """
    if type(code) is str:
        hit = _parsed.get(code)
        if hit is not None:
            return hit
    if not isinstance(code, str):
        raise InvalidCode(
            f"security code must be a str, got {code!r} ({type(code).__name__}); {_EXAMPLES}"
        )
    prefix, dot, rest = code.partition(".")
    if not dot or not (prefix or rest):
        raise InvalidCode(f"invalid security code {code!r}: no market prefix; {_EXAMPLES}")
    if not rest:
        raise InvalidCode(
            f"invalid security code {code!r}: the code after {prefix + '.'!r} is empty; {_EXAMPLES}"
        )
    market = MARKET_BY_PREFIX.get(prefix)
    if market is None:
        raise InvalidCode(
            f"invalid security code {code!r}: unknown market {prefix!r} "
            f"(markets are upper-case: {_PREFIXES}); {_EXAMPLES}"
        )
    result = (market, rest)
    if len(_parsed) < 65536:
        _parsed[code] = result
    return result


def format_code(market: int | Market, code: str) -> str:
    """``(1, "00700")`` to ``"HK.00700"``; an unknown market renders as ``"N/A.<code>"``."""
    key = (int(market.wire) if isinstance(market, Market) else market, code)
    text = _formatted.get(key)
    if text is None:
        prefix = MARKET_BY_WIRE.get(key[0], Market.NONE).value
        text = f"{prefix}.{code}"
        if len(_formatted) < 65536:
            _formatted[key] = text
    return text

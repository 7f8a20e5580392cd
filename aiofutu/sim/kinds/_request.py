"""What the request handlers of the kinds without a subscription (3202, 3203) share: OpenD-style
refusals and the reading of a request's security list.

Kept apart from ``sim/_handlers.py`` (which registers these handlers) so that the kinds can be
imported without it. The wording of the refusals is the simulator's (OpenD's is undocumented);
``errCode`` values are :class:`~aiofutu.sim._scenarios.ErrCode`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._pb import keep_alive_pb2
from ...codes import format_code
from ...enums import MARKET_BY_WIRE, Market
from .._scenarios import ErrCode

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from google.protobuf.message import Message

    from ..._pb import qot_common_pb2
    from .._market import SimMarket

__all__ = ("MAX_CODES", "Result", "fail", "refuse_unknown", "security_codes")

#: Securities per 3203 request at most (OpenD's limit).
MAX_CODES = 400
#: A handler's Response and the push bodies to send after it.
Result = tuple["Message", list[bytes]]


def fail(message: str, code: ErrCode = ErrCode.INVALID_REQUEST) -> Result:
    """A failed Response (``retType=-1``); every Response shares the envelope's numbers."""
    return keep_alive_pb2.Response(retType=-1, retMsg=message, errCode=int(code)), []


def security_codes(securities: Sequence[qot_common_pb2.Security], what: str) -> list[str] | Result:
    """The code strings of a security list, or the refusal of its first malformed entry."""
    codes: list[str] = []
    for sec in securities:
        market = MARKET_BY_WIRE.get(sec.market)
        if market is None or market is Market.NONE or not sec.code:
            return fail(f"{what}: invalid security (market={sec.market}, code={sec.code!r})")
        codes.append(format_code(sec.market, sec.code))
    return codes


def refuse_unknown(market: SimMarket, codes: Iterable[str], what: str) -> Result | None:
    """The refusal of a request naming securities the simulator does not know, if any."""
    unknown = [code for code in dict.fromkeys(codes) if not market.knows(code)]
    if not unknown:
        return None
    names = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
    return fail(
        f"{what}: unknown stock{'s' if len(unknown) > 1 else ''} {names} (not in the simulator's "
        "security list; add it with SimConfig(securities=...) or aiofutu sim --codes)",
        ErrCode.UNKNOWN_SECURITY,
    )

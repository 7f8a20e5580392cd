"""What the request handlers of the kinds without a subscription (3202, 3203) share: OpenD-style
refusals and the reading of a request's security list.

Kept apart from ``sim/_handlers.py`` (which registers these handlers) so that the kinds can be
imported without it. The wording of the refusals is the simulator's (OpenD's is undocumented);
``errCode`` values are :class:`~aiofutu.sim._scenarios.ErrCode`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...codes import format_code
from ...enums import MARKET_BY_WIRE, Market
from .._replies import Result, fail
from .._replies import refuse_unknown_codes as refuse_unknown

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..._pb import qot_common_pb2

__all__ = ("MAX_CODES", "Result", "fail", "refuse_unknown", "security_codes")

#: Securities per 3203 request at most (OpenD's limit).
MAX_CODES = 400


def security_codes(securities: Sequence[qot_common_pb2.Security], what: str) -> list[str] | Result:
    """The code strings of a security list, or the refusal of its first malformed entry."""
    codes: list[str] = []
    for sec in securities:
        market = MARKET_BY_WIRE.get(sec.market)
        if market is None or market is Market.NONE or not sec.code:
            return fail(f"{what}: invalid security (market={sec.market}, code={sec.code!r})")
        codes.append(format_code(sec.market, sec.code))
    return codes

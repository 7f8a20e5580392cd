"""What every simulator request handler shares: the reply types, failure and success replies,
and the security checks. The ticker and subscription handlers (``_handlers``) and the state
kinds' handlers (``_states``) both build on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._pb import keep_alive_pb2, qot_common_pb2
from ..codes import format_code
from ..enums import MARKET_BY_WIRE, Market
from ._scenarios import ErrCode

if TYPE_CHECKING:
    from collections.abc import Iterable

    from google.protobuf.message import Message

    from ._market import SimMarket
    from ._session import Session

__all__ = (
    "Pushes",
    "RawReply",
    "Result",
    "SubKey",
    "fail",
    "ok",
    "refuse_unknown",
    "refuse_unknown_codes",
    "security_code",
)

#: A subscription: (code string such as ``"HK.00700"``, SubType wire value).
SubKey = tuple[str, int]
#: Pushes to send after a reply: (push protocol id, body).
Pushes = list[tuple[int, bytes]]


class RawReply:
    """A successful reply already encoded (the 3006 reply is assembled from cached bar bytes)."""

    retType = 0
    retMsg = ""

    def __init__(self, body: bytes, response: type[Any]) -> None:
        self.body = body
        self._response = response

    def SerializeToString(self) -> bytes:
        """The encoded Response."""
        return self.body

    def message(self) -> Any:
        """The Response as a message (for JSON bodies)."""
        return self._response.FromString(self.body)


#: The Response (or its bytes, already encoded), and the pushes to send after it (the first
#: pushes of a subscription).
Result = tuple["Message | RawReply", Pushes]


def fail(message: str, code: ErrCode = ErrCode.INVALID_REQUEST) -> Result:
    """A failed Response (``retType=-1``) with OpenD-style ``retMsg`` and ``errCode``."""
    # Every *_pb2.Response shares the envelope's field numbers, so any of them will do.
    return keep_alive_pb2.Response(retType=-1, retMsg=message, errCode=int(code)), []


def ok(response: Any) -> Result:
    """A successful Response: ``retType`` 0 and the S2C present."""
    response.retType = 0
    response.s2c.SetInParent()  # S2C present even when empty (Qot_Sub, RegQotPush)
    return response, []


def security_code(sec: qot_common_pb2.Security) -> str | None:
    """``"HK.00700"`` for a wire Security, or None when it names no valid market and code."""
    market = MARKET_BY_WIRE.get(sec.market)
    if market is None or market is Market.NONE or not sec.code:
        return None
    return format_code(sec.market, sec.code)


def refuse_unknown(session: Session, codes: Iterable[str], what: str) -> Result | None:
    """OpenD refuses a request naming a security it does not know; so does the simulator."""
    return refuse_unknown_codes(session.server.market, codes, what)


def refuse_unknown_codes(market: SimMarket, codes: Iterable[str], what: str) -> Result | None:
    """The refusal of a request naming securities ``market`` does not know, if any.

    OpenD's exact ``retMsg`` is not documented (its stock-info reply names unknown codes
    "unknown stock"): this wording, and ``errCode`` 8, are the simulator's choice.
    """
    unknown = [code for code in dict.fromkeys(codes) if not market.knows(code)]
    if not unknown:
        return None
    names = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
    return fail(
        f"{what}: unknown stock{'s' if len(unknown) > 1 else ''} {names} (not in the simulator's "
        "security list; add it with SimConfig(securities=...) or aiofutu sim --codes)",
        ErrCode.UNKNOWN_SECURITY,
    )

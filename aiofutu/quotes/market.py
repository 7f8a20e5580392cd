"""Market state of securities: ``Qot_GetMarketState`` (3223), no subscription.

The codes are de-duplicated keeping their order (as the SDK does), at most 400 per request.
polars form: :func:`market_states_to_polars` gives ``get_market_state``'s columns
``code, stock_name, market_state`` with the SDK's state strings (``N/A`` for numbers it does not
name). 3202 (static info) is not here yet. :class:`MarketStateAPI` is the client's verbs: more
than 400 codes are split into requests of 400, sent one after another (OpenD allows 10 per 30 s;
the client's limiter keeps that).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from .._pb import qot_get_market_state_pb2
from .._protocol import decode_response
from ..codes import format_code, parse_code
from ..enums import ProtoId, _WireEnum
from ..errors import ConfigurationError
from ..frames import _polars
from ..streams import _import_polars
from ._core import as_codes, check_timeout
from ._model import TrustedModel, trusted

if TYPE_CHECKING:
    from collections.abc import Iterable

    import polars as pl

    from ._core import Core

__all__ = (
    "MARKET_STATE_COLUMNS",
    "MAX_CODES",
    "MarketInfo",
    "MarketState",
    "MarketStateAPI",
    "get_market_state_request",
    "market_states_from_s2c",
    "market_states_to_polars",
)

#: Codes per 3223 request at most.
MAX_CODES = 400


class MarketState(_WireEnum):
    """``QotMarketState`` with the SDK's strings; numbers it does not name decode to ``NA``."""

    NONE = ("NONE", 0)
    AUCTION = ("AUCTION", 1)
    WAITING_OPEN = ("WAITING_OPEN", 2)
    MORNING = ("MORNING", 3)
    REST = ("REST", 4)
    AFTERNOON = ("AFTERNOON", 5)
    CLOSED = ("CLOSED", 6)
    PRE_MARKET_BEGIN = ("PRE_MARKET_BEGIN", 8)
    PRE_MARKET_END = ("PRE_MARKET_END", 9)
    AFTER_HOURS_BEGIN = ("AFTER_HOURS_BEGIN", 10)
    AFTER_HOURS_END = ("AFTER_HOURS_END", 11)
    NIGHT_OPEN = ("NIGHT_OPEN", 13)
    NIGHT_END = ("NIGHT_END", 14)
    FUTURE_DAY_OPEN = ("FUTURE_DAY_OPEN", 15)
    FUTURE_DAY_BREAK = ("FUTURE_DAY_BREAK", 16)
    FUTURE_DAY_CLOSE = ("FUTURE_DAY_CLOSE", 17)
    FUTURE_DAY_WAIT_OPEN = ("FUTURE_DAY_WAIT_OPEN", 18)
    HK_CAS = ("HK_CAS", 19)
    FUTURE_NIGHT_WAIT = ("FUTURE_NIGHT_WAIT", 20)
    FUTURE_AFTERNOON = ("FUTURE_AFTERNOON", 21)
    FUTURE_SWITCH_DATE = ("FUTURE_SWITCH_DATE", 22)
    FUTURE_OPEN = ("FUTURE_OPEN", 23)
    FUTURE_BREAK = ("FUTURE_BREAK", 24)
    FUTURE_BREAK_OVER = ("FUTURE_BREAK_OVER", 25)
    FUTURE_CLOSE = ("FUTURE_CLOSE", 26)
    ASHARE_AFTER_HOURS_WAIT = ("ASHARE_AFTER_HOURS_WAIT", 27)
    ASHARE_AFTER_HOURS_BEGIN = ("ASHARE_AFTER_HOURS_BEGIN", 28)
    ASHARE_AFTER_HOURS_END = ("ASHARE_AFTER_HOURS_END", 29)
    NIGHT = ("NIGHT", 32)
    TRADE_AT_LAST = ("TRADE_AT_LAST", 35)
    OVERNIGHT = ("OVERNIGHT", 37)
    NA = ("N/A", -1)


_BY_WIRE = {m.wire: m for m in MarketState}


class MarketInfo(TrustedModel):
    """The market state of one security."""

    code: str
    name: str
    state: MarketState
    state_number: int


def market_states_from_s2c(s2c: Any) -> tuple[MarketInfo, ...]:
    """The models of a 3223 reply's S2C, in the server's order."""
    out = []
    for item in s2c.marketInfoList:
        number = item.marketState
        out.append(
            trusted(
                MarketInfo,
                {
                    "code": format_code(item.security.market, item.security.code),
                    "name": item.name,
                    "state": _BY_WIRE.get(number, MarketState.NA),
                    "state_number": number,
                },
            )
        )
    return tuple(out)


def get_market_state_request(codes: Iterable[str] | str) -> qot_get_market_state_pb2.Request:
    """The 3223 request: ``codes`` (a list or a comma-separated string), de-duplicated."""
    items = codes.split(",") if isinstance(codes, str) else list(codes)
    unique = list(dict.fromkeys(items))
    if not unique:
        raise ConfigurationError("get_market_state needs at least one code")
    if len(unique) > MAX_CODES:
        raise ConfigurationError(f"at most {MAX_CODES} codes per market-state request")
    req = qot_get_market_state_pb2.Request()
    for code in unique:
        market, local = parse_code(code)
        sec = req.c2s.securityList.add()
        sec.market = market.wire
        sec.code = local
    req.c2s.header.securityFirm = 0
    return req


#: ``get_market_state``'s columns.
MARKET_STATE_COLUMNS = ("code", "stock_name", "market_state")


def market_states_to_polars(infos: Iterable[MarketInfo]) -> pl.DataFrame:
    """``get_market_state``'s frame."""
    pl_ = _polars()
    rows = list(infos)
    data = {
        "code": [i.code for i in rows],
        "stock_name": [i.name for i in rows],
        "market_state": [str(i.state) for i in rows],
    }
    return cast("pl.DataFrame", pl_.DataFrame(data, schema=dict.fromkeys(data, pl_.String)))


_PROTO = int(ProtoId.QOT_GET_MARKET_STATE)


class MarketStateAPI:
    """``get_market_state`` and ``get_market_state_frame``."""

    async def get_market_state(
        self: Core, codes: str | Iterable[str], *, timeout: float | None = None
    ) -> list[MarketInfo]:
        """The market state of each code (3223), in the order given, duplicates dropped.

        ``codes`` is a code, a comma-separated string (as the SDK accepts) or an iterable. More
        than 400 codes take one request per 400 (each counts against OpenD's 10 per 30 s).
        """
        self._check_open()
        check_timeout(timeout)
        if isinstance(codes, str):
            codes = [c.strip() for c in codes.split(",") if c.strip()]
        unique = as_codes(codes)
        out: list[MarketInfo] = []
        for i in range(0, len(unique), MAX_CODES):
            req = get_market_state_request(unique[i : i + MAX_CODES])
            frame = await self._request_frame(_PROTO, req, timeout)
            resp = decode_response(
                qot_get_market_state_pb2.Response, frame.body, _PROTO, frame.serial
            )
            out.extend(market_states_from_s2c(resp.s2c))
        return out

    async def get_market_state_frame(
        self: Core, codes: str | Iterable[str], *, timeout: float | None = None
    ) -> pl.DataFrame:
        """Like :meth:`get_market_state`, as the SDK's frame: ``code, stock_name, market_state``."""
        await _import_polars()
        infos = await MarketStateAPI.get_market_state(self, codes, timeout=timeout)
        return market_states_to_polars(infos)

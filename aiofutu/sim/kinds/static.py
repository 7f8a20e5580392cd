"""The simulator's static facts of a security (3202 replies, and the snapshot's basic fields).

The security list (``sim/_universe.py``) gives name, lot and reference price; the rest is the
simulator's, fixed per code and seed so that every run and every interface agree:

* **type**: HK futures are FUTURE; US codes starting with ``.``, HK ``8xxxxx``, SH ``000xxx``
  and SZ ``399xxx`` are IDX; a name with "ETF", "Fund" or "Trust" (not "REIT") is an ETF; the
  rest are STOCK;
* **listing date**: a weekday between 1990 and 2020 drawn from the seed and the code;
* **id**: 48 bits of a hash of the code; **exchange**: by market (US: NYSE or NASDAQ, drawn).

3202 by market and type lists every security of the security list with that market and type;
by code, an unknown code gets OpenD's placeholder row ("unknown stock", delisted), not an error.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from typing import TYPE_CHECKING

from ..._pb import qot_common_pb2, qot_get_static_info_pb2
from ...codes import parse_code
from ...enums import MARKET_BY_WIRE, Market
from ._common import rng_of, s2c_response
from ._request import Result, fail, security_codes

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .._session import Session

__all__ = (
    "ETF",
    "FUTURE",
    "IDX",
    "STOCK",
    "Facts",
    "facts_of",
    "get_reply_body",
    "handle",
    "s2c",
    "static_info",
    "unknown_info",
)

STOCK, ETF, IDX, DRVT, FUTURE = 3, 4, 6, 8, 10
_EXCH = {Market.HK: 1, Market.HK_FUTURE: 3, Market.SH: 14, Market.SZ: 15}
_US_EXCH = (4, 5)  # NYSE, NASDAQ
_FIRST_DAY = _dt.date(1990, 1, 2)
_DAYS = (_dt.date(2020, 12, 31) - _FIRST_DAY).days


class Facts:
    """The static facts of one simulated security."""

    __slots__ = (
        "code",
        "exch_type",
        "list_time",
        "local",
        "lot",
        "market",
        "name",
        "sec_id",
        "sec_type",
    )

    def __init__(self, code: str, name: str, lot: int, seed: int | str) -> None:
        market, local = parse_code(code)
        self.code = code
        self.market = market
        self.local = local
        self.name = name
        self.lot = lot
        self.sec_type = security_type(market, local, name)
        rng = rng_of(seed, code, "static")
        day = _FIRST_DAY + _dt.timedelta(days=rng.randrange(_DAYS))
        while day.weekday() >= 5:
            day -= _dt.timedelta(days=1)
        self.list_time = day.isoformat()
        self.sec_id = int.from_bytes(hashlib.blake2b(code.encode(), digest_size=6).digest(), "big")
        self.exch_type = rng.choice(_US_EXCH) if market is Market.US else _EXCH.get(market)

    @property
    def list_timestamp(self) -> float:
        """Midnight UTC of the listing date, in Unix seconds."""
        day = _dt.date.fromisoformat(self.list_time)
        return _dt.datetime(day.year, day.month, day.day, tzinfo=_dt.timezone.utc).timestamp()


def security_type(market: Market, local: str, name: str) -> int:
    """The simulator's SecurityType of a security (see the module docstring)."""
    if market is Market.HK_FUTURE:
        return FUTURE
    if (
        (market is Market.US and local.startswith("."))
        or (market is Market.HK and len(local) == 6 and local.startswith("8"))
        or (market is Market.SH and local.startswith("000"))
        or (market is Market.SZ and local.startswith("399"))
    ):
        return IDX
    words = name.replace("&", " ").split()
    if "REIT" not in words and any(w in ("ETF", "Fund", "Trust") for w in words):
        return ETF
    return STOCK


def facts_of(code: str, name: str, lot: int, seed: int | str) -> Facts:
    """The :class:`Facts` of ``code`` (cheap; build on demand)."""
    return Facts(code, name, lot, seed)


def static_info(facts: Facts) -> qot_get_static_info_pb2.SecurityStaticInfo:
    """One ``SecurityStaticInfo`` (futures carry their ex-data; the sim has no options)."""
    info = qot_get_static_info_pb2.SecurityStaticInfo()
    b = info.basic
    b.security.market = facts.market.wire
    b.security.code = facts.local
    b.id = facts.sec_id
    b.lotSize = facts.lot
    b.secType = facts.sec_type
    b.name = facts.name
    b.listTime = facts.list_time
    b.delisting = False
    b.listTimestamp = facts.list_timestamp
    if facts.exch_type is not None:
        b.exchType = facts.exch_type
    if facts.sec_type == FUTURE:
        f = info.futureExData
        f.lastTradeTime = ""
        f.isMainContract = True
    return info


def unknown_info(security: qot_common_pb2.Security) -> qot_get_static_info_pb2.SecurityStaticInfo:
    """OpenD's placeholder row for a code it does not know."""
    info = qot_get_static_info_pb2.SecurityStaticInfo()
    b = info.basic
    b.security.CopyFrom(security)
    b.id = 0
    b.lotSize = 0
    b.secType = 0
    b.name = "unknown stock"
    b.listTime = ""
    b.delisting = True
    return info


def s2c(infos: Iterable[qot_get_static_info_pb2.SecurityStaticInfo]) -> qot_get_static_info_pb2.S2C:
    """The 3202 S2C of ``infos``, in order."""
    out = qot_get_static_info_pb2.S2C()
    out.staticInfoList.extend(infos)
    return out


def get_reply_body(infos: Iterable[qot_get_static_info_pb2.SecurityStaticInfo]) -> bytes:
    """A successful 3202 reply body."""
    return s2c_response(qot_get_static_info_pb2, s2c(infos))


# ------------------------------------------------------------------------------ the handler


def handle(session: Session, c2s: qot_get_static_info_pb2.C2S) -> Result:
    """3202: by code list (unknown codes get the placeholder row), else by market and type."""
    server = session.server
    market = server.market
    seed = server.config.seed
    infos = []
    if c2s.securityList:
        codes = security_codes(c2s.securityList, "Qot_GetStaticInfo")
        if isinstance(codes, tuple):
            return codes
        for code, sec in zip(codes, c2s.securityList, strict=True):
            if market.knows(code):
                state = market.security(code)
                infos.append(static_info(facts_of(code, state.name, state.lot, seed)))
            else:
                infos.append(unknown_info(sec))
    else:
        wanted = MARKET_BY_WIRE.get(c2s.market)
        if wanted is None or wanted is Market.NONE:
            return fail(f"Qot_GetStaticInfo: unknown market {c2s.market}")
        if c2s.secType == DRVT:
            return fail("Qot_GetStaticInfo: options (secType 8) cannot be listed market-wide")
        if not 1 <= c2s.secType <= 12:
            return fail(f"Qot_GetStaticInfo: unknown security type {c2s.secType}")
        for code in list(market.universe):
            m, _ = parse_code(code)
            if m is not wanted:
                continue
            state = market.security(code)
            facts = facts_of(code, state.name, state.lot, seed)
            if facts.sec_type == c2s.secType:
                infos.append(static_info(facts))
    response = qot_get_static_info_pb2.Response(retType=0)
    response.s2c.SetInParent()
    response.s2c.staticInfoList.extend(infos)
    return response, []

"""The simulator's answers to history K-lines (3103), their quota (3104) and market state (3223).

History bars come from :mod:`aiofutu.sim.kinds.history` (seeded, weekdays and sessions only,
any range), one page of at most ``maxAckKLNum`` bars per reply with an opaque key to the next.
A first request for a security costs a unit of the history quota (re-requesting it is free);
when the quota is used up, a new security is refused with the time its oldest unit frees up.
Only the bar fields asked for in ``needKLFieldsFlag`` are sent. The rate limits are applied
before any handler runs (:mod:`._limits`).
"""

from __future__ import annotations

import datetime as _dt
import time
from typing import TYPE_CHECKING, Any

from .._pb import (
    keep_alive_pb2,
    qot_common_pb2,
    qot_get_market_state_pb2,
    qot_request_history_kl_pb2,
    qot_request_history_kl_quota_pb2,
)
from ..codes import format_code
from ..enums import MARKET_BY_WIRE, Market
from ._hours import UTC8
from ._market import market_states
from ._scenarios import ErrCode
from .kinds.history import BadPageKey, Bar, history_page
from .kinds.market_state import state_of

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from ._session import Session

__all__ = ("HISTORY_HANDLERS",)

_FMT = "%Y-%m-%d %H:%M:%S"
_KL_TYPES = frozenset(range(1, 16))
_MAX_CODES = 400
Result = tuple["Message", list[bytes]]

# needKLFieldsFlag bit -> (KLine field, Bar attribute)
_FIELDS = (
    (1, "highPrice", "high"),
    (2, "openPrice", "open"),
    (4, "lowPrice", "low"),
    (8, "closePrice", "close"),
    (16, "lastClosePrice", "last_close"),
    (32, "volume", "volume"),
    (64, "turnover", "turnover"),
)
_CHANGE_RATE = 512


def _fail(message: str, code: ErrCode = ErrCode.INVALID_REQUEST) -> Result:
    return keep_alive_pb2.Response(retType=-1, retMsg=message, errCode=int(code)), []


def _security(session: Session, sec: Any, what: str) -> tuple[Market, str] | Result:
    """The (market, code string) of a request's security, or the refusal."""
    market = MARKET_BY_WIRE.get(sec.market)
    if market is None or market is Market.NONE or not sec.code:
        return _fail(f"{what}: invalid security (market={sec.market}, code={sec.code!r})")
    code = format_code(sec.market, sec.code)
    if not session.server.market.knows(code):
        return _fail(
            f"{what}: unknown stock {code} (not in the simulator's security list; add it with "
            "SimConfig(securities=...) or aiofutu sim --codes)",
            ErrCode.UNKNOWN_SECURITY,
        )
    return market, code


def _bad_time(value: str) -> bool:
    try:
        _dt.datetime.strptime(value, _FMT)
    except ValueError:
        return True
    return False


#: Replies already made, by (seed, request): the same request gets the same page (the bars
#: are a function of the seed), so a client paging a year twice costs the simulator once.
_PAGES: dict[tuple[int, bytes], Message] = {}
_PAGES_MAX = 512
#: A bar as an encoded ``klList`` entry (tag, length, ``Qot_Common.KLine``), by (query prefix,
#: bar time); bounded.
_ENCODED: dict[tuple[object, str], bytes] = {}
_ENCODED_MAX = 400_000


def _encode(b: Bar, flag: int) -> bytes:
    k = qot_common_pb2.KLine(time=b.time, isBlank=False)
    for bit, f, a in _FIELDS:
        if flag & bit:
            setattr(k, f, getattr(b, a))
    if flag & _CHANGE_RATE and b.last_close:
        k.changeRate = round((b.close - b.last_close) * 100 / b.last_close, 6)
    data = k.SerializeToString()
    return b"\x12" + _varint(len(data)) + data


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _kl_list(prefix: object, bars: list[Bar], flag: int) -> bytes:
    """``klList`` (S2C field 2) of ``bars``, encoded; ``prefix`` names the series they are of."""
    cache = _ENCODED
    if len(cache) > _ENCODED_MAX:
        cache.clear()
    parts = []
    for b in bars:
        key = (prefix, b.time)
        data = cache.get(key)
        if data is None:
            data = cache[key] = _encode(b, flag)
        parts.append(data)
    return b"".join(parts)


def _history_kl(session: Session, c2s: qot_request_history_kl_pb2.C2S) -> Result:
    what = "Qot_RequestHistoryKL"
    found = _security(session, c2s.security, what)
    if not isinstance(found[0], Market):
        return found
    market, code = found
    if c2s.klType not in _KL_TYPES:
        return _fail(f"{what}: unknown klType {c2s.klType}")
    if c2s.rehabType not in (0, 1, 2):
        return _fail(f"{what}: unknown rehabType {c2s.rehabType}")
    for name, value in (("beginTime", c2s.beginTime), ("endTime", c2s.endTime)):
        if _bad_time(value):
            return _fail(f"{what}: {name} {value!r} is not 'YYYY-MM-DD HH:MM:SS'")
    if c2s.beginTime > c2s.endTime:
        return _fail(f"{what}: beginTime {c2s.beginTime} is after endTime {c2s.endTime}")
    server = session.server
    book = server.limits.quota
    if not book.charge(market, c2s.security.code, time.time()) and server.config.rate_limits:
        return _quota_refusal(session, code)
    cache_key = (server.config.seed, c2s.SerializePartialToString())
    cached = _PAGES.get(cache_key)
    if cached is not None:
        return cached, []
    key = c2s.nextReqKey if c2s.HasField("nextReqKey") else None
    count = c2s.maxAckKLNum if c2s.HasField("maxAckKLNum") and c2s.maxAckKLNum > 0 else None
    try:
        bars, next_key = history_page(
            server.config.seed,
            market,
            c2s.security.code,
            c2s.klType,
            c2s.rehabType,
            c2s.beginTime,
            c2s.endTime,
            count,
            key,
        )
    except BadPageKey:
        return _fail(f"{what}: nextReqKey does not belong to this query (another code or range?)")
    flag = c2s.needKLFieldsFlag if c2s.HasField("needKLFieldsFlag") else 1023
    head = qot_request_history_kl_pb2.S2C()
    head.security.CopyFrom(c2s.security)
    head.name = server.market.security(code).name
    if next_key is not None:
        head.nextReqKey = next_key
    series = (server.config.seed, c2s.security.market, c2s.security.code, c2s.klType, flag)
    s2c = head.SerializePartialToString() + _kl_list(series, bars, flag)  # any field order
    body = b"\x08\x00" + b"\x22" + _varint(len(s2c)) + s2c  # retType=0, s2c
    response = qot_request_history_kl_pb2.Response.FromString(body)
    if len(_PAGES) >= _PAGES_MAX:
        del _PAGES[next(iter(_PAGES))]
    _PAGES[cache_key] = response
    return response, []


def _quota_refusal(session: Session, code: str) -> Result:
    book = session.server.limits.quota
    now = time.time()
    oldest = min((t for _, _, t in book.detail(now)), default=now)
    frees = _dt.datetime.fromtimestamp(oldest + book.window_days * 86_400, UTC8)
    return _fail(
        f"history K-line quota exhausted: {book.used(now)} of {book.total} securities used in "
        f"the last {book.window_days:g} days, {code} would need one more; the next unit frees "
        f"up at {frees:{_FMT}} (UTC+8)",
        ErrCode.HISTORY_QUOTA,
    )


def _history_quota(session: Session, c2s: qot_request_history_kl_quota_pb2.C2S) -> Result:
    server = session.server
    book = server.limits.quota
    now = time.time()
    response = qot_request_history_kl_quota_pb2.Response(retType=0)
    s2c = response.s2c
    used = book.used(now)
    s2c.usedQuota = used
    s2c.remainQuota = max(book.total - used, 0)
    if c2s.bGetDetail:
        for m, c, t in book.detail(now):
            item = s2c.detailList.add()
            item.security.market = m
            item.security.code = c
            item.name = server.market.security(format_code(m, c)).name
            item.requestTime = _dt.datetime.fromtimestamp(t, UTC8).strftime(_FMT)
            item.requestTimeStamp = int(t)
    return response, []


def _market_state(session: Session, c2s: qot_get_market_state_pb2.C2S) -> Result:
    what = "Qot_GetMarketState"
    if not c2s.securityList:
        return _fail(f"{what}: securityList is empty")
    if len(c2s.securityList) > _MAX_CODES:
        return _fail(f"{what}: at most {_MAX_CODES} securities per request")
    server = session.server
    states = market_states(time.time(), server.faults.market_hours)
    response = qot_get_market_state_pb2.Response(retType=0)
    out = response.s2c.marketInfoList
    for sec in c2s.securityList:
        found = _security(session, sec, what)
        if not isinstance(found[0], Market):
            return found
        market, code = found
        item = out.add()
        item.security.CopyFrom(sec)
        item.name = server.market.security(code).name
        item.marketState = state_of(market, states)
    response.s2c.SetInParent()
    return response, []


HISTORY_HANDLERS: dict[int, tuple[type[Message], Any]] = {
    3103: (qot_request_history_kl_pb2.Request, _history_kl),
    3104: (qot_request_history_kl_quota_pb2.Request, _history_quota),
    3223: (qot_get_market_state_pb2.Request, _market_state),
}

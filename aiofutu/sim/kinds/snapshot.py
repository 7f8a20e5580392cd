"""The simulator's 3203 snapshot, built from the security's basic quote and static facts.

The basic block copies the quote folded from the tape (:func:`.basic.basic_qot`): last price,
open/high/low, previous close, volume, turnover, turnover rate, amplitude and update time are
the quote's, so a snapshot agrees with the tape and with 3004. Lot, name, type and listing date
are the static facts of :mod:`.static`. The rest (bid/ask, 52-week range, the type blocks:
equity figures for stocks, breadth for indices, fund figures for ETFs, the futures block) is
drawn from the seed and the code, and scaled by the last price, so it is plausible and stable.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from ..._pb import qot_common_pb2, qot_get_security_snapshot_pb2
from ._common import rng_of, s2c_response
from ._request import MAX_CODES, Result, fail, refuse_unknown, security_codes
from .basic import DayFold, basic_qot
from .static import ETF, FUTURE, IDX, STOCK, facts_of

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .._market import SecurityState
    from .._session import Session
    from .static import Facts

__all__ = ("get_reply_body", "handle", "quote_of", "s2c", "snapshot", "snapshot_of")

Snapshot = qot_get_security_snapshot_pb2.Snapshot


def snapshot(
    quote: qot_common_pb2.BasicQot,
    facts: Facts,
    seed: int | str,
    *,
    hp_volume: bool = False,
) -> qot_get_security_snapshot_pb2.Snapshot:
    """The snapshot of one security from its current ``quote`` and its static ``facts``."""
    snap = Snapshot()
    b = snap.basic
    b.security.CopyFrom(quote.security)
    b.name = facts.name
    b.type = facts.sec_type
    b.isSuspend = quote.isSuspended
    b.listTime = facts.list_time
    b.listTimestamp = facts.list_timestamp
    b.lotSize = facts.lot
    b.priceSpread = quote.priceSpread
    b.updateTime = quote.updateTime
    if quote.HasField("updateTimestamp"):
        b.updateTimestamp = quote.updateTimestamp
    b.highPrice, b.openPrice, b.lowPrice = quote.highPrice, quote.openPrice, quote.lowPrice
    b.lastClosePrice = quote.lastClosePrice
    b.curPrice = last = quote.curPrice
    b.volume = quote.volume
    if quote.HasField("hpVolume"):
        b.hpVolume = quote.hpVolume
    elif hp_volume:
        b.hpVolume = float(quote.volume)
    b.turnover = quote.turnover
    b.turnoverRate = quote.turnoverRate
    b.amplitude = quote.amplitude
    b.avgPrice = round(quote.turnover / quote.volume, 4) if quote.volume else last
    b.secStatus = quote.secStatus if quote.HasField("secStatus") else 1
    rng = rng_of(seed, facts.code, "snapshot")
    spread = quote.priceSpread
    b.bidPrice = last
    b.askPrice = round(last + spread, 4)
    b.bidVol = rng.randrange(1, 50) * facts.lot
    b.askVol = rng.randrange(1, 50) * facts.lot
    b.bidAskRatio = round((b.bidVol - b.askVol) * 100 / (b.bidVol + b.askVol), 4)
    b.volumeRatio = round(rng.uniform(0.5, 2.0), 2)
    top = max(quote.highPrice, last)
    bottom = min(quote.lowPrice, last) if quote.lowPrice else last
    b.highest52WeeksPrice = round(top * rng.uniform(1.0, 1.5), 2)
    b.lowest52WeeksPrice = round(bottom * rng.uniform(0.5, 1.0), 2)
    b.highestHistoryPrice = round(b.highest52WeeksPrice * rng.uniform(1.0, 2.0), 2)
    b.lowestHistoryPrice = round(b.lowest52WeeksPrice * rng.uniform(0.1, 1.0), 2)
    b.closePrice5Minute = last
    kind = facts.sec_type
    if kind == STOCK:
        e = snap.equityExData
        shares = rng.randrange(10**8, 10**10)
        e.issuedShares = shares
        e.issuedMarketVal = round(shares * last, 2)
        e.outstandingShares = out = shares - shares // rng.randrange(5, 50)
        e.outstandingMarketVal = round(out * last, 2)
        eps = round(last / rng.uniform(5, 40), 4)
        nav = round(last / rng.uniform(0.5, 8), 4)
        e.earningsPershare, e.netAssetPershare = eps, nav
        e.netProfit = round(eps * shares, 2)
        e.netAsset = round(nav * shares, 2)
        e.peRate = round(last / eps, 4) if eps else 0.0
        e.peTTMRate = e.peRate
        e.pbRate = round(last / nav, 4) if nav else 0.0
        e.eyRate = round(100 / e.peRate, 4) if e.peRate else 0.0
        e.dividendTTM = round(eps * rng.uniform(0, 0.5), 4)
        e.dividendRatioTTM = round(e.dividendTTM * 100 / last, 4) if last else 0.0
    elif kind == IDX:
        i = snap.indexExData
        i.raiseCount, i.fallCount = rng.randrange(200), rng.randrange(200)
        i.equalCount = rng.randrange(20)
    elif kind == ETF:
        t = snap.trustExData
        t.dividendYield = round(rng.uniform(0, 4), 4)
        t.outstandingUnits = units = rng.randrange(10**7, 10**9)
        t.netAssetValue = nav = round(last * rng.uniform(0.99, 1.01), 4)
        t.aum = round(units * nav, 2)
        t.premium = round((last - nav) * 100 / nav, 4) if nav else 0.0
        t.assetClass = 1  # STOCK
    elif kind == FUTURE:
        f = snap.futureExData
        f.lastSettlePrice = quote.lastClosePrice
        f.position = rng.randrange(10**4, 10**6)
        f.positionChange = rng.randrange(-(10**4), 10**4)
        f.lastTradeTime = ""
        f.isMainContract = True
    return snap


def s2c(snapshots: Iterable[Snapshot]) -> qot_get_security_snapshot_pb2.S2C:
    """The 3203 S2C of ``snapshots``, in order."""
    out = qot_get_security_snapshot_pb2.S2C()
    out.snapshotList.extend(snapshots)
    return out


def get_reply_body(snapshots: Iterable[Snapshot]) -> bytes:
    """A successful 3203 reply body."""
    return s2c_response(qot_get_security_snapshot_pb2, s2c(snapshots))


# ------------------------------------------------------------------------------ the handler


#: per security: (tape version, its snapshot, the snapshot as an S2C list entry); rebuilt only
#: after new ticks
_CACHE: weakref.WeakKeyDictionary[SecurityState, tuple[tuple[Any, ...], Snapshot, bytes]] = (
    weakref.WeakKeyDictionary()
)


def _version(sec: SecurityState) -> tuple[Any, ...]:
    latest = sec.latest()
    if latest is None:
        return (sec.counter,)
    return (sec.counter, latest.sequence, latest.time, latest.price)


def _cached(sec: SecurityState, seed: int | str) -> tuple[tuple[Any, ...], Snapshot, bytes]:
    version = _version(sec)
    cached = _CACHE.get(sec)
    if cached is None or cached[0] != version:
        snap = snapshot(quote_of(sec), facts_of(sec.code, sec.name, sec.lot, seed), seed)
        body = snap.SerializeToString()
        entry = b"\x0a" + _varint(len(body)) + body  # S2C field 1 (snapshotList), length-delimited
        cached = _CACHE[sec] = (version, snap, entry)
    return cached


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def snapshot_of(sec: SecurityState, seed: int | str) -> Snapshot:
    """The current snapshot of ``sec`` (cached until its tape changes)."""
    return _cached(sec, seed)[1]


def quote_of(sec: SecurityState) -> qot_common_pb2.BasicQot:
    """The basic quote of ``sec`` now: the fold of its tape's ticks of the last tick's date."""
    ticks = sec.recent()
    date = ticks[-1].time[:10] if ticks else ""
    fold = DayFold.from_ticks(t for t in ticks if t.time[:10] == date)
    q = basic_qot(sec.market, sec.security.code, fold, prev_close=sec.prev_close, name=sec.name)
    if sec.hp_volume:
        q.hpVolume = float(fold.volume)
    return q


def handle(session: Session, c2s: qot_get_security_snapshot_pb2.C2S) -> Result:
    """3203: the snapshot of every requested security, in request order (duplicates once).

    OpenD's refusals: an empty list, more than 400 codes, a malformed or unknown security.
    """
    if not c2s.securityList:
        return fail("Qot_GetSecuritySnapshot: securityList is empty")
    if len(c2s.securityList) > MAX_CODES:
        return fail(
            f"Qot_GetSecuritySnapshot: too many securities ({len(c2s.securityList)}); "
            f"at most {MAX_CODES} per request"
        )
    codes = security_codes(c2s.securityList, "Qot_GetSecuritySnapshot")
    if isinstance(codes, tuple):
        return codes
    server = session.server
    market = server.market
    refused = refuse_unknown(market, codes, "Qot_GetSecuritySnapshot")
    if refused is not None:
        return refused
    seed = server.config.seed
    entries = [_cached(market.security(code), seed)[2] for code in dict.fromkeys(codes)]
    response = qot_get_security_snapshot_pb2.Response(retType=0)
    response.s2c.MergeFromString(b"".join(entries))  # faster than copying 400 messages in
    return response, []

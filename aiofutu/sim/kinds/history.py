"""The simulator's history K-lines (3103) and quota (3104): deterministic bars from a seed.

Daily bars are a seeded random walk from 2000-01-03, one per weekday (no holidays); minute bars
are a seeded walk inside each weekday's sessions, starting from that day's open (so a day's
minute bars and its day bar are not forced to agree). Longer and multi-minute periods fold the
shorter ones with the bar times of :mod:`.kline`. Same seed, code and period: same bars, for any
range.

Paging: :func:`history_page` returns at most ``max_count`` bars and an opaque key naming the
query and the next bar; a key from another query is a :class:`BadPageKey`. The pure
:class:`FirstPageLimiter` (60 first pages per 30 s, sliding) and :class:`QuotaBook` (one unit
per distinct security per window) model the server's limits.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..._pb import qot_common_pb2, qot_request_history_kl_pb2, qot_request_history_kl_quota_pb2
from ...enums import Market
from ._common import rng_of, s2c_response
from .kline import MINUTES, bar_time, minute_bar_end

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = (
    "EPOCH",
    "BadPageKey",
    "Bar",
    "FirstPageLimiter",
    "QuotaBook",
    "history_bars",
    "history_page",
    "page_reply_body",
    "quota_reply_body",
    "sessions",
)

EPOCH = _dt.date(2000, 1, 3)  # a Monday
_FMT = "%Y-%m-%d %H:%M:%S"
_DAY = 2


class BadPageKey(ValueError):
    """A page key that does not belong to the query it was sent with."""


@dataclass(frozen=True, slots=True)
class Bar:
    """One generated bar (prices rounded to 0.01)."""

    time: str
    open: float
    high: float
    low: float
    close: float
    volume: int
    turnover: float
    last_close: float

    def to_pb(self) -> qot_common_pb2.KLine:
        """The bar as a ``Qot_Common.KLine``."""
        return qot_common_pb2.KLine(
            time=self.time,
            isBlank=False,
            openPrice=self.open,
            highPrice=self.high,
            lowPrice=self.low,
            closePrice=self.close,
            lastClosePrice=self.last_close,
            volume=self.volume,
            turnover=self.turnover,
            changeRate=round((self.close - self.last_close) * 100 / self.last_close, 6)
            if self.last_close
            else 0.0,
        )


def sessions(market: Market) -> tuple[tuple[int, int], ...]:
    """Regular sessions as (start, end) minutes from local midnight."""
    if market in (Market.SH, Market.SZ):
        return ((570, 690), (780, 900))
    if market is Market.US:
        return ((570, 960),)
    return ((570, 720), (780, 960))  # HK and the rest


_DAILY: dict[tuple[str, str], list[tuple[float, float]]] = {}


def _base(seed: object, code: str) -> float:
    return round(rng_of(str(seed), code, "base").uniform(20, 400), 2)


def _day_open_close(seed: object, code: str, day: _dt.date) -> tuple[float, float]:
    """(open, close) of a weekday, from the walk since :data:`EPOCH` (memoised)."""
    key = (str(seed), code)
    path = _DAILY.setdefault(key, [])
    index = _weekday_index(day)
    last = path[-1][1] if path else _base(seed, code)
    while len(path) <= index:
        rng = rng_of(str(seed), code, len(path))
        o = round(max(last * math.exp(rng.gauss(0, 0.004)), 0.01), 2)
        c = round(max(o * math.exp(rng.gauss(0, 0.015)), 0.01), 2)
        path.append((o, c))
        last = c
    return path[index]


def _weekday_index(day: _dt.date) -> int:
    days = (day - EPOCH).days
    weeks, rest = divmod(days, 7)
    return weeks * 5 + min(rest, 5)


def _weekdays(begin: _dt.date, end: _dt.date) -> Iterator[_dt.date]:
    d = max(begin, EPOCH)
    one = _dt.timedelta(days=1)
    while d <= end:
        if d.weekday() < 5:
            yield d
        d += one


def _daily_bars(seed: object, code: str, begin: _dt.date, end: _dt.date) -> Iterator[Bar]:
    for d in _weekdays(begin, end):
        o, c = _day_open_close(seed, code, d)
        i = _weekday_index(d)
        back = _dt.timedelta(days=3 if d.weekday() == 0 else 1)
        prev = _day_open_close(seed, code, d - back)[1] if i else _base(seed, code)
        rng = rng_of(str(seed), code, "hl", i)
        hi = round(max(o, c) * (1 + abs(rng.gauss(0, 0.006))), 2)
        lo = round(min(o, c) * (1 - abs(rng.gauss(0, 0.006))), 2)
        vol = rng.randint(1_000, 50_000) * 100
        yield Bar(f"{d:%Y-%m-%d} 00:00:00", o, hi, lo, c, vol, round(vol * (o + c) / 2, 2), prev)


#: The one-minute bars of recently served days (generation is the simulator's main cost when a
#: client pages through a year of minutes); bounded, oldest day out first.
_MINUTE_DAYS: dict[tuple[str, int, str, _dt.date], tuple[Bar, ...]] = {}
_MINUTE_DAYS_MAX = 800


def _minute_bars(seed: object, market: Market, code: str, day: _dt.date) -> tuple[Bar, ...]:
    """One weekday's one-minute bars (memoised)."""
    key = (str(seed), market.wire, code, day)
    bars = _MINUTE_DAYS.get(key)
    if bars is None:
        bars = tuple(_make_minute_bars(seed, market, code, day))
        if len(_MINUTE_DAYS) >= _MINUTE_DAYS_MAX:
            del _MINUTE_DAYS[next(iter(_MINUTE_DAYS))]
        _MINUTE_DAYS[key] = bars
    return bars


def _make_minute_bars(seed: object, market: Market, code: str, day: _dt.date) -> Iterator[Bar]:
    price, _ = _day_open_close(seed, code, day)
    rng = rng_of(str(seed), code, "m", day.isoformat())
    day_s = day.isoformat()
    last = price
    for start, end in sessions(market):
        for m in range(start, end):
            o = last
            c = round(max(o * math.exp(rng.gauss(0, 0.0008)), 0.01), 2)
            hi = round(max(o, c) * (1 + abs(rng.gauss(0, 0.0003))), 2)
            lo = round(min(o, c) * (1 - abs(rng.gauss(0, 0.0003))), 2)
            vol = rng.randint(1, 200) * 100
            t = f"{day_s} {(m + 1) // 60:02d}:{(m + 1) % 60:02d}:00"
            yield Bar(t, o, hi, lo, c, vol, round(vol * (o + c) / 2, 2), last)
            last = c


def _fold(kl_type: int, bars: Iterator[Bar], key_time: bool) -> Iterator[Bar]:
    """Fold bars into ``kl_type`` buckets (``key_time``: bucket by the bar's start minute)."""
    current: Bar | None = None
    for b in bars:
        at = b.time
        if key_time:  # a 1-minute bar labelled 09:31 covers 09:30:xx
            of_day = int(at[11:13]) * 60 + int(at[14:16]) - 1
            t = minute_bar_end(MINUTES[kl_type], at[:10], of_day)
        else:
            t = bar_time(kl_type, at)
        if current is not None and current.time == t:
            current = Bar(
                t,
                current.open,
                max(current.high, b.high),
                min(current.low, b.low),
                b.close,
                current.volume + b.volume,
                round(current.turnover + b.turnover, 2),
                current.last_close,
            )
            continue
        if current is not None:
            yield current
        current = Bar(t, b.open, b.high, b.low, b.close, b.volume, b.turnover, b.last_close)
    if current is not None:
        yield current


def history_bars(
    seed: object, market: Market, code: str, kl_type: int, begin: str, end: str
) -> Iterator[Bar]:
    """The ``kl_type`` bars (wire number) whose time lies in ``[begin, end]``, oldest first."""
    b = _dt.datetime.strptime(begin, _FMT)
    e = _dt.datetime.strptime(end, _FMT)
    if kl_type in MINUTES:

        def minutes() -> Iterator[Bar]:
            for d in _weekdays(b.date(), e.date()):
                yield from _minute_bars(seed, market, code, d)

        source = minutes() if kl_type == 1 else _fold(kl_type, minutes(), key_time=True)
    else:
        # widen to whole periods so the first bar is complete, then filter by its time
        start = _dt.date(b.year, 1, 1) if kl_type != _DAY else b.date()
        days = _daily_bars(seed, code, start, e.date())
        source = days if kl_type == _DAY else _fold(kl_type, days, key_time=False)
    for bar in source:
        if begin <= bar.time <= end:
            yield bar


def _digest(*parts: object) -> bytes:
    return hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()


def history_page(
    seed: object,
    market: Market,
    code: str,
    kl_type: int,
    rehab_type: int,
    begin: str,
    end: str,
    max_count: int | None,
    key: bytes | None = None,
) -> tuple[list[Bar], bytes | None]:
    """One page: at most ``max_count`` bars (``None``: all) from ``key``'s position on."""
    query = _digest(market.wire, code, kl_type, rehab_type, begin, end)
    start = begin
    if key:
        if len(key) != 8 + 19 or key[:8] != query:
            raise BadPageKey("the page key belongs to another query")
        start = key[8:].decode("ascii", "replace")
    limit = max_count if max_count is not None and max_count > 0 else None
    out: list[Bar] = []
    # generate from the key's day on (whole days keep folded buckets whole): linear paging
    gen_begin = max(begin, start[:10] + " 00:00:00")
    for bar in history_bars(seed, market, code, kl_type, gen_begin, end):
        if bar.time < start:
            continue
        if limit is not None and len(out) == limit:
            return out, query + bar.time.encode("ascii")
        out.append(bar)
    return out, None


def page_reply_body(
    market: Market, code: str, bars: list[Bar], next_key: bytes | None, name: str | None = None
) -> bytes:
    """A successful 3103 reply body."""
    s2c = qot_request_history_kl_pb2.S2C()
    s2c.security.market = market.wire
    s2c.security.code = code
    s2c.klList.extend(b.to_pb() for b in bars)
    if next_key is not None:
        s2c.nextReqKey = next_key
    if name is not None:
        s2c.name = name
    return s2c_response(qot_request_history_kl_pb2, s2c)


@dataclass
class FirstPageLimiter:
    """60 first pages per 30 s, sliding; later pages (with a key) are free."""

    limit: int = 60
    window: float = 30.0
    _times: deque[float] = field(default_factory=deque)

    def allow(self, now: float, first_page: bool = True) -> bool:
        """Whether a request at ``now`` may run (and count it if so)."""
        if not first_page:
            return True
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True


@dataclass
class QuotaBook:
    """History quota: each distinct security costs one unit per ``window_days`` (30, per docs)."""

    total: int = 100
    window_days: float = 30.0
    _first: dict[tuple[int, str], float] = field(default_factory=dict)

    def _expire(self, now: float) -> None:
        horizon = now - self.window_days * 86_400
        for sec in [s for s, t in self._first.items() if t <= horizon]:
            del self._first[sec]

    def charge(self, market: Market, code: str, now: float) -> bool:
        """Whether ``(market, code)`` may be requested now; charges a unit the first time."""
        self._expire(now)
        sec = (market.wire, code)
        if sec in self._first:
            return True
        if len(self._first) >= self.total:
            return False
        self._first[sec] = now
        return True

    def used(self, now: float) -> int:
        """Units used in the window ending at ``now``."""
        self._expire(now)
        return len(self._first)

    def detail(self, now: float) -> list[tuple[int, str, float]]:
        """``(market, code, first request time)`` of the securities charged in the window."""
        self._expire(now)
        return [(m, c, t) for (m, c), t in self._first.items()]


def quota_reply_body(book: QuotaBook, now: float, detail: bool, tz: _dt.tzinfo) -> bytes:
    """A 3104 reply body for ``book`` at ``now`` (request times rendered in ``tz``)."""
    s2c = qot_request_history_kl_quota_pb2.S2C()
    used = book.used(now)
    s2c.usedQuota = used
    s2c.remainQuota = book.total - used
    if detail:
        for m, c, t in book.detail(now):
            item = s2c.detailList.add()
            item.security.market = m
            item.security.code = c
            item.requestTime = _dt.datetime.fromtimestamp(t, tz).strftime(_FMT)
            item.requestTimeStamp = int(t)
    return s2c_response(qot_request_history_kl_quota_pb2, s2c)

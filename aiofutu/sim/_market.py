"""Synthetic tick generation for the simulator.

Every security owns a ``random.Random`` seeded from ``(seed, code)``, so prices, volumes,
directions and trade types are reproducible run to run; only the wall-clock timestamps (and so
``time``/``sequence``) differ. Securities are created on demand and start with a full ring buffer
of history, so ``get_rt_ticker(code, 1000)`` right after subscribing returns 1000 ticks.

``sequence`` is ``(int(timestamp) << 32) | counter`` with a per-security running trade counter,
the HK layout of the protocol notes (§11). Real US sequences carry 0 in the low 32 bits; the
simulator uses the counter for every market so that sequences are unique and strictly
increasing and gaps can be detected everywhere.
"""

from __future__ import annotations

import datetime as _dt
import logging
import random
import time
from collections import deque
from typing import TYPE_CHECKING, NamedTuple

from .._pb import qot_common_pb2
from ..codes import parse_code
from ..enums import Market

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ("SecurityState", "SimMarket", "market_states")

logger = logging.getLogger("aiofutu.sim")

Ticker = qot_common_pb2.Ticker

_BUY, _SELL, _NEUTRAL = 1, 2, 3
_AUTOMATCH, _ODD_LOT, _AUCTION = 1, 6, 7
#: ``typeSign`` looks like the ASCII trade-type flag (' ', 'D', 'U'); see the protocol notes §6.2.
_SIGN = {_AUTOMATCH: 32, _ODD_LOT: 68, _AUCTION: 85}
_UNIT = 10_000  # prices are kept as integers in 1/10000 of the currency unit
_U32 = 0xFFFFFFFF


def _zone(name: str, fallback_hours: int) -> _dt.tzinfo:
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    except Exception:  # no tzdata on this machine: a fixed offset is close enough for a simulator
        return _dt.timezone(_dt.timedelta(hours=fallback_hours))


_UTC8 = _dt.timezone(_dt.timedelta(hours=8))
_NEW_YORK = _zone("America/New_York", -5)
_ZONES: dict[Market, _dt.tzinfo] = {
    Market.US: _NEW_YORK,
    Market.JP: _dt.timezone(_dt.timedelta(hours=9)),
    Market.AU: _zone("Australia/Sydney", 10),
    Market.CA: _zone("America/Toronto", -5),
}

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


def _hk_tick(price: int, up: bool) -> int:
    """HKEX tick size at ``price``: the band above it when moving up, below it when moving down."""
    for upper, tick in _HK_SPREADS:
        if price < upper or (not up and price == upper):
            return tick
    return _HK_SPREADS[-1][1]


def _tick(market: Market, price: int, up: bool) -> int:
    if market in (Market.HK, Market.HK_FUTURE):
        return _hk_tick(price, up)
    if market is Market.US and (price < _UNIT or (not up and price == _UNIT)):
        return 1  # $0.0001 below one dollar
    return 100  # 0.01: US, A-shares and everything else


class _Known(NamedTuple):
    name: str
    price: float
    lot: int


_KNOWN: dict[str, _Known] = {
    "HK.00700": _Known("Tencent", 480.0, 100),
    "HK.09988": _Known("Alibaba", 85.0, 100),
    "HK.00005": _Known("HSBC Holdings", 70.0, 400),
    "HK.00388": _Known("HKEX", 330.0, 100),
    "HK.00941": _Known("China Mobile", 80.0, 500),
    "HK.01810": _Known("Xiaomi", 40.0, 200),
    "HK.03690": _Known("Meituan", 120.0, 100),
    "US.AAPL": _Known("Apple Inc.", 190.0, 100),
    "US.TSLA": _Known("Tesla", 250.0, 100),
    "US.MSFT": _Known("Microsoft", 420.0, 100),
    "US.NVDA": _Known("NVIDIA", 120.0, 100),
    "US.AMZN": _Known("Amazon.com", 180.0, 100),
    "US.META": _Known("Meta Platforms", 500.0, 100),
    "SH.600519": _Known("Kweichow Moutai", 1500.0, 100),
    "SH.600000": _Known("SPD Bank", 10.0, 100),
    "SZ.000001": _Known("Ping An Bank", 11.5, 100),
    "SZ.300750": _Known("CATL", 200.0, 100),
}
_HK_LOTS = (100, 200, 400, 500, 1000, 2000)


class SecurityState:
    """One simulated security: price walk, trade counter and the ring buffer of recent ticks."""

    def __init__(
        self,
        code: str,
        *,
        seed: int,
        max_ticks: int,
        hp_volume: bool,
        now: float,
        prefill: bool = True,
    ) -> None:
        market, short = parse_code(code)
        self.code = code
        self.market = market
        self.security = qot_common_pb2.Security(market=market.wire, code=short)
        self.ring: deque[qot_common_pb2.Ticker] = deque(maxlen=max_ticks)
        self.paused = False  # a burst owns the security: live flow skips it
        self.hp_volume = hp_volume
        rng = self._rng = random.Random(f"{seed}:{code}")
        known = _KNOWN.get(code)
        if known is not None:
            self.name, start, self.lot = known.name, known.price, known.lot
        else:
            self.name = f"{short} ({market.value}, simulated)"
            start = round(rng.uniform(5.0, 200.0), 2)
            self.lot = rng.choice(_HK_LOTS) if market is Market.HK else 100
        self._start = round(start * _UNIT)
        self.price = self._start - self._start % _tick(market, self._start, True)
        self.counter = rng.randint(10_000, 60_000)
        self.made = 0  # ticks generated since creation, for periodic gaps
        self.last_ts = 0.0
        self._tz = _ZONES.get(market, _UTC8)
        self._fmt_second = -1
        self._fmt_prefix = ""
        if prefill:  # history: ~2 s apart on average, ending now
            gaps = [round(rng.expovariate(0.5), 3) for _ in range(max_ticks)]
            ts = now - sum(gaps)
            for gap in gaps:
                ts += gap
                self.ring.append(self._tick(*self._stamp(ts)))

    def generate(
        self, n: int, now: float | None = None, *, gap_every: int = 0, gap_size: int = 1
    ) -> list[qot_common_pb2.Ticker]:
        """``n`` new ticks sharing one timestamp (``now`` or the clock), stored in the ring.

        With ``gap_every``, every ``gap_every``-th tick made by this security follows
        ``gap_size`` trades that are never produced: a real hole in the tape.
        """
        stamp = self._stamp(time.time() if now is None else now)
        if gap_every <= 0:
            ticks = [self._tick(*stamp) for _ in range(n)]
        else:
            ticks = []
            for _ in range(n):
                self.made += 1
                if self.made % gap_every == 0:
                    self.counter = (self.counter + gap_size) & _U32
                ticks.append(self._tick(*stamp))
        self.ring.extend(ticks)
        return ticks

    def skip(self, n: int) -> None:
        """Advance the trade counter without producing ticks: a gap of ``n`` missing trades."""
        if n < 0:
            raise ValueError("n must be >= 0")
        self.counter = (self.counter + n) & _U32

    def _stamp(self, ts: float) -> tuple[float, int, str]:
        """Millisecond timestamp (never before the previous one), its second and time string."""
        ts = round(max(ts, self.last_ts), 3)
        self.last_ts = ts
        second, ms = divmod(round(ts * 1000), 1000)
        if second != self._fmt_second:
            self._fmt_second = second
            local = _dt.datetime.fromtimestamp(second, self._tz)
            self._fmt_prefix = local.strftime("%Y-%m-%d %H:%M:%S")
        return ts, second, f"{self._fmt_prefix}.{ms:03d}"

    def _tick(self, ts: float, second: int, time_text: str) -> qot_common_pb2.Ticker:
        rng = self._rng
        market = self.market
        self.counter = (self.counter + 1) & _U32

        r = rng.random()
        if r < 0.005:
            kind = _AUCTION
        elif market is Market.HK and r < 0.055 and self.lot > 1:
            kind = _ODD_LOT
        elif market is Market.US and r < 0.2:
            kind = _ODD_LOT
        else:
            kind = _AUCTION if market in (Market.SH, Market.SZ) and r < 0.01 else _AUTOMATCH

        step = 0
        if kind != _AUCTION:
            move = rng.random()
            if move < 0.14:
                step = 1
            elif move < 0.28:
                step = -1
            elif move < 0.29:
                step = 2
            elif move < 0.30:
                step = -2
        price = self.price
        if step:
            up = step > 0
            if (up and price > 2 * self._start) or (not up and price < self._start // 2):
                up = not up  # keep the walk within [start/2, 2*start]
            tick = _tick(market, price, up)
            for _ in range(abs(step)):
                price = price + tick if up else max(price - tick, tick)
            self.price = price
            direction = _BUY if up else _SELL
        else:
            d = rng.random()
            direction = _NEUTRAL if kind == _AUCTION or d < 0.1 else _BUY if d < 0.55 else _SELL

        lot = self.lot
        if kind == _ODD_LOT:
            volume = rng.randint(1, max(lot - 1, 1))
        elif market is Market.US:
            volume = rng.randint(100, 500)
        else:
            volume = lot * (1 + min(int(rng.expovariate(0.3)), 99))
            if kind == _AUCTION:
                volume *= 5
        price_f = price / _UNIT
        tick_pb = Ticker(
            time=time_text,
            sequence=(second << 32) | self.counter,
            dir=direction,
            price=price_f,
            volume=volume,
            turnover=round(price_f * volume, 4),
            recvTime=0.0,
            type=kind,
            typeSign=_SIGN[kind],
            pushDataType=1,
            timestamp=ts,
        )
        if self.hp_volume:
            tick_pb.hpVolume = float(volume)
        return tick_pb


class SimMarket:
    """All simulated securities, created on demand, plus the set that gets live ticks."""

    def __init__(
        self,
        *,
        seed: int = 1,
        max_ticks: int = 1000,
        hp_volume: bool = False,
        codes: tuple[str, ...] = (),
        prefill: bool = True,
    ) -> None:
        self.seed = seed
        self.max_ticks = max_ticks
        self.hp_volume = hp_volume
        #: New securities start with ``max_ticks`` ticks of history (off for a replay).
        self.prefill = prefill
        self._securities: dict[str, SecurityState] = {}
        self._by_wire: dict[tuple[int, str], SecurityState] = {}
        self._live: dict[str, SecurityState] = {}
        for code in codes:
            self.activate(code)

    def security(self, code: str) -> SecurityState:
        """The state of ``code`` (``"HK.00700"``), created with its history if new."""
        sec = self._securities.get(code)
        if sec is None:
            sec = SecurityState(
                code,
                seed=self.seed,
                max_ticks=self.max_ticks,
                hp_volume=self.hp_volume,
                now=time.time(),
                prefill=self.prefill,
            )
            self._securities[code] = sec
            self._by_wire[(sec.security.market, sec.security.code)] = sec
            logger.debug("created security %s (%s)", code, sec.name)
        return sec

    def by_wire(self, market: int, code: str) -> SecurityState | None:
        """The state for a wire ``(market, code)`` pair, if it exists already."""
        return self._by_wire.get((market, code))

    def activate(self, code: str) -> SecurityState:
        """Include ``code`` in the live tick flow."""
        sec = self.security(code)
        self._live[code] = sec
        return sec

    def live(self) -> Iterator[SecurityState]:
        """Securities that get live ticks."""
        return iter(list(self._live.values()))

    def history(self, code: str) -> list[qot_common_pb2.Ticker]:
        """The stored ticks of ``code``, oldest first (up to ``max_ticks``). Do not mutate them."""
        return list(self.security(code).ring)

    def generate(self, code: str, n: int = 1) -> list[qot_common_pb2.Ticker]:
        """Make ``n`` new ticks for ``code`` and store them; nothing is pushed."""
        return self.security(code).generate(n)

    def skip_ticks(self, code: str, n: int) -> None:
        """Advance the trade counter of ``code`` by ``n`` without producing ticks (a gap)."""
        self.security(code).skip(n)

    def __contains__(self, code: object) -> bool:
        return code in self._securities


# ---- market states for GetGlobalState -------------------------------------------------------

_CLOSED, _AUCTION_STATE, _WAITING, _MORNING, _REST, _AFTERNOON = 6, 1, 2, 3, 4, 5
_PRE_MARKET, _AFTER_HOURS, _NIGHT_OPEN, _FUTURE_DAY_OPEN = 8, 10, 13, 15


def _state(now: float, tz: _dt.tzinfo, table: tuple[tuple[int, int], ...], default: int) -> int:
    local = _dt.datetime.fromtimestamp(now, tz)
    if local.weekday() >= 5:
        return _CLOSED
    minute = local.hour * 60 + local.minute
    for end, state in table:
        if minute < end:
            return state
    return default


def _hhmm(h: int, m: int = 0) -> int:
    return h * 60 + m


_HK_TABLE = (
    (_hhmm(9), _CLOSED),
    (_hhmm(9, 20), _AUCTION_STATE),
    (_hhmm(9, 30), _WAITING),
    (_hhmm(12), _MORNING),
    (_hhmm(13), _REST),
    (_hhmm(16), _AFTERNOON),
)
_CN_TABLE = (
    (_hhmm(9, 15), _CLOSED),
    (_hhmm(9, 25), _AUCTION_STATE),
    (_hhmm(9, 30), _WAITING),
    (_hhmm(11, 30), _MORNING),
    (_hhmm(13), _REST),
    (_hhmm(15), _AFTERNOON),
)
_US_TABLE = (
    (_hhmm(4), _CLOSED),
    (_hhmm(9, 30), _PRE_MARKET),
    (_hhmm(16), _AFTERNOON),
    (_hhmm(20), _AFTER_HOURS),
)
_HKF_TABLE = (
    (_hhmm(3), _NIGHT_OPEN),
    (_hhmm(9, 15), _CLOSED),
    (_hhmm(16, 30), _FUTURE_DAY_OPEN),
    (_hhmm(17, 15), _CLOSED),
)


#: States in which a market makes trades (Morning, Afternoon, NightOpen, FutureDayOpen).
_TRADING = frozenset({_MORNING, _AFTERNOON, _NIGHT_OPEN, _FUTURE_DAY_OPEN})
_FORCED_OPEN = {
    "marketHK": _AFTERNOON,
    "marketUS": _AFTERNOON,
    "marketSH": _AFTERNOON,
    "marketSZ": _AFTERNOON,
    "marketHKFuture": _FUTURE_DAY_OPEN,
    "marketUSFuture": _AFTERNOON,
}
_STATE_FIELD = {
    Market.HK: "marketHK",
    Market.US: "marketUS",
    Market.SH: "marketSH",
    Market.SZ: "marketSZ",
    Market.HK_FUTURE: "marketHKFuture",
}


def market_states(now: float, hours: str = "real") -> dict[str, int]:
    """``QotMarketState`` values for GetGlobalState.

    ``hours="real"``: by trading calendar (weekends closed, no holidays); ``"open"``: every
    market in a trading session; ``"closed"``: every market closed.
    """
    if hours == "open":
        return dict(_FORCED_OPEN)
    if hours == "closed":
        return dict.fromkeys(_FORCED_OPEN, _CLOSED)
    return {
        "marketHK": _state(now, _UTC8, _HK_TABLE, _CLOSED),
        "marketUS": _state(now, _NEW_YORK, _US_TABLE, _CLOSED),
        "marketSH": _state(now, _UTC8, _CN_TABLE, _CLOSED),
        "marketSZ": _state(now, _UTC8, _CN_TABLE, _CLOSED),
        "marketHKFuture": _state(now, _UTC8, _HKF_TABLE, _NIGHT_OPEN),
        "marketUSFuture": _state(now, _NEW_YORK, _US_TABLE, _CLOSED),
    }


def trading_markets(now: float, hours: str) -> frozenset[Market] | None:
    """Markets that make trades at ``now``; ``None`` means all of them.

    Markets without a calendar here (SG, JP, ...) trade unless ``hours`` is ``"closed"``.
    """
    if hours == "open":
        return None
    if hours == "closed":
        return frozenset()
    states = market_states(now)
    return frozenset(m for m in Market if states.get(_STATE_FIELD.get(m, ""), _MORNING) in _TRADING)
